"""SQL for the flat table ``experiment_measurements``: samples, their roots and one column per
measurement type, pivoted inside MySQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lab_assets.sources.locations import TableLocations
from lab_assets.sources.value_types import DEFAULT_VALUE_TYPE, ValueType, max_measurement_columns
from lab_assets.sql.bulk import CHUNK_FILTER, BulkBuild
from lab_assets.sql.statements import Column, TableDefinition, quote_identifier

IDENTIFYING_COLUMNS = (
    Column(
        "experiment_id",
        "INT NULL",
        "The experiment the sample belongs to (samples.experiment_id).",
    ),
    Column(
        "top_parent_id",
        "INT NULL",
        "The sample's root sample: the ancestor reached by following parent_id up to a sample without"
        " a parent (the sample's own id when it has none). NULL when no root is reachable: the sample"
        " is on a parent cycle or under a parent id that does not exist.",
    ),
    Column(
        "sample_id",
        "INT NOT NULL",
        "The sample (samples.id); one row per sample, the table's primary key.",
    ),
)


@dataclass(frozen=True)
class MeasurementColumn:
    """One ``measurement_<type>`` column of the flat table: the type it holds and the column's name."""

    measurement_type: str  # the type as stored in sample_measurements
    column_name: str
    # How many sample ids have a measurement of this type (the catalog's count over
    # sample_measurements as stored, ids not in samples included); for the description.
    sample_count: int | None = field(default=None, compare=False)

    def description(self) -> str:
        """What the column holds, in a scientist's words, for the UI's column schema."""
        counted = ""
        if self.sample_count is not None:
            ids = "1 sample id has" if self.sample_count == 1 else f"{self.sample_count} sample ids have"
            counted = (
                f" {ids} it in sample_measurements (measurement_types.sample_count when this table was built;"
                " ids not in samples count too)."
            )
        return (
            f"Measurement type {self.measurement_type!r} as stored in sample_measurements.measurement_type"
            f" (spellings the source column's collation holds equal share this column).{counted}"
            " The sample's value, NULL where it has no such measurement. The column has the type of"
            " sample_measurements.value (values exactly as stored; a text type compared byte-wise)."
        )


def ordered(measurement_columns: Sequence[MeasurementColumn]) -> list[MeasurementColumn]:
    """Stable column order: by column name."""
    return sorted(measurement_columns, key=lambda c: c.column_name)


def flat_table_definition(measurement_columns: Sequence[MeasurementColumn], value_type: ValueType) -> TableDefinition:
    """Every measurement column takes ``value_type``, the type of sample_measurements.value."""
    return TableDefinition(
        columns=IDENTIFYING_COLUMNS
        + tuple(Column(c.column_name, f"{value_type.ddl} NULL", c.description()) for c in ordered(measurement_columns)),
        primary_key=("sample_id",),
        indexes=(("top_parent_id",), ("experiment_id",)),
    )


