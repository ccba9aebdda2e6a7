"""SQL of the flat table's checks: the reconciliation (every row of experiment_measurements against
an independent recomputation from the sources, compared byte-exact under the value column's type)
and the lineage proof (each recorded root is its recorded parent's, by induction along parent
links). Identifiers are quoted here; values travel as bound ``%s`` parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

from lab_assets.checks.sql import OFFENDER_LIMIT, checked_name
from lab_assets.names import SAMPLE_LINEAGE
from lab_assets.sources.locations import TableLocations
from lab_assets.sources.value_types import ValueType
from lab_assets.sql.statements import balanced_sum, quote_identifier


def reconciliation_select(
    tables: TableLocations,
    flat_table: str,
    catalog_table: str,
    measurement_columns: Sequence[str],
    source_charset: str,
    source_collation: str,
    value_type: ValueType,
    limit: int = OFFENDER_LIMIT,
    only_sample_ids: Sequence[int] | None = None,
) -> tuple[str, tuple[object, ...]]:
    """Cells of the flat table that differ from the source: sample_id, column, count. Values are
    compared as ``value_type`` (sample_measurements.value's) orders them
    (:meth:`ValueType.ordered`: numbers in their type, text byte-wise), never through a
    conversion that rounds; a measurement column of another type is named by the caller.

    ``only_sample_ids`` limits the comparison to those samples (the whole-table pass is
    :func:`reconciliation_offending_samples_select`; this names the columns of its first offenders).

    A differently built recomputation than the pivot, over the whole table:

    * every (sample, type) group of the source (types compared with the source column's
      collation, samples that exist) finds its column through the catalog, and that cell equals
      the group's MAX(value) (NULL-safe);
    * every row has exactly as many non-NULL measurement cells as its sample has groups with a
      non-NULL value, so no cell holds a value without a source;
    * experiment_id is the sample's;
    * top_parent_id is NULL exactly for samples that no walk down from a root reaches; otherwise
      it is a root (parent_id IS NULL), a root's own id for a root, and the same as its parent's
      row for every other sample, which by induction along the path makes it the sample's root.

    ``measurement_columns`` are the measurement columns present in the flat table.
    """
    source_charset = checked_name("character set", source_charset)
    source_collation = checked_name("collation", source_collation)
    samples = tables.samples
    measurements = tables.sample_measurements
    flat, catalog = tables.qualified(flat_table), tables.qualified(catalog_table)
    quoted = [quote_identifier(c) for c in measurement_columns]
    if quoted:
        cell = "CASE c.column_name " + " ".join(f"WHEN %s THEN {value_type.ordered(f'e.{q}')}" for q in quoted) + " END"
        filled = balanced_sum([f"(e.{q} IS NOT NULL)" for q in quoted])
    else:
        cell, filled = "NULL", "0"
    cell_params = tuple(measurement_columns)
    ids = "TRUE" if only_sample_ids is None else ", ".join(str(int(i)) for i in only_sample_ids) or "NULL"

    def only(column: str) -> str:
        return "TRUE" if only_sample_ids is None else f"{column} IN ({ids})"

    sql = f"""WITH RECURSIVE reached (id) AS (
  SELECT s.id FROM {samples} AS s WHERE s.parent_id IS NULL
  UNION ALL
  SELECT child.id FROM reached {tables.children_join("reached.id")}
),
source_value (sample_id, measurement_type, value) AS (
  SELECT m.sample_id, m.measurement_type, MAX({value_type.ordered("m.value")})
  FROM {measurements} AS m JOIN {samples} AS s ON s.id = m.sample_id
  WHERE m.measurement_type IS NOT NULL AND {only("m.sample_id")}
  GROUP BY m.sample_id, m.measurement_type
)
SELECT offender.*, COUNT(*) OVER () AS offender_count
FROM (
  SELECT g.sample_id, COALESCE(c.column_name,
    CONCAT('no column for type ', CONVERT(g.measurement_type USING utf8mb4) COLLATE utf8mb4_bin)) AS column_name
  FROM source_value AS g
  LEFT JOIN {catalog} AS c
    ON CONVERT(c.measurement_type USING {source_charset}) COLLATE {source_collation} = g.measurement_type
  LEFT JOIN {flat} AS e ON e.sample_id = g.sample_id
  WHERE c.column_name IS NULL OR e.sample_id IS NULL OR NOT (({cell}) <=> g.value)
  UNION ALL
  SELECT e.sample_id, 'count of non-NULL measurement cells'
  FROM {flat} AS e
  LEFT JOIN (
    SELECT sample_id, COUNT(*) AS filled FROM source_value WHERE value IS NOT NULL GROUP BY sample_id
  ) AS k ON k.sample_id = e.sample_id
  WHERE {filled} <> COALESCE(k.filled, 0) AND {only("e.sample_id")}
  UNION ALL
  SELECT e.sample_id, 'experiment_id'
  FROM {flat} AS e JOIN {samples} AS s ON s.id = e.sample_id
  WHERE NOT (e.experiment_id <=> s.experiment_id) AND {only("e.sample_id")}
  UNION ALL
  SELECT e.sample_id, 'top_parent_id'
  FROM {flat} AS e
  JOIN {samples} AS s ON s.id = e.sample_id
  LEFT JOIN reached ON reached.id = s.id
  LEFT JOIN {samples} AS root ON root.id = e.top_parent_id
  LEFT JOIN {flat} AS parent_row ON parent_row.sample_id = s.parent_id
  WHERE {only("e.sample_id")} AND ((reached.id IS NULL) <> (e.top_parent_id IS NULL)
     OR (e.top_parent_id IS NOT NULL AND (root.id IS NULL OR root.parent_id IS NOT NULL))
     OR (s.parent_id IS NULL AND NOT (e.top_parent_id <=> s.id))
     OR (s.parent_id IS NOT NULL AND NOT (e.top_parent_id <=> parent_row.top_parent_id)))
) AS offender
ORDER BY sample_id, column_name
LIMIT {int(limit)}"""
    return sql, cell_params


def reconciliation_offending_samples_select(
    tables: TableLocations,
    flat_table: str,
    measurement_columns: Sequence[tuple[str, str]],
    value_type: ValueType,
) -> tuple[str, tuple[object, ...]]:
    """Ids of samples whose row in the flat table differs from the source (values compared as
    ``value_type`` orders them, :meth:`ValueType.ordered`), in passes that scan
    the flat table in primary-key order with index lookups (no grouped temporary tables), so the
    whole-table proof grows linearly with the table. ``measurement_columns`` are (type as stored in
    the catalog, column) pairs of the flat table; a source row's type matches with the source
    column's own collation, as bound values compare.

    * Measurements: per sample, every source row of a cataloged type has a value <= its cell,
      every non-NULL cell equals some source row's value of its type, and no source row has a
      type without a column. Together: each cell is MAX(value) of its (sample, type), NULL where
      there is none.
    * experiment_id and top_parent_id: :func:`lineage_proof_select`.
    """
    measurements = tables.sample_measurements
    flat = tables.qualified(flat_table)
    types = tuple(t for t, _ in measurement_columns)
    if measurement_columns:
        known = f"m.measurement_type IN ({', '.join(['%s'] * len(types))})"
        cell = (
            "CASE "
            + " ".join(
                f"WHEN m.measurement_type = %s THEN {value_type.ordered(f'e.{quote_identifier(c)}')}"
                for _, c in measurement_columns
            )
            + " END"
        )
        key = "CASE " + " ".join(f"WHEN m.measurement_type = %s THEN {i}" for i in range(len(types))) + " END"
        filled = balanced_sum([f"(e.{quote_identifier(c)} IS NOT NULL)" for _, c in measurement_columns])
    else:
        known, cell, key, filled = "FALSE", "NULL", "NULL", "0"
    value = value_type.ordered("m.value")
    sql = f"""SELECT e.sample_id
FROM {flat} AS e
LEFT JOIN {measurements} AS m ON m.sample_id = e.sample_id
GROUP BY e.sample_id
HAVING SUM(m.measurement_type IS NOT NULL AND NOT {known}) > 0
    OR SUM(m.value IS NOT NULL AND {known} AND NOT COALESCE({value} <= ({cell}), FALSE)) > 0
    OR COUNT(DISTINCT CASE WHEN {value} = ({cell}) THEN ({key}) END) <> MAX({filled})
UNION
{lineage_proof_select(tables, flat_table)}"""
    if not measurement_columns:
        return sql, ()
    # In text order: known, known + cell, cell + key.
    return sql, types + types + types + types + types


def lineage_proof_select(tables: TableLocations, flat_table: str, written_table: str | None = None) -> str:
    """Ids of flat rows whose identifying columns are wrong, proven without walking the trees: the
    row's experiment_id and top_parent_id equal ``sample_lineage``'s, the lineage's parent_id and
    experiment_id equal the live sample's, and the lineage is proven by induction along parent
    links: a root has itself and depth 0; any other sample has its parent's root and depth + 1
    (NULL-safe), NULL under a missing parent. Depth strictly grows away from the root, so no cycle
    can carry a root: NULL exactly where no root is reachable; a parent that is no longer a live
    sample counts as missing. Rows without a sample or a lineage row are offenders too. Only the
    rows whose ids are in ``written_table`` when given: each is checked against its parent's
    recorded lineage row, which is not proven again (it was when it was written). Primary-key
    lookups only: one scan of the rows."""
    samples = tables.samples
    lineage = tables.qualified(SAMPLE_LINEAGE)
    flat = tables.qualified(flat_table)
    rows = (
        f"{flat} AS e"
        if written_table is None
        else (f"{tables.qualified(written_table)} AS w JOIN {flat} AS e ON e.sample_id = w.sample_id")
    )
    return f"""SELECT e.sample_id
FROM {rows}
LEFT JOIN {samples} AS s ON s.id = e.sample_id
LEFT JOIN {lineage} AS l ON l.sample_id = e.sample_id
LEFT JOIN {lineage} AS parent_lineage ON parent_lineage.sample_id = l.parent_id
LEFT JOIN {samples} AS parent ON parent.id = l.parent_id
WHERE s.id IS NULL OR l.sample_id IS NULL
   OR NOT (e.experiment_id <=> l.experiment_id) OR NOT (l.experiment_id <=> s.experiment_id)
   OR NOT (l.parent_id <=> s.parent_id)
   OR NOT (e.top_parent_id <=> l.top_parent_id)
   OR (l.top_parent_id IS NULL) <> (l.depth IS NULL)
   OR (l.parent_id IS NULL AND NOT (l.top_parent_id <=> l.sample_id AND l.depth <=> 0))
   OR (l.parent_id IS NOT NULL AND (parent_lineage.sample_id IS NULL OR parent.id IS NULL)
       AND l.top_parent_id IS NOT NULL)
   OR (l.parent_id IS NOT NULL AND parent_lineage.sample_id IS NOT NULL
       AND NOT (l.top_parent_id <=> parent_lineage.top_parent_id AND l.depth <=> parent_lineage.depth + 1))"""
