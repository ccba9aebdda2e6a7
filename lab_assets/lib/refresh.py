"""SQL for the incremental refresh.

lab_assets keeps, in its own tables, what it last saw of the sources:

* ``sample_lineage`` holds each sample's ``parent_id`` and ``experiment_id`` next to its root;
* ``sample_measurement_digests`` holds, per sample id found in ``sample_measurements``, the number
  of its measurement rows and the sums of two row hashes over them (a 64-bit digest).

A refresh finds what changed in two levels, both set-based:

1. **buckets**: one sequential scan of the source table sums row counts and row hashes per
   bucket of consecutive sample ids (:class:`BucketScheme`); buckets whose sums differ from the
   same sums over the stored state hold every change (:func:`changed_bucket_members_select`).
   A scan with a small grouping costs a fraction of joining every source row to its stored
   state. The stored side's sums are kept in a bucket table next to each state table
   (``sample_lineage_buckets_64``, ``sample_measurement_digests_buckets_4``) that always equals the
   sums over the state table: updated in the transaction that updates the state table, dropped
   before the state table is rebuilt whole and summed again after (or, if that was cut short,
   by the next refresh).
2. **ids**: only the ids of the changed buckets are compared one by one, by primary-key and
   index lookups. For measurements the candidates' live digests are read once into a work
   table: compared with the stored ones, written from there for the changed ids, and summed for
   the new bucket sums (:func:`candidate_bucket_sums_select`).

It then rebuilds only the changed rows and the subtrees under changed parents, and marks the
affected sample ids in ``lab_pending_samples``; the flat table rebuilds exactly the pending rows
and, once they are written, checks them against one snapshot of the sources, setting the digests
to that snapshot and marking rows that changed meanwhile again (lab_assets.lib.verification).
The marker row ``REBUILD_ALL_MARKER`` in the pending table asks for a full rebuild (written
when an upstream table was rebuilt whole; lab_assets.refresh.pending).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lab_assets.lib.bulk import CHUNK_FILTER, BulkBuild
from lab_assets.lib.lineage import RECORDED_PARENT_INDEX
from lab_assets.lib.names import (
    NEW_SUFFIX,
    SAMPLE_LINEAGE,
    SAMPLE_MEASUREMENT_DIGESTS,
    helper_table,
)
from lab_assets.lib.sources import measurement_hash_expressions, row_hash_expressions
from lab_assets.lib.sql import Column, TableDefinition, quote_identifier
from lab_assets.lib.tables import TableLocations
from lab_assets.lib.value_types import ValueType

# A work table of sample ids (candidates, changes, moved samples; also the pending table).
CHANGE_SET_DEFINITION = TableDefinition(columns=(Column("sample_id", "INT NOT NULL"),), primary_key=("sample_id",))
BUCKET_SUMS = ("row_count", "hash_a", "hash_b")
# Per bucket: the sums compared with the source (row count and the sums of both 32-bit row hashes;
# BIGINT holds the sums of up to 2^31 rows per bucket), and how many rows the state table holds
# in the bucket, so the state table's row count is a sum over the small bucket table.
BUCKET_SUMS_DEFINITION = TableDefinition(
    columns=(
        Column("bucket", "BIGINT NOT NULL"),
        *(Column(c, "BIGINT NOT NULL") for c in BUCKET_SUMS),
        Column("state_rows", "BIGINT NOT NULL"),
    ),
    primary_key=("bucket",),
)

DIGEST_TABLE_DEFINITION = TableDefinition(
    columns=(
        Column("sample_id", "INT NOT NULL"),
        Column("measurement_rows", "BIGINT NOT NULL"),
        Column("digest_a", "BIGINT NOT NULL"),
        Column("digest_b", "BIGINT NOT NULL"),
    ),
    primary_key=("sample_id",),
)

_DIGITS = " UNION ALL ".join(f"SELECT {i} AS digit" for i in range(8))


@dataclass(frozen=True)
class BucketScheme:
    """Buckets of ``width`` consecutive sample ids."""

    width: int
    # Shifts every INT id to a non-negative number first, so DIV (which truncates toward zero)
    # puts exactly ``width`` ids in every bucket, negative ids included.
    id_shift: int = 2**31

    def __post_init__(self) -> None:
        if not 2 <= self.width <= 8**4:
            raise ValueError(f"bucket width must be between 2 and {8**4}, got {self.width}")

    def bucket_of(self, id_sql: str) -> str:
        return f"({id_sql} + {self.id_shift}) DIV {self.width}"

    def member_id(self, bucket_sql: str, offset_sql: str) -> str:
        return f"{bucket_sql} * {self.width} - {self.id_shift} + {offset_sql}"

    def offsets(self) -> str:
        """A derived table of the offsets 0 .. width-1 (column ``offset_in_bucket``): octal digits
        cross-joined, the offsets past the width filtered out."""
        digits = max(1, math.ceil(math.log(self.width, 8) - 1e-9))
        tables = " CROSS JOIN ".join(f"({_DIGITS}) AS d{i}" for i in range(digits))
        offset = " + ".join(f"d{i}.digit * {8**i}" for i in range(digits))
        return f"(SELECT {offset} AS offset_in_bucket FROM {tables} WHERE {offset} < {self.width})"

    def table_for(self, state_table: str) -> str:
        """The bucket table of ``state_table``; named with the width, so a table summed with
        another width is never read as this one."""
        return f"{state_table}_buckets_{self.width}"


# With changes spread evenly over 1% of the samples (the bench's case), 4 ids per bucket leaves
# ~96% of the buckets unchanged; at 1M samples the scan that sums 1.85M measurement rows into
# buckets measured the same for 8, 4 and 2 ids per bucket, while fewer candidates make the
# id-by-id step cheaper. Sample changes cluster (new samples at the end, a few moves), so lineage
# takes wider buckets and a smaller bucket table.
MEASUREMENT_BUCKETS = BucketScheme(4)
LINEAGE_BUCKETS = BucketScheme(64)

SAMPLE_HASH_A, SAMPLE_HASH_B = row_hash_expressions(
    ["s.id", "s.parent_id", "s.experiment_id"], ["s.id", "s.parent_id", "s.experiment_id"]
)
# A measurement row's hashes depend on the type of its value (lab_assets.lib.value_types): each
# builder below takes it. A lab that changes that type changes every stored digest's hash (the
# value's text changes, or the formula): the refresh then finds every sample with measurements
# changed and rebuilds the digests whole (more than a quarter of the samples), as it did after
# earlier changes of the formula.


def _differing_keys_select(key: str, sums: tuple[str, ...], live_sql: str, stored_sql: str) -> str:
    """Keys whose ``sums`` columns differ between two SELECTs that each give at most one row per
    key and name their columns ``key`` and ``sums``: the stored side is subtracted from the live
    side and the keys whose sums do not all cancel are returned. A key on one side only always
    differs, because its row count (the first of ``sums``) is at least 1."""
    negated = ", ".join(f"-{c}" for c in sums)
    differs = " OR ".join(f"SUM({c}) <> 0" for c in sums)
    return f"""SELECT {key} FROM (
SELECT * FROM (
{live_sql}
) AS live_side
UNION ALL
SELECT {key}, {negated} FROM (
{stored_sql}
) AS stored_side
) AS both_sides
GROUP BY {key}
HAVING {differs}"""


def changed_bucket_members_select(
    tables: TableLocations, scheme: BucketScheme, live_sums_select: str, buckets_table: str
) -> str:
    """Every sample id of the buckets whose live sums (``live_sums_select``, one scan of a source
    table, kept in the server's in-memory temporary tables) differ from ``buckets_table``: the
    candidates the second level compares one by one."""
    differing = _differing_keys_select(
        "bucket",
        BUCKET_SUMS,
        live_sums_select,
        f"SELECT bucket, {', '.join(BUCKET_SUMS)} FROM {tables.qualified(buckets_table)}",
    )
    return f"""SELECT {scheme.member_id("b.bucket", "o.offset_in_bucket")} AS sample_id
FROM (
{differing}
) AS b CROSS JOIN {scheme.offsets()} AS o"""


_DIGEST_SUMS = ("measurement_rows", "digest_a", "digest_b")


def measurement_digest_select(tables: TableLocations, value_type: ValueType, only_samples_in: str | None = None) -> str:
    """Per sample id in ``sample_measurements`` (orphans too; rows without a sample id are never
    in the flat table): its row count and the sums of both row hashes. With ``only_samples_in``
    (a work table of sample ids) only those, by index lookups. ``CHUNK_FILTER`` lets a bulk build
    run it in ranges of sample ids (:func:`digest_bulk_build`)."""
    measurements = tables.sample_measurements
    if only_samples_in:
        source = f"{tables.qualified(only_samples_in)} AS c JOIN {measurements} AS m ON m.sample_id = c.sample_id"
    else:
        source = f"{measurements} AS m"
    hash_a, hash_b = measurement_hash_expressions(value_type)
    return f"""SELECT m.sample_id, COUNT(*) AS measurement_rows,
  SUM({hash_a}) AS digest_a, SUM({hash_b}) AS digest_b
FROM {source}
WHERE m.sample_id IS NOT NULL AND {CHUNK_FILTER}
GROUP BY m.sample_id"""


def digest_bulk_build(tables: TableLocations, value_type: ValueType) -> BulkBuild:
    """The whole digest table in ranges of sample ids on two connections, each range read in
    sample-id order through the index: measured faster than one scan that groups a million ids
    in a temporary table."""
    return BulkBuild(
        select_sql=measurement_digest_select(tables, value_type),
        chunk_key="m.sample_id",
        chunk_bounds_sql=f"SELECT MIN(m.sample_id), MAX(m.sample_id) FROM {tables.sample_measurements} AS m",
        parallel=2,
    )


def measurement_bucket_sums_select(tables: TableLocations, value_type: ValueType) -> str:
    """Bucket sums (:data:`BUCKET_SUMS_DEFINITION`) of ``sample_measurements``: one sequential scan."""
    hash_a, hash_b = measurement_hash_expressions(value_type)
    return f"""SELECT {MEASUREMENT_BUCKETS.bucket_of("m.sample_id")} AS bucket, COUNT(*) AS row_count,
  SUM({hash_a}) AS hash_a, SUM({hash_b}) AS hash_b
FROM {tables.sample_measurements} AS m WHERE m.sample_id IS NOT NULL GROUP BY bucket ORDER BY NULL"""


def _buckets_of_ids(tables: TableLocations, scheme: BucketScheme, id_tables: tuple[str, ...]) -> str:
    """The distinct buckets of the sample ids in the work tables ``id_tables``."""
    ids = " UNION ALL ".join(f"SELECT sample_id FROM {tables.qualified(t)}" for t in id_tables)
    return f"SELECT DISTINCT {scheme.bucket_of('ids.sample_id')} AS bucket FROM ({ids}) AS ids"


def _touched_buckets(tables: TableLocations, scheme: BucketScheme, id_tables: tuple[str, ...]) -> tuple[str, str, str]:
    """FROM items, join condition and GROUP BY key to sum a state table (alias ``state``, key
    ``sample_id``) over all buckets (no ``id_tables``), or over the buckets of the ids in them."""
    if not id_tables:
        return "", "", scheme.bucket_of("state.sample_id")
    touched = f"""({_buckets_of_ids(tables, scheme, id_tables)}) AS touched
CROSS JOIN {scheme.offsets()} AS o
JOIN """
    return (
        touched,
        f" ON state.sample_id = {scheme.member_id('touched.bucket', 'o.offset_in_bucket')}",
        "touched.bucket",
    )


def digest_bucket_sums_select(tables: TableLocations, only_buckets_of: tuple[str, ...] = ()) -> str:
    """Bucket sums of the stored digest table: all buckets, or those of the ids in the work
    tables ``only_buckets_of``."""
    touched, on, bucket = _touched_buckets(tables, MEASUREMENT_BUCKETS, only_buckets_of)
    return f"""SELECT {bucket} AS bucket,
  SUM(state.measurement_rows) AS row_count,
  SUM(state.digest_a) AS hash_a, SUM(state.digest_b) AS hash_b, COUNT(*) AS state_rows
FROM {touched}{tables.qualified(SAMPLE_MEASUREMENT_DIGESTS)} AS state{on} GROUP BY {bucket}"""


def candidate_bucket_sums_select(tables: TableLocations, live_digests_table: str) -> str:
    """The new sums of every candidate bucket, from the candidates' live digests alone: every id
    of a candidate bucket is a candidate, and once the changed digests are written from the live
    ones (and the ids without measurements deleted), the stored digests of those buckets are the
    live digests. So the bucket table needs no lookups into the digest table."""
    return f"""SELECT {MEASUREMENT_BUCKETS.bucket_of("live.sample_id")} AS bucket,
  SUM(live.measurement_rows) AS row_count,
  SUM(live.digest_a) AS hash_a, SUM(live.digest_b) AS hash_b, COUNT(*) AS state_rows
FROM {tables.qualified(live_digests_table)} AS live GROUP BY bucket"""


def candidate_digests_select(tables: TableLocations, candidates_table: str, value_type: ValueType) -> str:
    """The live digests (:data:`DIGEST_TABLE_DEFINITION`) of the candidate ids that have
    measurements, by index lookups: compared with the stored digests by
    :func:`changed_measurement_samples_select`, then written for the changed ones as they are, so
    each candidate's measurements are read once."""
    return measurement_digest_select(tables, value_type, only_samples_in=candidates_table)


def changed_measurement_samples_select(tables: TableLocations, candidates_table: str, live_digests_table: str) -> str:
    """Of the candidate ids, those whose measurements were added, changed or deleted since the
    stored digests: live digests (``live_digests_table``, see :func:`candidate_digests_select`)
    and stored ones compared by primary-key lookups."""
    stored = f"""SELECT d.sample_id, d.measurement_rows, d.digest_a, d.digest_b
FROM {tables.qualified(candidates_table)} AS c
JOIN {tables.qualified(SAMPLE_MEASUREMENT_DIGESTS)} AS d ON d.sample_id = c.sample_id"""
    live = f"SELECT sample_id, measurement_rows, digest_a, digest_b FROM {tables.qualified(live_digests_table)}"
    return _differing_keys_select("sample_id", _DIGEST_SUMS, live, stored)


def changed_digests_select(tables: TableLocations, live_digests_table: str, changes_table: str) -> str:
    """The new digest rows of the changed samples: their live digests as compared."""
    return f"""SELECT live.sample_id, live.measurement_rows, live.digest_a, live.digest_b
FROM {tables.qualified(changes_table)} AS c
JOIN {tables.qualified(live_digests_table)} AS live ON live.sample_id = c.sample_id"""


def lineage_bucket_sums_select(tables: TableLocations) -> str:
    """Bucket sums (:data:`BUCKET_SUMS_DEFINITION`) of the samples' (id, parent_id,
    experiment_id): one sequential scan."""
    return f"""SELECT {LINEAGE_BUCKETS.bucket_of("s.id")} AS bucket, COUNT(*) AS row_count,
  SUM({SAMPLE_HASH_A}) AS hash_a, SUM({SAMPLE_HASH_B}) AS hash_b
FROM {tables.samples} AS s GROUP BY bucket ORDER BY NULL"""


def stored_lineage_bucket_sums_select(tables: TableLocations, only_buckets_of: tuple[str, ...] = ()) -> str:
    """The same sums over what ``sample_lineage`` recorded: all buckets, or those of the ids in
    ``only_buckets_of``."""
    touched, on, bucket = _touched_buckets(tables, LINEAGE_BUCKETS, only_buckets_of)
    columns = ["state.sample_id", "state.parent_id", "state.experiment_id"]
    hash_a, hash_b = row_hash_expressions(columns, columns)
    return f"""SELECT {bucket} AS bucket, COUNT(*) AS row_count, SUM({hash_a}) AS hash_a, SUM({hash_b}) AS hash_b,
  COUNT(*) AS state_rows
FROM {touched}{tables.qualified(SAMPLE_LINEAGE)} AS state{on} GROUP BY {bucket}"""


def source_totals_selects(tables: TableLocations, value_type: ValueType) -> tuple[str, str]:
    """Row count and hash sums of ``samples`` and of ``sample_measurements`` (rows with a sample
    id) as the refresh hashes them, one scan each: equal to :func:`recorded_totals_selects` when
    the state tables record exactly the sources (the sums over all buckets). ``value_type``:
    sample_measurements.value's, as the digests were hashed."""
    measurement_a, measurement_b = measurement_hash_expressions(value_type)
    return (
        f"SELECT COUNT(*), COALESCE(SUM({SAMPLE_HASH_A}), 0), COALESCE(SUM({SAMPLE_HASH_B}), 0)"
        f" FROM {tables.samples} AS s",
        f"SELECT COUNT(*), COALESCE(SUM({measurement_a}), 0), COALESCE(SUM({measurement_b}), 0)"
        f" FROM {tables.sample_measurements} AS m WHERE m.sample_id IS NOT NULL",
    )


def recorded_totals_selects(tables: TableLocations) -> tuple[str, str]:
    """The same totals over what ``sample_lineage`` and ``sample_measurement_digests`` recorded,
    summed from their small bucket tables."""
    totals = "SELECT COALESCE(SUM(row_count), 0), COALESCE(SUM(hash_a), 0), COALESCE(SUM(hash_b), 0) FROM"
    return (
        f"{totals} {tables.qualified(LINEAGE_BUCKETS.table_for(SAMPLE_LINEAGE))}",
        f"{totals} {tables.qualified(MEASUREMENT_BUCKETS.table_for(SAMPLE_MEASUREMENT_DIGESTS))}",
    )


def state_row_count_select(tables: TableLocations, buckets_table: str) -> str:
    """The number of rows of a state table, summed over its bucket table (which equals the sums
    over the state table; kept in the same transaction)."""
    return f"SELECT COALESCE(SUM(state_rows), 0) FROM {tables.qualified(buckets_table)}"


def bucket_table_build_statements(tables: TableLocations, buckets_table: str, stored_sums_select) -> tuple[str, ...]:
    """(Re)build the bucket table from the whole state table (``stored_sums_select(tables)``),
    aside and renamed in, so an interrupted build leaves no partial table."""
    staging_table = helper_table(buckets_table, NEW_SUFFIX)
    staging = tables.qualified(staging_table)
    return (
        f"DROP TABLE IF EXISTS {staging}",
        BUCKET_SUMS_DEFINITION.create_statement(tables.output_database, staging_table),
        f"INSERT INTO {staging} {stored_sums_select(tables)}",
        f"DROP TABLE IF EXISTS {tables.qualified(buckets_table)}",
        f"RENAME TABLE {staging} TO {tables.qualified(buckets_table)}",
    )


def bucket_table_update_statements(
    tables: TableLocations, scheme: BucketScheme, buckets_table: str, id_tables: tuple[str, ...], new_sums_select: str
) -> tuple[str, ...]:
    """Bring the bucket table up to date for the buckets of the ids in the work tables
    ``id_tables``: their rows are replaced by ``new_sums_select`` (the same sums over the state
    table just written); run in the write's transaction. A bucket left without state rows
    disappears. Callers pass the candidates (every bucket whose sums differed) as well as the
    changed ids, so a bucket whose stored sums are stale but whose ids all compare equal (sums
    of an older hash, say) is repaired instead of being compared id by id on every refresh."""
    buckets = tables.qualified(buckets_table)
    return (
        f"""DELETE b FROM {buckets} AS b
JOIN ({_buckets_of_ids(tables, scheme, id_tables)}) AS touched
ON touched.bucket = b.bucket""",
        f"INSERT INTO {buckets} {new_sums_select}",
    )


# The lineage's changed samples as one snapshot saw them: the refresh computes their roots from
# these values (never from a later read of samples) and records them, so anything that moves after
# the snapshot differs from the record and is found by the next refresh. ``present`` 0: deleted.
LINEAGE_CHANGES_DEFINITION = TableDefinition(
    columns=(
        Column("sample_id", "INT NOT NULL"),
        Column("parent_id", "INT NULL"),
        Column("experiment_id", "INT NULL"),
        Column("present", "TINYINT NOT NULL"),
    ),
    primary_key=("sample_id",),
    indexes=(("parent_id",),),
)


def changed_samples_select(tables: TableLocations, candidates_table: str) -> str:
    """Rows of :data:`LINEAGE_CHANGES_DEFINITION`, one snapshot: of the candidate ids (members of
    changed buckets), those that are new, deleted, or whose parent or experiment differs from what
    ``sample_lineage`` recorded; plus every sample recorded without a root: those are few (cycles,
    missing parents; an index lookup) and re-examining them each time repairs a sample that a
    whole-table build recorded mid-change."""
    samples = tables.samples
    lineage = tables.qualified(SAMPLE_LINEAGE)
    candidates = tables.qualified(candidates_table)
    return f"""SELECT s.id, s.parent_id, s.experiment_id, 1 FROM {candidates} AS c
JOIN {samples} AS s ON s.id = c.sample_id
LEFT JOIN {lineage} AS l ON l.sample_id = s.id
WHERE l.sample_id IS NULL OR NOT (l.parent_id <=> s.parent_id) OR NOT (l.experiment_id <=> s.experiment_id)
UNION
SELECT l.sample_id, NULL, NULL, 0 FROM {candidates} AS c
JOIN {lineage} AS l ON l.sample_id = c.sample_id
WHERE NOT EXISTS (SELECT 1 FROM {samples} AS s WHERE s.id = l.sample_id)
UNION
SELECT l.sample_id, s.parent_id, s.experiment_id, s.id IS NOT NULL FROM {lineage} AS l
LEFT JOIN {samples} AS s ON s.id = l.sample_id
WHERE l.top_parent_id IS NULL"""


def moved_samples_select(tables: TableLocations, changes_table: str) -> str:
    """Of the changed samples, those whose place in a tree changed as the snapshot saw them (new,
    deleted, another parent, or no root recorded): their subtrees need new roots. Reads only
    lab_assets' tables."""
    lineage = tables.qualified(SAMPLE_LINEAGE)
    return f"""SELECT c.sample_id FROM {tables.qualified(changes_table)} AS c
LEFT JOIN {lineage} AS l ON l.sample_id = c.sample_id
WHERE c.present = 0 OR l.sample_id IS NULL OR l.top_parent_id IS NULL OR NOT (l.parent_id <=> c.parent_id)"""


def descendants_select(tables: TableLocations, seeds_table: str) -> str:
    """Rows of :data:`LINEAGE_CHANGES_DEFINITION` for the seeds and every sample below them, each
    with its parent and experiment read in the same statement (one snapshot; present 0 when the
    sample is gone). UNION (not UNION ALL) drops rows already found, so the walk ends even on a
    parent cycle.

    The walk goes down both the live parent links and the ones ``sample_lineage`` recorded
    (through its ``parent_id`` index): a recorded root is its recorded parent's, so every sample
    recorded under a moved one is computed again, also when it left the subtree after the changed
    samples were read (an earlier statement) and comes back as recorded once the run ended;
    walking the live links alone would leave its recorded root stale with nothing differing
    from the record."""
    lineage = tables.qualified(SAMPLE_LINEAGE)
    return f"""WITH RECURSIVE down (sample_id) AS (
  SELECT sample_id FROM {tables.qualified(seeds_table)}
  UNION
  SELECT child.id FROM down {tables.children_join("down.sample_id")}
  UNION
  SELECT recorded.sample_id FROM down
  STRAIGHT_JOIN {lineage} AS recorded FORCE INDEX ({quote_identifier(RECORDED_PARENT_INDEX)})
    ON recorded.parent_id = down.sample_id
)
SELECT down.sample_id, s.parent_id, s.experiment_id, s.id IS NOT NULL
FROM down LEFT JOIN {tables.samples} AS s ON s.id = down.sample_id"""


def lineage_update_select(tables: TableLocations, changes_table: str) -> str:
    """New lineage rows for the changed samples still present, computed from the parents and
    experiments the changes table holds (:data:`LINEAGE_CHANGES_DEFINITION`, as the snapshot saw
    them) and the roots recorded for unchanged parents; never from a later read of ``samples``.

    The walk starts at changed samples that are roots or whose parent is unchanged (so the
    parent's stored root is still right) and goes down through changed samples only (the changes
    table's parent_id index, forced like :meth:`TableLocations.children_join`); a changed sample
    it never reaches is on a cycle or under a missing parent: root NULL.
    """
    lineage = tables.qualified(SAMPLE_LINEAGE)
    changes = tables.qualified(changes_table)
    return f"""WITH RECURSIVE tree (sample_id, top_parent_id, depth) AS (
  SELECT c.sample_id,
    CASE WHEN c.parent_id IS NULL THEN c.sample_id ELSE parent.top_parent_id END,
    CASE WHEN c.parent_id IS NULL THEN 0 ELSE parent.depth + 1 END
  FROM {changes} AS c
  LEFT JOIN {changes} AS changed_parent ON changed_parent.sample_id = c.parent_id
  LEFT JOIN {lineage} AS parent ON parent.sample_id = c.parent_id
  WHERE c.present = 1 AND changed_parent.sample_id IS NULL
    AND (c.parent_id IS NULL OR parent.top_parent_id IS NOT NULL)
  UNION ALL
  SELECT child.sample_id, tree.top_parent_id, tree.depth + 1
  FROM tree
  STRAIGHT_JOIN {changes} AS child FORCE INDEX (`parent_id`) ON child.parent_id = tree.sample_id
  WHERE child.present = 1
)
SELECT c.sample_id, c.parent_id, c.experiment_id, tree.top_parent_id, tree.depth
FROM {changes} AS c
LEFT JOIN tree ON tree.sample_id = c.sample_id
WHERE c.present = 1"""