def pivot_select(
    tables: TableLocations,
    lineage_from: str,
    lineage_params: tuple[object, ...],
    measurement_columns: Sequence[MeasurementColumn],
    value_type: ValueType,
    only_samples_in: str | None = None,
) -> tuple[str, tuple[object, ...]]:
    """SELECT producing the flat table's rows, with its bound parameters.

    ``lineage_from`` is a FROM-clause item with columns sample_id, experiment_id, top_parent_id (a quoted table
    name or a parenthesised subquery) whose own parameters are ``lineage_params``. Samples without
    measurements get NULL cells; measurements of sample ids that do not exist are left out. A
    sample measured twice for one type gets the larger value (MAX; text byte-wise,
    :meth:`ValueType.ordered`), so the result never depends on row order or collation.

    Shape (for speed, see bench/RESULTS.md): samples joined to their measurements through the
    ``sample_id`` index and grouped by ``s.id``, so the server scans samples in primary-key order
    and aggregates as it goes: no temporary table, rows come out in the new table's key order.
    (A derived ``GROUP BY m.sample_id`` pivot is materialized into an indexed temporary table
    instead.) The WHERE clause holds ``CHUNK_FILTER`` so a bulk build can run it in s.id ranges;
    identifying columns are wrapped in MAX() only to satisfy ONLY_FULL_GROUP_BY (one value per id).
    experiment_id comes from the lineage, not from ``samples``: the lineage records the experiment
    it read, so a change the flat row has not seen always differs from that record (the refresh
    finds it), also when it is reverted after the row was built.
    ``only_samples_in`` names a table (in the output database, column sample_id) that limits the rows built,
    for incremental refreshes.
    """
    columns = ordered(measurement_columns)
    samples = tables.samples
    measurements = tables.sample_measurements
    keys = tables.qualified(only_samples_in) if only_samples_in else ""
    only_samples = f" JOIN {keys} AS k ON k.sample_id = s.id" if keys else ""
    lineage_join = f"LEFT JOIN {lineage_from} AS lineage ON lineage.sample_id = s.id"
    if not columns:
        sql = f"""SELECT lineage.experiment_id, lineage.top_parent_id, s.id AS sample_id
FROM {samples} AS s{only_samples}
{lineage_join}
WHERE {CHUNK_FILTER}"""
        return sql, lineage_params
    value = value_type.ordered("m.value")
    largest = value_type.from_ordered(f"MAX(CASE WHEN m.measurement_type = %s THEN {value} END)")
    pivots = ",\n  ".join(f"{largest} AS {quote_identifier(c.column_name)}" for c in columns)
    sql = f"""SELECT MAX(lineage.experiment_id) AS experiment_id, MAX(lineage.top_parent_id) AS top_parent_id,
  s.id AS sample_id,
  {pivots}
FROM {samples} AS s{only_samples}
{lineage_join}
LEFT JOIN {measurements} AS m ON m.sample_id = s.id
WHERE {CHUNK_FILTER}
GROUP BY s.id"""
    # The pivots' placeholders come before the lineage's in the text.
    return sql, tuple(c.measurement_type for c in columns) + lineage_params


# How many measurement columns of the seed schema's DECIMAL(16,6) fit (8 bytes each); every type's
# limit, measured with CREATE TABLE, is lab_assets.sources.value_types.max_measurement_columns.
MAX_MEASUREMENT_COLUMNS = max_measurement_columns(DEFAULT_VALUE_TYPE)
# MariaDB keeps a table definition (.frm) under 64 KiB; with long column names that binds before
# the row size does ("Table definition is too large"). Measured on MariaDB 10.11 for this table:
# n columns whose names have L characters in total fit while L + 18 * n <= 65142 (names of 48
# chars: 987 columns, 64 chars: 794). Names of types from the lab's VARCHAR(10) column have at most
# 32 characters, so there only the row size binds. MySQL 8 has no .frm; the bound is kept as a
# conservative limit that holds on both servers.
TABLE_DEFINITION_BUDGET = 65142
TABLE_DEFINITION_BYTES_PER_COLUMN = 18


def column_limit_problem(column_names: Sequence[str], value_type: ValueType) -> str | None:
    """Why a flat table with these measurement columns of ``value_type`` cannot be created, or
    None if it can."""
    count = len(column_names)
    limit = max_measurement_columns(value_type)
    if count > limit:
        return (
            f"{count} measurement types exceed the limit of {limit} measurement columns of experiment_measurements"
            f" for sample_measurements.value's type {value_type.ddl} (InnoDB keeps a row within 8126 bytes,"
            f" the server within 65535, and allows at most 1017 columns: README, Integrity checks)"
        )
    definition_size = sum(map(len, column_names)) + TABLE_DEFINITION_BYTES_PER_COLUMN * count
    if definition_size > TABLE_DEFINITION_BUDGET:
        return (
            f"{count} measurement columns with {sum(map(len, column_names))} characters of names exceed"
            f" the table definition limit (names + {TABLE_DEFINITION_BYTES_PER_COLUMN} per column ="
            f" {definition_size} > {TABLE_DEFINITION_BUDGET})"
        )
    return None


def in_sample_id_ranges(tables: TableLocations, select_sql: str, params: tuple[object, ...] = ()) -> BulkBuild:
    """A samples-driven SELECT (alias ``s``, ``CHUNK_FILTER`` in its WHERE) run in ranges of
    sample ids on two connections: many small INSERT ... SELECTs instead of one transaction over
    every sample; two connections measured faster on 2 cores (numbers in bench/RESULTS.md)."""
    return BulkBuild(
        select_sql=select_sql,
        params=params,
        chunk_key="s.id",
        chunk_bounds_sql=f"SELECT MIN(s.id), MAX(s.id) FROM {tables.samples} AS s",
        parallel=2,
    )
