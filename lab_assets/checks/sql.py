"""SQL for the integrity checks (lab_assets/checks/specs.py): one SELECT per property, each
returning the offenders in a stable order, at most ``limit`` of them, with the total count of
offenders in the last column (``COUNT(*) OVER ()``, computed before LIMIT). An empty result means
the property holds. Identifiers are quoted here; values travel as bound ``%s`` parameters.

Everything is valid on MariaDB 10.2+ and MySQL 8 (recursive CTEs, window functions). Queries with a
recursive CTE need the session's recursion limit raised first (see lab_assets.lineage.sql).
"""

from __future__ import annotations

import re

from lab_assets.flat_table.sql import IDENTIFYING_COLUMNS
from lab_assets.names import NEW_SUFFIX, ORPHANS_TABLE, SAMPLE_LINEAGE, helper_table
from lab_assets.sources.locations import TableLocations

OFFENDER_LIMIT = 20
_NAME = re.compile(r"[A-Za-z0-9_]+")


def checked_name(kind: str, name: str) -> str:
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


def orphan_samples_rebuild_statements(tables: TableLocations) -> tuple[str, ...]:
    """The record of sample ids that have measurements but no sample (:data:`ORPHANS_TABLE`),
    rebuilt from one anti-join of the whole tables beside it and swapped in: a rebuild that stops
    half way leaves no record (rebuilt whole next time), never a part of one."""
    record, new = tables.qualified(ORPHANS_TABLE), tables.qualified(helper_table(ORPHANS_TABLE, NEW_SUFFIX))
    return (
        f"DROP TABLE IF EXISTS {new}",
        f"CREATE TABLE {new} (sample_id INT NOT NULL PRIMARY KEY)",
        f"""INSERT IGNORE INTO {new} (sample_id)
SELECT m.sample_id FROM {tables.sample_measurements} AS m LEFT JOIN {tables.samples} AS s ON s.id = m.sample_id
WHERE s.id IS NULL AND m.sample_id IS NOT NULL""",
        f"DROP TABLE IF EXISTS {record}",
        f"RENAME TABLE {new} TO {record}",
    )


def orphan_samples_delta_statements(tables: TableLocations, ids_table: str) -> tuple[str, ...]:
    """The record's rows of the change feed's ids (``ids_table``, a ``sample_id`` column)
    recomputed: deleted, then those with measurements and no sample inserted, both by index (run
    in one transaction). Exact for the whole record while every sample id whose measurements
    came, went or moved, or whose sample came or went, is among the ids since the record was
    last exact."""
    record, ids = tables.qualified(ORPHANS_TABLE), tables.qualified(ids_table)
    return (
        f"DELETE o FROM {record} AS o JOIN {ids} AS ids ON ids.sample_id = o.sample_id",
        f"""INSERT IGNORE INTO {record} (sample_id)
SELECT DISTINCT m.sample_id FROM {ids} AS ids JOIN {tables.sample_measurements} AS m ON m.sample_id = ids.sample_id
WHERE NOT EXISTS (SELECT 1 FROM {tables.samples} AS s WHERE s.id = ids.sample_id)""",
    )


def recorded_orphans_select(tables: TableLocations, limit: int = OFFENDER_LIMIT) -> str:
    """The rows of :func:`measurements_without_sample_select`, found through the record of orphan
    sample ids and the sample_id index (rows without a sample id included) instead of a scan:
    exact while the record is (kept, or moved by :func:`orphan_samples_delta_statements`)."""
    samples, measurements = tables.samples, tables.sample_measurements
    inner = f"""SELECT m.sample_id, m.measurement_type, m.value
FROM {tables.qualified(ORPHANS_TABLE)} AS o JOIN {measurements} AS m ON m.sample_id = o.sample_id
WHERE NOT EXISTS (SELECT 1 FROM {samples} AS s WHERE s.id = o.sample_id)
UNION ALL
SELECT m.sample_id, m.measurement_type, m.value FROM {measurements} AS m WHERE m.sample_id IS NULL"""
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
    binary_collation = checked_name("collation", binary_collation)
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
    binary_collation = checked_name("collation", binary_collation)
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
