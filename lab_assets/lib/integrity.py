"""SQL for the integrity checks (lab_assets/defs/checks.py): one SELECT per property, each
returning the offenders in a stable order, at most ``limit`` of them, with the total count of
offenders in the last column (``COUNT(*) OVER ()``, computed before LIMIT). An empty result means
the property holds. Identifiers are quoted here; values travel as bound ``%s`` parameters.

Everything is valid on MariaDB 10.2+ and MySQL 8 (recursive CTEs, window functions). Queries with a
recursive CTE need the session's recursion limit raised first (see lab_assets.lib.lineage).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lab_assets.lib.flat_table import IDENTIFYING_COLUMNS
from lab_assets.lib.names import SAMPLE_LINEAGE
from lab_assets.lib.sql import balanced_sum, quote_identifier
from lab_assets.lib.tables import TableLocations
from lab_assets.lib.value_types import ValueType

OFFENDER_LIMIT = 20
_NAME = re.compile(r"[A-Za-z0-9_]+")


def _checked_name(kind: str, name: str) -> str:
    """Charset and collation names go into SQL text (COLLATE cannot be bound), so only plain names."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"unexpected {kind} name {name!r}")
    return name


def offenders(select_sql: str, order_by: str, limit: int = OFFENDER_LIMIT) -> str:
    """``select_sql``'s rows (the offenders), first ``limit`` by ``order_by``, plus their count."""
    return (
        f"SELECT offender.*, COUNT(*) OVER () AS offender_count\nFROM (\n{select_sql}\n) AS offender\n"
        f"ORDER BY {order_by}\nLIMIT {int(limit)}"
    )


def _lineage_ctes(tables: TableLocations) -> str:
    """``reached``: samples with a root, walked down from the roots. ``dangling``: samples whose
    parent does not exist and everything below them. A sample in neither is on or under a parent
    cycle. Both walks go down from a start set, so they end on any data."""
    samples = tables.samples
    return f"""WITH RECURSIVE reached (id) AS (
  SELECT s.id FROM {samples} AS s WHERE s.parent_id IS NULL
  UNION ALL
  SELECT child.id FROM reached {tables.children_join("reached.id")}
),
dangling (id) AS (
  SELECT s.id FROM {samples} AS s LEFT JOIN {samples} AS p ON p.id = s.parent_id
  WHERE s.parent_id IS NOT NULL AND p.id IS NULL
  UNION ALL
  SELECT child.id FROM dangling {tables.children_join("dangling.id")}
)"""


def cycle_samples_select(tables: TableLocations, limit: int = OFFENDER_LIMIT) -> str:
    """Samples on or under a parent cycle (no root above them, no missing parent either):
    sample_id, parent_id, count."""
    samples = tables.samples
    inner = f"""SELECT s.id AS sample_id, s.parent_id
FROM {samples} AS s
LEFT JOIN reached ON reached.id = s.id
LEFT JOIN dangling ON dangling.id = s.id
WHERE reached.id IS NULL AND dangling.id IS NULL"""
    return f"{_lineage_ctes(tables)}\n{offenders(inner, 'sample_id', limit)}"


def missing_parent_samples_select(tables: TableLocations, limit: int = OFFENDER_LIMIT) -> str:
    """Samples under a parent id that does not exist (the sample naming it and all below it):
    sample_id, parent_id, count."""
    samples = tables.samples
    inner = f"SELECT s.id AS sample_id, s.parent_id FROM {samples} AS s JOIN dangling ON dangling.id = s.id"
    return f"{_lineage_ctes(tables)}\n{offenders(inner, 'sample_id', limit)}"


def missing_parent_ids_select(tables: TableLocations, limit: int = OFFENDER_LIMIT) -> str:
    """Distinct parent ids that samples name but that do not exist: parent_id, count."""
    samples = tables.samples
    inner = f"""SELECT DISTINCT s.parent_id
FROM {samples} AS s LEFT JOIN {samples} AS p ON p.id = s.parent_id
WHERE s.parent_id IS NOT NULL AND p.id IS NULL"""
    return offenders(inner, "parent_id", limit)


