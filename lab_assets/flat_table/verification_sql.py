"""SQL that checks the flat rows just written against what the refresh recorded, and where they
differ, against one snapshot of the sources.

The refresh records the digests (what it saw of the measurements) before the flat rows are
built, and the flat rows are read a moment later. A value changed in between and put back after
the refresh ends would leave the flat row holding the in-between value while the recorded digest
equals the source again: no later refresh would see it. So once the rows are written:

1. **suspects** (:func:`suspect_rows_select`): the written rows whose content differs from the
   recorded digest (the digest recomputed from the flat row's cells, each non-NULL cell hashed as
   the source row ``(sample_id, type, value)`` it came from), or whose presence differs from the
   lineage's record. Only lab_assets' own tables are read: a row that matches was built from what
   is recorded for it. Rows built from source rows a flat row cannot show (a second spelling of a
   type, a NULL value, a duplicate) always become suspects, which costs only their lookups.
2. **verification** (:func:`verified_rows_select`), for the suspects only: one statement (one
   snapshot under READ COMMITTED, no locks on the sources) reads each suspect's live digest and
   whether its flat row equals the live pivot. The recorded digests are set to that snapshot's
   (:func:`stale_digests_select`, :func:`digest_correction_statements`), and rows that do not
   equal it are marked pending again.

Every flat row then equals the sources as of the digest recorded for it, or is pending: a later
change, reverted or not, differs from the record and is found by the next refresh.
"""

from __future__ import annotations

from collections.abc import Sequence

from lab_assets.digests.sql import DIGEST_STATE
from lab_assets.flat_table.sql import MeasurementColumn, ordered
from lab_assets.names import EXPERIMENT_MEASUREMENTS, PENDING_SAMPLES, SAMPLE_LINEAGE, SAMPLE_MEASUREMENT_DIGESTS
from lab_assets.sources.hashes import measurement_hash_expressions
from lab_assets.sources.locations import TableLocations
from lab_assets.sources.value_types import ValueType
from lab_assets.sql.statements import Column, TableDefinition, balanced_sum, quote_identifier
from lab_assets.state.bucket_sql import bucket_delta_statements

# Per written sample: its live digest (0 rows and NULL sums when it has no measurements), whether
# its flat row equals the live pivot and the lineage (1) or not (0), and whether the sample and
# its flat row exist (the one_row_per_sample check reads them).
VERIFIED_ROWS_DEFINITION = TableDefinition(
    columns=(
        Column("sample_id", "INT NOT NULL"),
        Column("measurement_rows", "BIGINT NOT NULL"),
        Column("digest_a", "BIGINT NULL"),
        Column("digest_b", "BIGINT NULL"),
        Column("flat_row_current", "TINYINT NOT NULL"),
        Column("sample_present", "TINYINT NOT NULL"),
        Column("row_present", "TINYINT NOT NULL"),
    ),
    primary_key=("sample_id",),
)


def suspect_rows_select(
    tables: TableLocations,
    measurement_columns: Sequence[MeasurementColumn],
    source_charset: str,
    written_table: str | None,
    value_type: ValueType,
) -> tuple[str, tuple[object, ...]]:
    """The ids (one column) of the written rows that may not equal what is recorded for them, with
    the parameters: the ids in ``written_table`` (the pending table after a refresh), or every
    flat row after a full refresh (lineage rows without a flat row:
    :func:`unbuilt_lineage_rows_select`). A row is a suspect when
    it is present in only one of the flat table and ``sample_lineage``, its experiment_id or
    top_parent_id differs from the lineage's, or its cells' digest differs from
    ``sample_measurement_digests`` (missing digest: none). One scan of the flat rows
    with primary-key lookups into the two state tables.

    Each cell is hashed with :func:`lab_assets.sources.hashes.measurement_hash_expressions` over
    ``(sample_id, type, value)``, the type being the catalog's spelling converted to
    ``source_charset`` (the source column's character set), so the bytes hashed are the ones the
    digest of that source row hashed: the cell has the source value's type ``value_type``, so its
    text is the source value's text."""
    if not source_charset.replace("_", "").isalnum():
        raise ValueError(f"unexpected character set name {source_charset!r}")
    columns = ordered(measurement_columns)
    types = ", ".join(f"CONVERT(%s USING {source_charset}) AS t{i}" for i in range(len(columns))) or "1 AS none"
    count = balanced_sum([f"(f.{quote_identifier(c.column_name)} IS NOT NULL)" for c in columns])
    sums = []
    for which in (0, 1):
        terms = []
        for i, c in enumerate(columns):
            cell = f"f.{quote_identifier(c.column_name)}"
            hashed = measurement_hash_expressions(value_type, "f.sample_id", f"types.t{i}", cell)[which]
            terms.append(f"CASE WHEN {cell} IS NOT NULL THEN {hashed} ELSE 0 END")
        sums.append(balanced_sum(terms))
    differs = f"""l.sample_id IS NULL
  OR NOT (f.experiment_id <=> l.experiment_id) OR NOT (f.top_parent_id <=> l.top_parent_id)
  OR COALESCE(d.measurement_rows, 0) <> {count}
  OR COALESCE(d.digest_a, 0) <> {sums[0]}
  OR COALESCE(d.digest_b, 0) <> {sums[1]}"""
    flat = tables.qualified(EXPERIMENT_MEASUREMENTS)
    lineage = tables.qualified(SAMPLE_LINEAGE)
    digests = tables.qualified(SAMPLE_MEASUREMENT_DIGESTS)
    params = tuple(c.measurement_type for c in columns)
    if written_table:
        sql = f"""SELECT w.sample_id FROM {tables.qualified(written_table)} AS w
CROSS JOIN (SELECT {types}) AS types
LEFT JOIN {flat} AS f ON f.sample_id = w.sample_id
LEFT JOIN {lineage} AS l ON l.sample_id = w.sample_id
LEFT JOIN {digests} AS d ON d.sample_id = w.sample_id
WHERE (f.sample_id IS NULL) <> (l.sample_id IS NULL)
  OR (f.sample_id IS NOT NULL AND ({differs}))"""
        return sql, params
    sql = f"""SELECT f.sample_id FROM {flat} AS f
CROSS JOIN (SELECT {types}) AS types
LEFT JOIN {lineage} AS l ON l.sample_id = f.sample_id
LEFT JOIN {digests} AS d ON d.sample_id = f.sample_id
WHERE {differs}"""
    return sql, params


