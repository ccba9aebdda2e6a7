"""Tree logic for the root enrichment: every sample's root (``top_parent_id``) and depth.

The walk goes top-down from the roots (``parent_id IS NULL``) in one recursive CTE. Walking down
from roots means a sample on a parent cycle, or under a parent id that does not exist, is never
reached: it gets ``top_parent_id`` NULL instead of making the query loop. Each sample has one
parent, so no sample is reached twice and the recursion depth is at most the number of samples.
Both servers stop a recursive CTE after 1000 levels by default (MariaDB
``max_recursive_iterations``, MySQL 8 ``cte_max_recursion_depth``), so the caller raises the
session limit to :func:`recursion_limit` first.
"""

from __future__ import annotations

from lab_assets.names import MOVED_SUFFIX, SAMPLE_LINEAGE
from lab_assets.sources.hashes import row_hash_expressions
from lab_assets.sources.locations import TableLocations
from lab_assets.sql.bulk import BulkBuild
from lab_assets.sql.statements import Column, TableDefinition, quote_identifier
from lab_assets.state.sql import BucketScheme, RowSums, StateTable

# parent_id and experiment_id record what the lineage was computed from (the refresh diffs them
# and walks down the recorded parent links: lab_assets.state.sql.descendants_select).
LINEAGE_TABLE = TableDefinition(
    columns=(
        Column("sample_id", "INT NOT NULL", "The sample (samples.id); one row per sample."),
        Column("parent_id", "INT NULL", "The sample it was made from (samples.parent_id); NULL for a root sample."),
        Column("experiment_id", "INT NULL", "The experiment the sample belongs to (samples.experiment_id)."),
        Column(
            "top_parent_id",
            "INT NULL",
            "The sample's root sample, reached by following parent_id up (its own id for a root);"
            " NULL when no root is reachable (a parent cycle, or a parent id that does not exist).",
        ),
        Column(
            "depth",
            "INT NULL",
            "How many parent links lie between the sample and its root (0 for a root); NULL where"
            " top_parent_id is NULL.",
        ),
    ),
    primary_key=("sample_id",),
    indexes=(("top_parent_id",), ("parent_id",)),
)
# The name the server gives ``KEY (parent_id)`` above; a lineage table without it (made before it
# was added) is rebuilt whole by the next run.
RECORDED_PARENT_INDEX = "parent_id"


def _walk(tables: TableLocations) -> str:
    """The recursive walk down from the roots, each level through the index on parent_id
    (:meth:`TableLocations.children_join`); each row also carries the parent_id and
    experiment_id it was computed from, read in the same statement."""
    return f"""WITH RECURSIVE tree (sample_id, parent_id, experiment_id, top_parent_id, depth) AS (
  SELECT s.id, s.parent_id, s.experiment_id, s.id, 0 FROM {tables.samples} AS s WHERE s.parent_id IS NULL
  UNION ALL
  SELECT child.id, child.parent_id, child.experiment_id, tree.top_parent_id, tree.depth + 1
  FROM tree {tables.children_join("tree.sample_id")}
)"""


def lineage_select(tables: TableLocations) -> str:
    """One row per sample: sample_id, parent_id, experiment_id, top_parent_id (NULL if no root is
    reachable), depth."""
    samples = tables.samples
    return f"""{_walk(tables)}
SELECT s.id AS sample_id, s.parent_id, s.experiment_id, tree.top_parent_id, tree.depth
FROM {samples} AS s LEFT JOIN tree ON tree.sample_id = s.id"""


def lineage_bulk_build(tables: TableLocations) -> BulkBuild:
    """The same rows as :func:`lineage_select`, built faster into an empty table.

    The LEFT JOIN from samples to the walk's result makes MariaDB index its materialized
    recursive CTE (``key0``, on an on-disk Aria temporary table once it outgrows tmp_table_size);
    that index costs most of the build (bench/RESULTS.md). Here the walk's rows
    go straight into the table, sorted by sample_id (primary-key order, no page splits), and the
    samples the walk never reached (cycles, missing parents) are added afterwards with NULL root
    and depth by an anti-join on the new table's primary key. A sample added between those two
    statements is recorded with a NULL root; the refresh re-examines every NULL-root sample, so
    the next refresh corrects it."""
    samples = tables.samples
    return BulkBuild(
        select_sql=f"{_walk(tables)}\nSELECT sample_id, parent_id, experiment_id, top_parent_id, depth"
        " FROM tree ORDER BY sample_id",
        missing_rows_sql="SELECT s.id AS sample_id, s.parent_id, s.experiment_id, NULL AS top_parent_id,"
        f" NULL AS depth FROM {samples} AS s",
    )


LINEAGE_BUCKETS = BucketScheme(64)

SAMPLE_HASH_A, SAMPLE_HASH_B = row_hash_expressions(
    ["s.id", "s.parent_id", "s.experiment_id"], ["s.id", "s.parent_id", "s.experiment_id"]
)


def lineage_bucket_sums_select(tables: TableLocations) -> str:
    """Bucket sums (:data:`BUCKET_SUMS_DEFINITION`) of the samples' (id, parent_id,
    experiment_id): one sequential scan."""
    return f"""SELECT {LINEAGE_BUCKETS.bucket_of("s.id")} AS bucket, COUNT(*) AS row_count,
  SUM({SAMPLE_HASH_A}) AS hash_a, SUM({SAMPLE_HASH_B}) AS hash_b
FROM {tables.samples} AS s GROUP BY bucket ORDER BY NULL"""


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
    full refresh recorded mid-change."""
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


# What a lineage row adds to its bucket's sums: the same hashes of what it recorded (sample_id,
# parent_id, experiment_id) as of the source row (lineage_bucket_sums_select), so an unchanged
# sample's sums cancel.
_RECORDED = ["state.sample_id", "state.parent_id", "state.experiment_id"]
LINEAGE_STATE = StateTable(
    name=SAMPLE_LINEAGE,
    definition=LINEAGE_TABLE,
    buckets=LINEAGE_BUCKETS,
    row_sums=RowSums("1", *row_hash_expressions(_RECORDED, _RECORDED)),
    extra_role=MOVED_SUFFIX,
)
