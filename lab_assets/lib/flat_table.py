"""SQL for the flat table ``experiment_measurements``: samples, their roots and one column per
measurement type, pivoted inside MySQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lab_assets.lib.bulk import CHUNK_FILTER
from lab_assets.lib.sql import Column, TableDefinition, quote_identifier
from lab_assets.lib.tables import TableLocations

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
MEASUREMENT_SQL_TYPE = "DECIMAL(16,6)"


@dataclass(frozen=True)
class MeasurementColumn:
    measurement_type: str  # the type as stored in sample_measurements
    column_name: str
    # How many sample ids have a measurement of this type (the catalog's count over
    # sample_measurements as stored, ids not in samples included); for the description.
    sample_count: int | None = field(default=None, compare=False)

    def description(self) -> str:
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
            " The sample's value, NULL where it has no such measurement."
        )


def ordered(measurement_columns: Sequence[MeasurementColumn]) -> list[MeasurementColumn]:
    """Stable column order: by column name."""
    return sorted(measurement_columns, key=lambda c: c.column_name)


def flat_table_definition(measurement_columns: Sequence[MeasurementColumn]) -> TableDefinition:
    return TableDefinition(
        columns=IDENTIFYING_COLUMNS
        + tuple(
            Column(c.column_name, f"{MEASUREMENT_SQL_TYPE} NULL", c.description()) for c in ordered(measurement_columns)
        ),
        primary_key=("sample_id",),
        indexes=(("top_parent_id",), ("experiment_id",)),
    )


def pivot_select(
    tables: TableLocations,
    lineage_from: str,
    lineage_params: tuple[object, ...],
    measurement_columns: Sequence[MeasurementColumn],
    only_samples_in: str | None = None,
) -> tuple[str, tuple[object, ...]]:
    """SELECT producing the flat table's rows, with its bound parameters.

    ``lineage_from`` is a FROM-clause item with columns sample_id, experiment_id, top_parent_id (a quoted table
    name or a parenthesised subquery) whose own parameters are ``lineage_params``. Samples without
    measurements get NULL cells; measurements of sample ids that do not exist are left out. A
    sample measured twice for one type gets the larger value (MAX), so the result never depends on
    row order.

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
    pivots = ",\n  ".join(
        f"MAX(CASE WHEN m.measurement_type = %s THEN m.value END) AS {quote_identifier(c.column_name)}" for c in columns
    )
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


# How many DECIMAL(16,6) measurement columns experiment_measurements can have next to its three
# INT columns. Determined experimentally with CREATE TABLE on MariaDB 10.11 (InnoDB, 16 KiB pages,
# DYNAMIC rows, innodb_strict_mode=ON): each DECIMAL(16,6) takes 8 bytes in the row, and a row must
# fit in half a page (8126 bytes), so 996 columns are accepted and 997 fail with "Row size too
# large (> 8126)". That is below InnoDB's hard limit of 1017 columns. MySQL 8 has the same InnoDB
# row-size rule; with innodb_strict_mode=OFF the server would accept more columns and fail on
# inserts instead, so the limit is enforced here regardless of the server's mode.
MAX_MEASUREMENT_COLUMNS = 996
# MariaDB keeps a table definition (.frm) under 64 KiB; with long column names that binds before
# the row size does ("Table definition is too large"). Measured on MariaDB 10.11 for this table:
# n columns whose names have L characters in total fit while L + 18 * n <= 65142 (names of 48
# chars: 987 columns, 64 chars: 794). Names of types from the lab's VARCHAR(10) column have at most
# 32 characters, so there only the row size binds. MySQL 8 has no .frm; the bound is kept as a
# conservative limit that holds on both servers.
TABLE_DEFINITION_BUDGET = 65142
TABLE_DEFINITION_BYTES_PER_COLUMN = 18


def column_limit_problem(column_names: Sequence[str]) -> str | None:
    """Why a flat table with these measurement columns cannot be created, or None if it can."""
    count = len(column_names)
    if count > MAX_MEASUREMENT_COLUMNS:
        return (
            f"{count} measurement types exceed the limit of {MAX_MEASUREMENT_COLUMNS} measurement columns"
            f" of experiment_measurements (InnoDB row size limit of 8126 bytes: 3 INT columns +"
            f" {count} DECIMAL(16,6) columns of 8 bytes; InnoDB allows at most 1017 columns)"
        )
    definition_size = sum(map(len, column_names)) + TABLE_DEFINITION_BYTES_PER_COLUMN * count
    if definition_size > TABLE_DEFINITION_BUDGET:
        return (
            f"{count} measurement columns with {sum(map(len, column_names))} characters of names exceed"
            f" the table definition limit (names + {TABLE_DEFINITION_BYTES_PER_COLUMN} per column ="
            f" {definition_size} > {TABLE_DEFINITION_BUDGET})"
        )
    return None