def measurements_without_sample_select(tables: TableLocations, limit: int = OFFENDER_LIMIT) -> str:
    """Measurement rows whose sample_id is NULL or not a sample: sample_id, type, value, count."""
    samples, measurements = tables.samples, tables.sample_measurements
    inner = f"""SELECT m.sample_id, m.measurement_type, m.value
FROM {measurements} AS m LEFT JOIN {samples} AS s ON s.id = m.sample_id
WHERE s.id IS NULL"""
    return offenders(inner, "sample_id, measurement_type, value", limit)


def measurements_without_type_select(tables: TableLocations, limit: int = OFFENDER_LIMIT) -> str:
    """Measurement rows with a NULL measurement_type: sample_id, value, count."""
    inner = f"""SELECT m.sample_id, m.value
FROM {tables.sample_measurements} AS m
WHERE m.measurement_type IS NULL"""
    return offenders(inner, "sample_id, value", limit)


def duplicate_measurements_select(tables: TableLocations, binary_collation: str, limit: int = OFFENDER_LIMIT) -> str:
    """(sample, type) pairs measured more than once, types compared with the column's own
    collation (as the catalog groups them): sample_id, type (greatest spelling byte-wise),
    measurements, count."""
    binary_collation = _checked_name("collation", binary_collation)
    inner = f"""SELECT m.sample_id, MAX(m.measurement_type COLLATE {binary_collation}) AS measurement_type,
  COUNT(*) AS measurements
FROM {tables.sample_measurements} AS m
WHERE m.sample_id IS NOT NULL AND m.measurement_type IS NOT NULL
GROUP BY m.sample_id, m.measurement_type
HAVING COUNT(*) > 1"""
    return offenders(inner, "sample_id, measurement_type", limit)


def spellings_sharing_a_type_select(tables: TableLocations, binary_collation: str, limit: int = OFFENDER_LIMIT) -> str:
    """Types that the source column's collation merges from more than one spelling (``VOL`` and
    ``vol`` under a case-insensitive collation, any two 4-byte characters under
    ``utf8mb4_general_ci``): the catalog's spelling (greatest byte-wise), every spelling as a
    JSON string, comma-separated in byte order, their number, count. Their values share one column."""
    binary_collation = _checked_name("collation", binary_collation)
    spelling = f"m.measurement_type COLLATE {binary_collation}"
    inner = f"""SELECT MAX({spelling}) AS measurement_type,
  GROUP_CONCAT(DISTINCT JSON_QUOTE({spelling}) ORDER BY {spelling} SEPARATOR ', ') AS spellings,
  COUNT(DISTINCT {spelling}) AS spelling_count
FROM {tables.sample_measurements} AS m
WHERE m.measurement_type IS NOT NULL
GROUP BY m.measurement_type
HAVING COUNT(DISTINCT {spelling}) > 1"""
    return offenders(inner, "measurement_type", limit)


def duplicate_column_names_select(
    tables: TableLocations, catalog_table: str, limit: int = OFFENDER_LIMIT
) -> tuple[str, tuple[object, ...]]:
    """Column names of the flat table that MySQL would see as one name (column names are
    case-insensitive), the catalog's names plus the identifying columns: name, how many, what
    claims it (the measurement types, quoted, or ``identifying column``; ``, ``-separated, within
    the server's ``group_concat_max_len``), count."""
    fixed = " UNION ALL ".join(["SELECT %s, 'identifying column'"] * len(IDENTIFYING_COLUMNS))
    inner = f"""SELECT LOWER(name) AS column_name, COUNT(*) AS occurrences,
  GROUP_CONCAT(claimed_by ORDER BY claimed_by SEPARATOR ', ') AS claimed_by
FROM (
  SELECT column_name AS name, QUOTE(measurement_type) AS claimed_by FROM {tables.qualified(catalog_table)}
  UNION ALL {fixed}
) AS names
GROUP BY LOWER(name)
HAVING COUNT(*) > 1"""
    return offenders(inner, "column_name", limit), tuple(c.name for c in IDENTIFYING_COLUMNS)


