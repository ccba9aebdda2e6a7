"""SQL of the catalog's counts, kept so that a change-feed refresh updates them by delta instead of
scanning sample_measurements: per sample and spelling the rows it has (:data:`SAMPLE_TYPE_COUNTS`,
the state), and from it per spelling the rows (:data:`TYPE_SPELLINGS`) and per type as the source
column's collation groups them the samples, rows and repeated rows (:data:`TYPE_GROUPS`).

A spelling is the type byte for byte (the no-pad binary collation: 'ph' and 'ph ' are two), a
NULL type one more spelling (``type_null`` 1, spelling ''), rows without a sample id one more
sample (``no_sample`` 1, sample_id 0). The two small tables are sums over the state, updated by
the signed rows of a delta table (:func:`delta_definition`: -1 for the rows the state held for the
changed ids, +1 for those it holds now), so the catalog read from them equals the whole scan's.
"""

from __future__ import annotations

from lab_assets.names import SAMPLE_TYPE_COUNTS, TYPE_GROUPS, TYPE_SPELLINGS
from lab_assets.sources.locations import TableLocations
from lab_assets.sql.statements import Column, TableDefinition

STATE_KEY = ("sample_id", "no_sample", "type_null", "spelling")


def _spelling(no_pad_collation: str) -> Column:
    return Column("spelling", f"VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {no_pad_collation} NOT NULL")


def state_definition(no_pad_collation: str) -> TableDefinition:
    """:data:`SAMPLE_TYPE_COUNTS`: the rows each sample has of each spelling."""
    return TableDefinition(
        columns=(
            Column("sample_id", "INT NOT NULL"),
            Column("no_sample", "TINYINT NOT NULL"),
            Column("type_null", "TINYINT NOT NULL"),
            _spelling(no_pad_collation),
            Column("measurement_count", "BIGINT NOT NULL"),
        ),
        primary_key=STATE_KEY,
    )


def delta_definition(no_pad_collation: str) -> TableDefinition:
    """A refresh's signed state rows: the state's columns after ``sign`` (-1 old, +1 new)."""
    state = state_definition(no_pad_collation)
    return TableDefinition(
        columns=(Column("sign", "TINYINT NOT NULL"), *state.columns), primary_key=("sign", *STATE_KEY)
    )


def _group_key(charset: str, collation: str) -> Column:
    return Column("group_key", f"VARCHAR(255) CHARACTER SET {charset} COLLATE {collation} NOT NULL")


def spellings_definition(no_pad_collation: str, charset: str, collation: str) -> TableDefinition:
    """:data:`TYPE_SPELLINGS`: the rows of each spelling, and its type's key (the spelling in the
    source column's collation), so the catalog joins a type's spellings by equality."""
    return TableDefinition(
        columns=(
            Column("type_null", "TINYINT NOT NULL"),
            _spelling(no_pad_collation),
            _group_key(charset, collation),
            Column("measurement_count", "BIGINT NOT NULL"),
        ),
        primary_key=("type_null", "spelling"),
    )


def groups_definition(charset: str, collation: str) -> TableDefinition:
    """:data:`TYPE_GROUPS`: per type as the source column's collation groups them (its key in that
    collation, any of its spellings), distinct samples, rows, and rows repeating a sample's."""
    return TableDefinition(
        columns=(
            Column("type_null", "TINYINT NOT NULL"),
            _group_key(charset, collation),
            Column("sample_count", "BIGINT NOT NULL"),
            Column("measurement_count", "BIGINT NOT NULL"),
            Column("repeated_measurements", "BIGINT NOT NULL"),
        ),
        primary_key=("type_null", "group_key"),
    )