def unbuilt_lineage_row_count_select(tables: TableLocations, suspects_table: str) -> str:
    """After a full refresh, with every flat row that has no lineage row among the suspects
    of :func:`suspect_rows_select`: how many lineage rows have no flat row. Both tables are keyed
    by sample_id, so that is |lineage| - (|flat| - |flat rows without a lineage row|): two counts
    and the suspects' lookups instead of an anti-join over the whole lineage (bench/RESULTS.md)."""
    lineage = tables.qualified(SAMPLE_LINEAGE)
    without_lineage = f"""SELECT COUNT(*) FROM {tables.qualified(suspects_table)} AS s
LEFT JOIN {lineage} AS l ON l.sample_id = s.sample_id WHERE l.sample_id IS NULL"""
    flat = tables.qualified(EXPERIMENT_MEASUREMENTS)
    return f"SELECT (SELECT COUNT(*) FROM {lineage}) - (SELECT COUNT(*) FROM {flat}) + ({without_lineage})"


def unbuilt_lineage_rows_select(tables: TableLocations) -> str:
    """The lineage rows without a flat row (samples the full refresh did not write): suspects
    too, looked for only when :func:`unbuilt_lineage_row_count_select` is not zero."""
    return f"""SELECT l.sample_id FROM {tables.qualified(SAMPLE_LINEAGE)} AS l
LEFT JOIN {tables.qualified(EXPERIMENT_MEASUREMENTS)} AS f ON f.sample_id = l.sample_id
WHERE f.sample_id IS NULL"""


def verified_rows_select(
    tables: TableLocations, written_table: str, measurement_columns: Sequence[MeasurementColumn], value_type: ValueType
) -> tuple[str, tuple[object, ...]]:
    """Rows of :data:`VERIFIED_ROWS_DEFINITION` for the ids in ``written_table`` (a work table or
    the pending table; column sample_id), with the parameters, in one statement: the sample and
    its measurements by primary-key and index lookups, the flat row by its key.

    A row is current when the sample is gone and has neither a flat row nor a lineage record, or the
    sample exists, has a flat row and a lineage record, and every measurement column equals the live
    pivot (MAX per type, matched with the source column's collation, exactly as
    :func:`lab_assets.flat_table.sql.pivot_select` builds it; both sides of ``value_type``, compared
    with ``<=>`` in that type, text byte-wise: :meth:`ValueType.ordered`), and none of the sample's
    measurements has a type outside the catalog (one recorded after the catalog was read: the row
    then lacks its column, and only the next build, which sees the type, adds it), and its
    experiment_id and top_parent_id are the ones ``sample_lineage`` records (the flat table takes
    both from it; the lineage itself is proven by
    :func:`lab_assets.checks.sql.lineage_proof_select`). A row without a lineage record (a sample
    added after the lineage was read and before a full refresh's flat rows) is not current: were the
    sample deleted once the run ended, nothing would differ from the recorded state and the row
    would stay; marked pending, the next refresh deletes or rewrites it. Likewise a sample deleted
    after the lineage was read and before the flat rows (no row, but a lineage record): were it put
    back as recorded once the run ended, nothing would differ from the recorded state but its
    missing row; marked pending, the next refresh writes its row, or drops its lineage record if it
    is still gone."""
    columns = ordered(measurement_columns)
    value = value_type.ordered("m.value")
    cells = "".join(
        f"\n      AND MAX({value_type.ordered(f'f.{quote_identifier(c.column_name)}')})"
        f" <=> MAX(CASE WHEN m.measurement_type = %s THEN {value} END)"
        for c in columns
    )
    catalog_types = ", ".join(["%s"] * len(columns))
    outside = f"m.measurement_type NOT IN ({catalog_types})" if columns else "TRUE"
    cells += f"\n      AND COALESCE(SUM(m.measurement_type IS NOT NULL AND {outside}), 0) = 0"
    hash_a, hash_b = measurement_hash_expressions(value_type)
    sql = f"""SELECT w.sample_id, COUNT(m.sample_id) AS measurement_rows,
  SUM({hash_a}) AS digest_a, SUM({hash_b}) AS digest_b,
  CASE WHEN MAX(s.id) IS NULL THEN MAX(f.sample_id) IS NULL AND MAX(l.sample_id) IS NULL
    ELSE MAX(f.sample_id) IS NOT NULL AND MAX(l.sample_id) IS NOT NULL
      AND MAX(f.experiment_id) <=> MAX(l.experiment_id) AND MAX(f.top_parent_id) <=> MAX(l.top_parent_id){cells}
  END AS flat_row_current,
  MAX(s.id) IS NOT NULL AS sample_present, MAX(f.sample_id) IS NOT NULL AS row_present
FROM {tables.qualified(written_table)} AS w
LEFT JOIN {tables.samples} AS s ON s.id = w.sample_id
LEFT JOIN {tables.qualified(EXPERIMENT_MEASUREMENTS)} AS f ON f.sample_id = w.sample_id
LEFT JOIN {tables.qualified(SAMPLE_LINEAGE)} AS l ON l.sample_id = w.sample_id
LEFT JOIN {tables.sample_measurements} AS m ON m.sample_id = w.sample_id
GROUP BY w.sample_id"""
    types = tuple(c.measurement_type for c in columns)
    return sql, types + types


