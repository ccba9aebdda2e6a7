"""SQL that checks the flat rows just written against one snapshot of the sources.

The refresh records the digests (what it saw of the measurements) before the flat rows are
built, and the flat rows are read a moment later. A value changed in between and put back after
the refresh ends would leave the flat row holding the in-between value while the recorded digest
equals the source again: no later refresh would see it. So once the rows are written, one
statement (one snapshot under READ COMMITTED, no locks on the sources) reads, for each written
sample, its live digest and whether its flat row equals the live pivot
(:func:`verified_rows_select`). The recorded digests are then set to that snapshot's
(:func:`stale_digests_select` and :func:`digest_correction_statements`), and the samples whose
row does not equal it are marked pending again. Every flat row then equals the sources as of the
digest recorded for it, or is pending: a later change, reverted or not, differs from the record.
"""

from __future__ import annotations

from collections.abc import Sequence

from lab_assets.lib.flat_table import MeasurementColumn, ordered
from lab_assets.lib.names import EXPERIMENT_MEASUREMENTS, PENDING_SAMPLES, SAMPLE_MEASUREMENT_DIGESTS
from lab_assets.lib.refresh import (
    MEASUREMENT_BUCKETS,
    MEASUREMENT_HASH_A,
    MEASUREMENT_HASH_B,
    bucket_table_update_statements,
    digest_bucket_sums_select,
)
from lab_assets.lib.sql import Column, TableDefinition, quote_identifier
from lab_assets.lib.tables import TableLocations

# Per written sample: its live digest (0 rows and NULL sums when it has no measurements) and
# whether its flat row equals the live pivot (1) or not (0).
VERIFIED_ROWS_DEFINITION = TableDefinition(
    columns=(
        Column("sample_id", "INT NOT NULL"),
        Column("measurement_rows", "BIGINT NOT NULL"),
        Column("digest_a", "BIGINT NULL"),
        Column("digest_b", "BIGINT NULL"),
        Column("flat_row_current", "TINYINT NOT NULL"),
    ),
    primary_key=("sample_id",),
)


def written_ids_selects(tables: TableLocations) -> tuple[str, str]:
    """The ids a whole-table build wrote or should have: every sample and every flat row."""
    return (
        f"SELECT id FROM {tables.samples}",
        f"SELECT sample_id FROM {tables.qualified(EXPERIMENT_MEASUREMENTS)}",
    )


def verified_rows_select(
    tables: TableLocations, written_table: str, measurement_columns: Sequence[MeasurementColumn]
) -> tuple[str, tuple[object, ...]]:
    """Rows of :data:`VERIFIED_ROWS_DEFINITION` for the ids in ``written_table`` (a work table or
    the pending table; column sample_id), with the parameters, in one statement: the sample and
    its measurements by primary-key and index lookups, the flat row by its key.

    A row is current when the sample is gone and has no flat row, or the sample exists, has a flat
    row, and every measurement column equals the live pivot (MAX per type, matched with the source
    column's collation, exactly as :func:`lab_assets.lib.flat_table.pivot_select` builds it; both
    sides are DECIMAL(16,6), compared with ``<=>``). experiment_id and top_parent_id are not
    compared: the flat table takes both from ``sample_lineage``, whose own record they are."""
    columns = ordered(measurement_columns)
    cells = "".join(
        f"\n      AND MAX(f.{quote_identifier(c.column_name)})"
        f" <=> MAX(CASE WHEN m.measurement_type = %s THEN m.value END)"
        for c in columns
    )
    sql = f"""SELECT w.sample_id, COUNT(m.sample_id) AS measurement_rows,
  SUM({MEASUREMENT_HASH_A}) AS digest_a, SUM({MEASUREMENT_HASH_B}) AS digest_b,
  CASE WHEN MAX(s.id) IS NULL THEN MAX(f.sample_id) IS NULL
    ELSE MAX(f.sample_id) IS NOT NULL{cells}
  END AS flat_row_current
FROM {tables.qualified(written_table)} AS w
LEFT JOIN {tables.samples} AS s ON s.id = w.sample_id
LEFT JOIN {tables.qualified(EXPERIMENT_MEASUREMENTS)} AS f ON f.sample_id = w.sample_id
LEFT JOIN {tables.sample_measurements} AS m ON m.sample_id = w.sample_id
GROUP BY w.sample_id"""
    return sql, tuple(c.measurement_type for c in columns)


def stale_digests_select(tables: TableLocations, verified_table: str) -> str:
    """The verified ids whose recorded digest differs from the verified snapshot's (missing on
    either side included)."""
    return f"""SELECT v.sample_id FROM {tables.qualified(verified_table)} AS v
LEFT JOIN {tables.qualified(SAMPLE_MEASUREMENT_DIGESTS)} AS d ON d.sample_id = v.sample_id
WHERE NOT (v.measurement_rows = COALESCE(d.measurement_rows, 0)
  AND (v.measurement_rows = 0 OR (v.digest_a = d.digest_a AND v.digest_b = d.digest_b)))"""


def digest_correction_statements(
    tables: TableLocations, verified_table: str, stale_table: str, buckets_table: str | None
) -> tuple[str, ...]:
    """The stale ids' digests replaced by the verified ones (deleted where the sample has no
    measurements left) and, when ``buckets_table`` exists, its sums for their buckets summed
    again: run in one transaction."""
    digests = tables.qualified(SAMPLE_MEASUREMENT_DIGESTS)
    stale = tables.qualified(stale_table)
    statements = (
        f"DELETE d FROM {digests} AS d JOIN {stale} AS st ON st.sample_id = d.sample_id",
        f"""INSERT INTO {digests} (sample_id, measurement_rows, digest_a, digest_b)
SELECT v.sample_id, v.measurement_rows, v.digest_a, v.digest_b
FROM {stale} AS st JOIN {tables.qualified(verified_table)} AS v ON v.sample_id = st.sample_id
WHERE v.measurement_rows > 0""",
    )
    if buckets_table is None:
        return statements
    return statements + bucket_table_update_statements(
        tables,
        MEASUREMENT_BUCKETS,
        buckets_table,
        (stale_table,),
        digest_bucket_sums_select(tables, only_buckets_of=(stale_table,)),
    )


def pending_after_verification_statements(tables: TableLocations, verified_table: str) -> tuple[str, str]:
    """The pending marks consumed, and the ids whose rows are not current marked again."""
    pending = tables.qualified(PENDING_SAMPLES)
    return (
        f"DELETE FROM {pending}",
        f"INSERT INTO {pending} (sample_id)"
        f" SELECT sample_id FROM {tables.qualified(verified_table)} WHERE flat_row_current = 0",
    )