def _checked(kind: str, name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unexpected {kind} name {name!r}")
    return name


def _state_rows(tables: TableLocations, no_pad_collation: str, where: str, join: str = "") -> str:
    """Rows of the state, counted from sample_measurements (``m``) as ``join`` and ``where`` pick them."""
    no_pad = _checked("collation", no_pad_collation)
    spelling = f"COALESCE(CONVERT(m.measurement_type USING utf8mb4) COLLATE {no_pad}, '')"
    key = f"COALESCE(m.sample_id, 0), m.sample_id IS NULL, m.measurement_type IS NULL, {spelling}"
    return f"""SELECT {key}, COUNT(*)
FROM {join}{tables.sample_measurements} AS m{"" if not join else " ON m.sample_id = ids.sample_id"}
{where}
GROUP BY {key}"""


def state_fill_statement(tables: TableLocations, no_pad_collation: str) -> str:
    """The state, whole, from one read of sample_measurements (one statement's snapshot): each
    source row counted into its key by the state's primary key. Not a GROUP BY: its temporary
    table of a million wide keys (a spelling is up to 1,020 bytes) goes to disk and takes longer."""
    no_pad = _checked("collation", no_pad_collation)
    spelling = f"COALESCE(CONVERT(m.measurement_type USING utf8mb4) COLLATE {no_pad}, '')"
    return f"""INSERT INTO {tables.qualified(SAMPLE_TYPE_COUNTS)}
  (sample_id, no_sample, type_null, spelling, measurement_count)
SELECT COALESCE(m.sample_id, 0), m.sample_id IS NULL, m.measurement_type IS NULL, {spelling}, 1
FROM {tables.sample_measurements} AS m
ON DUPLICATE KEY UPDATE measurement_count = measurement_count + 1"""


def state_refill_statement(tables: TableLocations, no_pad_collation: str, ids_table: str) -> str:
    """The state's rows of the changed ids and of rows without a sample id, from one read of
    sample_measurements by its sample_id index."""
    ids = f"{tables.qualified(ids_table)} AS ids JOIN "
    return (
        f"INSERT INTO {tables.qualified(SAMPLE_TYPE_COUNTS)}\n{_state_rows(tables, no_pad_collation, '', ids)}\n"
        f"UNION ALL\n{_state_rows(tables, no_pad_collation, 'WHERE m.sample_id IS NULL')}"
    )


def _state_of_ids(tables: TableLocations, ids_table: str) -> str:
    """The state rows of the changed ids and of rows without a sample id, by the state's key."""
    state = tables.qualified(SAMPLE_TYPE_COUNTS)
    return f"""SELECT st.sample_id, st.no_sample, st.type_null, st.spelling, st.measurement_count
FROM {tables.qualified(ids_table)} AS ids JOIN {state} AS st ON st.sample_id = ids.sample_id AND st.no_sample = 0
UNION ALL
SELECT st.sample_id, st.no_sample, st.type_null, st.spelling, st.measurement_count
FROM {state} AS st WHERE st.sample_id = 0 AND st.no_sample = 1"""


def delta_insert_statement(tables: TableLocations, ids_table: str, delta_table: str, sign: int) -> str:
    """The state's rows of the changed ids into the delta table, signed (-1 before, +1 after the refill)."""
    rows = _state_of_ids(tables, ids_table)
    return f"INSERT INTO {tables.qualified(delta_table)}\nSELECT {int(sign)}, changed.* FROM (\n{rows}\n) AS changed"


def state_delete_statements(tables: TableLocations, ids_table: str) -> tuple[str, ...]:
    """The state's rows of the changed ids and of rows without a sample id, deleted."""
    state = tables.qualified(SAMPLE_TYPE_COUNTS)
    return (
        f"DELETE st FROM {state} AS st JOIN {tables.qualified(ids_table)} AS ids"
        " ON st.sample_id = ids.sample_id AND st.no_sample = 0",
        f"DELETE FROM {state} WHERE sample_id = 0 AND no_sample = 1",
    )


def sums_fill_statements(tables: TableLocations, charset: str, collation: str) -> tuple[str, ...]:
    """The spellings' and the types' sums from the whole state into their empty tables, as
    :func:`sums_update_statements` would move them from nothing, in two passes over the state
    grouped by spelling (a few groups: no wide temporary table). A type's samples are first
    counted once per spelling; :func:`several_spellings_select` says whether any type has more
    than one, and only then :func:`sums_fill_correction` subtracts the samples counted twice."""
    charset, collation = _checked("character set", charset), _checked("collation", collation)
    spellings, groups = tables.qualified(TYPE_SPELLINGS), tables.qualified(TYPE_GROUPS)
    state = tables.qualified(SAMPLE_TYPE_COUNTS)
    return (
        f"""INSERT INTO {spellings} (type_null, spelling, group_key, measurement_count)
SELECT st.type_null, st.spelling, CONVERT(st.spelling USING {charset}), SUM(st.measurement_count)
FROM {state} AS st GROUP BY st.type_null, st.spelling""",
        f"""INSERT INTO {groups} (type_null, group_key, sample_count, measurement_count, repeated_measurements)
SELECT per.type_null, CONVERT(MIN(per.spelling) USING {charset}), SUM(per.samples), SUM(per.all_rows),
  SUM(per.sample_rows) - SUM(per.samples)
FROM (
  SELECT st.type_null, st.spelling, SUM(st.no_sample = 0) AS samples, SUM(st.measurement_count) AS all_rows,
    SUM(CASE WHEN st.no_sample = 0 THEN st.measurement_count ELSE 0 END) AS sample_rows
  FROM {state} AS st GROUP BY st.type_null, st.spelling
) AS per
GROUP BY per.type_null, CONVERT(per.spelling USING {charset}) COLLATE {collation}""",
    )


def several_spellings_select(tables: TableLocations) -> str:
    """How many types have more than one spelling."""
    return f"""SELECT COUNT(*) FROM (
  SELECT sp.type_null, sp.group_key FROM {tables.qualified(TYPE_SPELLINGS)} AS sp
  GROUP BY sp.type_null, sp.group_key HAVING COUNT(*) > 1
) AS several"""


def sums_fill_correction(tables: TableLocations, charset: str, collation: str) -> str:
    """A sample with k spellings of one type was counted k times by :func:`sums_fill_statements`:
    k - 1 samples fewer, and k - 1 more repeated rows (its rows beyond its first)."""
    charset, collation = _checked("character set", charset), _checked("collation", collation)
    spellings, groups = tables.qualified(TYPE_SPELLINGS), tables.qualified(TYPE_GROUPS)
    group = f"CONVERT(st.spelling USING {charset}) COLLATE {collation}"
    return f"""UPDATE {groups} AS g JOIN (
  SELECT pairs.type_null, pairs.group_key, SUM(pairs.spellings - 1) AS extra
  FROM (
    SELECT st.type_null, {group} AS group_key, COUNT(*) AS spellings
    FROM {tables.qualified(SAMPLE_TYPE_COUNTS)} AS st
    JOIN {spellings} AS sp ON sp.type_null = st.type_null AND sp.spelling = st.spelling
    JOIN (
      SELECT type_null, group_key FROM {spellings} GROUP BY type_null, group_key HAVING COUNT(*) > 1
    ) AS several ON several.type_null = sp.type_null AND several.group_key = sp.group_key
    WHERE st.no_sample = 0
    GROUP BY st.type_null, st.sample_id, {group}
  ) AS pairs
  GROUP BY pairs.type_null, pairs.group_key
) AS counted_twice ON counted_twice.type_null = g.type_null AND counted_twice.group_key = g.group_key
SET g.sample_count = g.sample_count - counted_twice.extra,
  g.repeated_measurements = g.repeated_measurements + counted_twice.extra"""


def sums_update_statements(tables: TableLocations, delta_rows: str, charset: str, collation: str) -> tuple[str, ...]:
    """The spellings' and the types' sums moved by ``delta_rows`` (signed state rows: sign,
    sample_id, no_sample, type_null, spelling, measurement_count), then rows left at zero deleted.
    Per type, a sample counts when it has any of its spellings; rows without a sample id count as
    rows only (the scan's COUNT(DISTINCT sample_id) and COUNT(sample_id) leave them out)."""
    charset, collation = _checked("character set", charset), _checked("collation", collation)
    spellings, groups = tables.qualified(TYPE_SPELLINGS), tables.qualified(TYPE_GROUPS)
    group = f"CONVERT(d.spelling USING {charset}) COLLATE {collation}"
    return (
        f"""INSERT INTO {spellings} (type_null, spelling, group_key, measurement_count)
SELECT * FROM (
  SELECT d.type_null, d.spelling, CONVERT(d.spelling USING {charset}) AS group_key,
    SUM(d.sign * d.measurement_count) AS moved
  FROM ({delta_rows}) AS d GROUP BY d.type_null, d.spelling
) AS fresh
ON DUPLICATE KEY UPDATE measurement_count = measurement_count + fresh.moved""",
        f"""INSERT INTO {groups} (type_null, group_key, sample_count, measurement_count, repeated_measurements)
SELECT * FROM (
  SELECT p.type_null, CONVERT(MIN(p.spelling) USING {charset}) AS group_key,
    SUM(CASE WHEN p.no_sample = 0 THEN p.sign ELSE 0 END) AS moved_samples,
    SUM(p.sign * p.pair_rows) AS moved_rows,
    SUM(CASE WHEN p.no_sample = 0 THEN p.sign * (p.pair_rows - 1) ELSE 0 END) AS moved_repeats
  FROM (
    SELECT d.sign, d.sample_id, d.no_sample, d.type_null, MIN(d.spelling) AS spelling,
      SUM(d.measurement_count) AS pair_rows
    FROM ({delta_rows}) AS d
    GROUP BY d.sign, d.sample_id, d.no_sample, d.type_null, {group}
  ) AS p
  GROUP BY p.type_null, CONVERT(p.spelling USING {charset}) COLLATE {collation}
) AS fresh
ON DUPLICATE KEY UPDATE sample_count = sample_count + fresh.moved_samples,
  measurement_count = measurement_count + fresh.moved_rows,
  repeated_measurements = repeated_measurements + fresh.moved_repeats""",
        f"DELETE FROM {spellings} WHERE measurement_count = 0",
        f"DELETE FROM {groups} WHERE measurement_count = 0",
    )


def sums_broken_select(tables: TableLocations) -> str:
    """How many sums are impossible (negative, or rows without samples): zero unless the state
    and the sums have parted (a bug, or a table edited by hand)."""
    return f"""SELECT (SELECT COUNT(*) FROM {tables.qualified(TYPE_SPELLINGS)} WHERE measurement_count < 0)
  + (SELECT COUNT(*) FROM {tables.qualified(TYPE_GROUPS)}
     WHERE sample_count < 0 OR repeated_measurements < 0 OR measurement_count < sample_count + repeated_measurements)"""


def counted_catalog_select(tables: TableLocations, charset: str, collation: str, recorded_table: str) -> str:
    """The rows of :func:`lab_assets.catalog.sql.measurement_type_catalog_select`, read from the
    sums instead of sample_measurements: per type its greatest spelling byte-wise (under
    ``{charset}_bin``, as the scan's MAX; of spellings that collation holds equal, 'ph' and 'ph ',
    the greatest byte for byte), samples, rows, repeated rows, whether it has several spellings
    (under ``{charset}_bin``), and the column name recorded for it; the NULL type as a row with a
    NULL type."""
    charset, collation = _checked("character set", charset), _checked("collation", collation)
    spellings, groups = tables.qualified(TYPE_SPELLINGS), tables.qualified(TYPE_GROUPS)
    binary = f"CONVERT(sp.spelling USING {charset}) COLLATE {charset}_bin"
    return f"""SELECT type_group.measurement_type, type_group.sample_count, type_group.measurement_count,
  type_group.repeated_measurements, type_group.several_spellings, MIN(recorded.column_name) AS recorded_column
FROM (
  SELECT spelled.measurement_type, g.sample_count, g.measurement_count, g.repeated_measurements,
    COALESCE(spelled.spellings, 0) > 1 AS several_spellings
  FROM {groups} AS g
  LEFT JOIN (
    SELECT ranked.group_key, MAX(CASE WHEN ranked.place = 1 THEN ranked.measurement_type END) AS measurement_type,
      COUNT(DISTINCT ranked.measurement_type) AS spellings
    FROM (
      SELECT sp.group_key, {binary} AS measurement_type,
        ROW_NUMBER() OVER (PARTITION BY sp.group_key ORDER BY {binary} DESC, sp.spelling DESC) AS place
      FROM {spellings} AS sp WHERE sp.type_null = 0
    ) AS ranked
    GROUP BY ranked.group_key
  ) AS spelled ON g.type_null = 0 AND spelled.group_key = g.group_key
) AS type_group
LEFT JOIN {tables.qualified(recorded_table)} AS recorded
  ON CONVERT(recorded.measurement_type USING {charset}) COLLATE {collation}
   = type_group.measurement_type COLLATE {collation}
GROUP BY type_group.measurement_type, CAST(type_group.measurement_type AS BINARY), type_group.sample_count,
  type_group.measurement_count, type_group.repeated_measurements, type_group.several_spellings"""