def stale_digests_select(tables: TableLocations, verified_table: str) -> str:
    """The verified ids whose recorded digest differs from the verified snapshot's (missing on
    either side included)."""
    return f"""SELECT v.sample_id FROM {tables.qualified(verified_table)} AS v
LEFT JOIN {tables.qualified(SAMPLE_MEASUREMENT_DIGESTS)} AS d ON d.sample_id = v.sample_id
WHERE NOT (v.measurement_rows = COALESCE(d.measurement_rows, 0)
  AND (v.measurement_rows = 0 OR (v.digest_a = d.digest_a AND v.digest_b = d.digest_b)))"""


def digest_correction_statements(
    tables: TableLocations, verified_table: str, stale_table: str, buckets_ready: bool
) -> tuple[str, ...]:
    """The stale ids' digests replaced by the verified ones (deleted where the sample has no
    measurements left) and, when the digests' bucket table exists (``buckets_ready``), its sums kept
    by delta around them: run in one transaction."""
    digests = tables.qualified(SAMPLE_MEASUREMENT_DIGESTS)
    stale = tables.qualified(stale_table)
    replaced = (
        f"DELETE d FROM {digests} AS d JOIN {stale} AS st ON st.sample_id = d.sample_id",
        f"""INSERT INTO {digests} (sample_id, measurement_rows, digest_a, digest_b)
SELECT v.sample_id, v.measurement_rows, v.digest_a, v.digest_b
FROM {stale} AS st JOIN {tables.qualified(verified_table)} AS v ON v.sample_id = st.sample_id
WHERE v.measurement_rows > 0""",
    )
    if not buckets_ready:
        return replaced
    before, after = bucket_delta_statements(tables, DIGEST_STATE, stale_table)
    return before + replaced + after


def pending_after_verification_statements(tables: TableLocations, verified_table: str) -> tuple[str, str]:
    """The pending marks consumed, and the ids whose rows are not current marked again."""
    pending = tables.qualified(PENDING_SAMPLES)
    return (
        f"DELETE FROM {pending}",
        f"INSERT INTO {pending} (sample_id)"
        f" SELECT sample_id FROM {tables.qualified(verified_table)} WHERE flat_row_current = 0",
    )


def verification_offenders_selects(tables: TableLocations, verified_table: str, limit: int) -> tuple[str, str]:
    """Over :data:`VERIFIED_ROWS_DEFINITION`'s rows, in the offenders shape of
    lab_assets.checks.sql (first ``limit``, the count in the last column): the ids whose sample
    and flat row are not both present or both absent (sample_id, row_present, count), and the ids
    whose row is there but differs from the sources or the lineage (sample_id, count)."""
    verified = tables.qualified(verified_table)
    presence = f"""SELECT offender.*, COUNT(*) OVER () AS offender_count FROM (
  SELECT sample_id, row_present FROM {verified} WHERE sample_present <> row_present
) AS offender ORDER BY sample_id LIMIT {int(limit)}"""
    content = f"""SELECT offender.*, COUNT(*) OVER () AS offender_count FROM (
  SELECT sample_id FROM {verified} WHERE flat_row_current = 0 AND sample_present = 1 AND row_present = 1
) AS offender ORDER BY sample_id LIMIT {int(limit)}"""
    return presence, content