def sample_rows_mismatch_select(tables: TableLocations, flat_table: str, limit: int = OFFENDER_LIMIT) -> str:
    """Ids that break "one row per sample": samples without a row, rows without a sample,
    ids with more than one row: sample_id, problem, count."""
    samples, flat = tables.samples, tables.qualified(flat_table)
    inner = f"""SELECT s.id AS sample_id, 'no row' AS problem
FROM {samples} AS s LEFT JOIN {flat} AS e ON e.sample_id = s.id WHERE e.sample_id IS NULL
UNION ALL
SELECT e.sample_id, 'not a sample' FROM {flat} AS e LEFT JOIN {samples} AS s ON s.id = e.sample_id WHERE s.id IS NULL
UNION ALL
SELECT e.sample_id, 'several rows' FROM {flat} AS e GROUP BY e.sample_id HAVING COUNT(*) > 1"""
    return offenders(inner, "sample_id, problem", limit)


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
    source_charset = _checked_name("character set", source_charset)
    source_collation = _checked_name("collation", source_collation)
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
    whole-table proof stays cheap at 1M samples. ``measurement_columns`` are (type as stored in
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


def _unrooted_ctes(tables: TableLocations) -> str:
    """``unrooted``: the samples ``sample_lineage`` gives no root (through its top_parent_id
    index: nothing to read when every sample has one). ``dangling``: those under a parent id
    that is neither in the lineage nor a live sample, and everything below them among the
    unrooted. ``late``: those recorded before their parent's root was (a root, or a sample under
    a parent that has a root or that is a live sample the lineage has not recorded yet: added
    while the lineage was built), and everything below them: not on a cycle, and the next refresh
    gives them their roots. Any other unrooted sample is on
    or under a cycle."""
    lineage = tables.qualified(SAMPLE_LINEAGE)
    return f"""WITH RECURSIVE unrooted (sample_id, parent_id) AS (
  SELECT sample_id, parent_id FROM {lineage} WHERE top_parent_id IS NULL
),
dangling (sample_id) AS (
  SELECT u.sample_id FROM unrooted AS u
  LEFT JOIN {lineage} AS p ON p.sample_id = u.parent_id
  LEFT JOIN {tables.samples} AS live ON live.id = u.parent_id
  WHERE u.parent_id IS NOT NULL AND p.sample_id IS NULL AND live.id IS NULL
  UNION ALL
  SELECT u.sample_id FROM dangling AS d JOIN unrooted AS u ON u.parent_id = d.sample_id
),
late (sample_id) AS (
  SELECT u.sample_id FROM unrooted AS u
  LEFT JOIN {lineage} AS p ON p.sample_id = u.parent_id
  LEFT JOIN {tables.samples} AS live ON live.id = u.parent_id
  WHERE u.parent_id IS NULL OR p.top_parent_id IS NOT NULL OR (p.sample_id IS NULL AND live.id IS NOT NULL)
  UNION ALL
  SELECT u.sample_id FROM late AS l JOIN unrooted AS u ON u.parent_id = l.sample_id
)"""


def lineage_cycle_samples_select(tables: TableLocations, limit: int = OFFENDER_LIMIT) -> str:
    """:func:`cycle_samples_select` from the lineage a build just recorded instead of a walk of
    the live samples: sample_id, parent_id, count."""
    inner = """SELECT u.sample_id, u.parent_id FROM unrooted AS u
LEFT JOIN dangling AS d ON d.sample_id = u.sample_id
LEFT JOIN late ON late.sample_id = u.sample_id
WHERE d.sample_id IS NULL AND late.sample_id IS NULL"""
    return f"{_unrooted_ctes(tables)}\n{offenders(inner, 'sample_id', limit)}"


def lineage_missing_parent_samples_select(tables: TableLocations, limit: int = OFFENDER_LIMIT) -> str:
    """:func:`missing_parent_samples_select` from the recorded lineage: sample_id, parent_id, count."""
    inner = "SELECT u.sample_id, u.parent_id FROM unrooted AS u JOIN dangling AS d ON d.sample_id = u.sample_id"
    return f"{_unrooted_ctes(tables)}\n{offenders(inner, 'sample_id', limit)}"


def lineage_missing_parent_ids_select(tables: TableLocations, limit: int = OFFENDER_LIMIT) -> str:
    """:func:`missing_parent_ids_select` from the recorded lineage: parent_id, count."""
    lineage = tables.qualified(SAMPLE_LINEAGE)
    inner = f"""SELECT DISTINCT u.parent_id
FROM {lineage} AS u
LEFT JOIN {lineage} AS p ON p.sample_id = u.parent_id
LEFT JOIN {tables.samples} AS live ON live.id = u.parent_id
WHERE u.top_parent_id IS NULL AND u.parent_id IS NOT NULL AND p.sample_id IS NULL AND live.id IS NULL"""
    return offenders(inner, "parent_id", limit)
