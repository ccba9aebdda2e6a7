"""The type of the lab's value column, read where it is needed: the flat table's columns, the
row hashes of the digests and of the sensor, the checks' comparisons
(lab_assets.sources.value_types)."""

from __future__ import annotations

from dagster import Failure

from lab_assets.mysql.resource import MySQLResource
from lab_assets.names import SAMPLE_MEASUREMENTS
from lab_assets.sources.value_types import UnsupportedValueType, ValueType, parse_value_type

VALUE_COLUMN = "value"


class UnpublishableValueType(Failure):
    """sample_measurements.value has a type outside lab_assets.sources.value_types' grammar: the step
    fails with this one sentence (Dagster shows a Failure's description as the step's error)."""


def source_value_type(mysql: MySQLResource) -> ValueType:
    """sample_measurements.value's declared type as information_schema has it now. Raises
    :class:`UnpublishableValueType` naming the table, the column and the type (before anything is
    written) when lab_assets cannot publish it exactly."""
    column = mysql.column(SAMPLE_MEASUREMENTS, VALUE_COLUMN)
    try:
        return parse_value_type(column.column_type, column.character_set, column.collation)
    except UnsupportedValueType as error:
        tables = mysql.tables  # the lab's own names of the table and column
        where = f"{tables.database_of(SAMPLE_MEASUREMENTS)}.{tables.source(SAMPLE_MEASUREMENTS).name}.{column.name}"
        raise UnpublishableValueType(f"{where} has a type lab_assets cannot publish exactly: {error}") from None
