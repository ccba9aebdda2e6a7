"""SQL for the incremental refresh.

lab_assets keeps, in its own tables, what it last saw of the sources:

* ``sample_lineage`` holds each sample's ``parent_id`` and ``experiment_id`` next to its root;
* ``sample_measurement_digests`` holds, per sample, the number of measurement rows and two
  independent order-free CRC32 sums of them (a 64-bit digest).

A refresh diffs the live source tables against those (full scans with primary-key lookups, cheap
next to a build), rebuilds only the changed rows and the subtrees under changed parents, and marks
the affected sample ids in ``lab_pending_samples``; the flat table rebuilds exactly the pending
rows and clears them in the same transaction. State is always recorded from data read no later
than the data the flat rows are built from, so a change that lands mid-refresh is seen by the next
one. The marker row ``REBUILD_ALL_MARKER`` in the pending table asks for a full rebuild (written
when an upstream table was rebuilt whole).
"""

from __future__ import annotations

from lab_assets.lib.bulk import CHUNK_FILTER
from lab_assets.lib.sql import Column, TableDefinition, qualified_name

PENDING_TABLE = "lab_pending_samples"
REBUILD_ALL_MARKER = -2147483648  # INT's minimum; AUTO_INCREMENT sample ids are positive
PENDING_TABLE_DEFINITION = TableDefinition(columns=(Column("sample_id", "INT NOT NULL"),), primary_key=("sample_id",))
CHANGE_SET_DEFINITION = TableDefinition(columns=(Column("sample_id", "INT NOT NULL"),), primary_key=("sample_id",))

DIGEST_TABLE = "sample_measurement_digests"
DIGEST_TABLE_DEFINITION = TableDefinition(
    columns=(
        Column("sample_id", "INT NOT NULL"),
        Column("measurement_rows", "BIGINT NOT NULL"),
        Column("digest_a", "BIGINT NOT NULL"),
        Column("digest_b", "BIGINT NOT NULL"),
    ),
    primary_key=("sample_id",),
)

_ROW = "CONCAT_WS(',', m.measurement_type, m.value, CONCAT(ISNULL(m.measurement_type), ISNULL(m.value)))"
_DIGEST_A = f"COALESCE(SUM(IF(m.sample_id IS NULL, 0, CRC32({_ROW}))), 0)"
_DIGEST_B = f"COALESCE(SUM(IF(m.sample_id IS NULL, 0, CRC32(CONCAT('~', {_ROW})))), 0)"


def digest_select(schema: str, only_changed_in: str | None = None) -> str:
    """One row per sample: its measurement row count and two CRC32 sums (0 without measurements).

    Driven by ``samples`` and grouped by ``s.id`` so the server scans samples in primary-key order
    and aggregates as it goes (no temporary table; the shape bench/RESULTS.md found fastest for
    the pivot). Measurements of sample ids that do not exist are not tracked: such a sample, once
    it appears, is new and rebuilt anyway. ``CHUNK_FILTER`` lets a bulk build run it in id ranges.
    """
    samples = qualified_name(schema, "samples")
    measurements = qualified_name(schema, "sample_measurements")
    restrict = f" JOIN {qualified_name(schema, only_changed_in)} AS c ON c.sample_id = s.id" if only_changed_in else ""
    return f"""SELECT s.id AS sample_id, COUNT(m.sample_id) AS measurement_rows,
  {_DIGEST_A} AS digest_a, {_DIGEST_B} AS digest_b
FROM {samples} AS s{restrict}
LEFT JOIN {measurements} AS m ON m.sample_id = s.id
WHERE {CHUNK_FILTER}
GROUP BY s.id"""


def changed_digests_select(schema: str) -> str:
    """Sample ids whose measurements differ from the stored digests (added, changed or gone),
    in one samples-ordered pass, plus digests of samples that no longer exist."""
    samples = qualified_name(schema, "samples")
    measurements = qualified_name(schema, "sample_measurements")
    digests = qualified_name(schema, DIGEST_TABLE)
    return f"""SELECT s.id FROM {samples} AS s
LEFT JOIN {digests} AS d ON d.sample_id = s.id
LEFT JOIN {measurements} AS m ON m.sample_id = s.id
GROUP BY s.id
HAVING MAX(d.sample_id) IS NULL OR COUNT(m.sample_id) <> MAX(d.measurement_rows)
   OR {_DIGEST_A} <> MAX(d.digest_a) OR {_DIGEST_B} <> MAX(d.digest_b)
UNION
SELECT d.sample_id FROM {digests} AS d
WHERE NOT EXISTS (SELECT 1 FROM {samples} AS s WHERE s.id = d.sample_id)"""


def changed_samples_select(schema: str) -> str:
    """Sample ids that are new, deleted, or whose parent or experiment differs from what
    ``sample_lineage`` recorded, plus every sample recorded without a root: those are few
    (cycles, missing parents) and re-examining them each time repairs a sample that a
    whole-table build recorded mid-change. One pass over samples with primary-key lookups."""
    samples = qualified_name(schema, "samples")
    lineage = qualified_name(schema, "sample_lineage")
    return f"""SELECT s.id FROM {samples} AS s LEFT JOIN {lineage} AS l ON l.sample_id = s.id
WHERE l.sample_id IS NULL OR l.top_parent_id IS NULL
   OR NOT (l.parent_id <=> s.parent_id) OR NOT (l.experiment_id <=> s.experiment_id)
UNION
SELECT l.sample_id FROM {lineage} AS l
WHERE NOT EXISTS (SELECT 1 FROM {samples} AS s WHERE s.id = l.sample_id)"""


def moved_samples_select(schema: str, changes_table: str) -> str:
    """Of the changed samples, those whose place in a tree changed (new, deleted, another
    parent, or no root recorded): their subtrees need new roots. Reads only the changed ids."""
    samples = qualified_name(schema, "samples")
    lineage = qualified_name(schema, "sample_lineage")
    return f"""SELECT c.sample_id FROM {qualified_name(schema, changes_table)} AS c
LEFT JOIN {samples} AS s ON s.id = c.sample_id
LEFT JOIN {lineage} AS l ON l.sample_id = c.sample_id
WHERE s.id IS NULL OR l.sample_id IS NULL OR l.top_parent_id IS NULL OR NOT (l.parent_id <=> s.parent_id)"""


def descendants_select(schema: str, seeds_table: str) -> str:
    """The seeds and every sample below them. UNION (not UNION ALL) drops rows already found,
    so the walk ends even on a parent cycle."""
    samples = qualified_name(schema, "samples")
    return f"""WITH RECURSIVE down (sample_id) AS (
  SELECT sample_id FROM {qualified_name(schema, seeds_table)}
  UNION
  SELECT child.id FROM down JOIN {samples} AS child ON child.parent_id = down.sample_id
)
SELECT sample_id FROM down"""


def lineage_update_select(schema: str, changes_table: str) -> str:
    """New lineage rows for the changed samples (those still present).

    The walk starts at changed samples that are roots or whose parent is unchanged (so the
    parent's stored root is still right) and goes down through changed samples only; a changed
    sample it never reaches is on a cycle or under a missing parent: root NULL.
    """
    samples = qualified_name(schema, "samples")
    lineage = qualified_name(schema, "sample_lineage")
    changes = qualified_name(schema, changes_table)
    return f"""WITH RECURSIVE tree (sample_id, top_parent_id, depth) AS (
  SELECT s.id,
    CASE WHEN s.parent_id IS NULL THEN s.id ELSE parent.top_parent_id END,
    CASE WHEN s.parent_id IS NULL THEN 0 ELSE parent.depth + 1 END
  FROM {changes} AS c
  JOIN {samples} AS s ON s.id = c.sample_id
  LEFT JOIN {changes} AS changed_parent ON changed_parent.sample_id = s.parent_id
  LEFT JOIN {lineage} AS parent ON parent.sample_id = s.parent_id
  WHERE changed_parent.sample_id IS NULL AND (s.parent_id IS NULL OR parent.top_parent_id IS NOT NULL)
  UNION ALL
  SELECT child.id, tree.top_parent_id, tree.depth + 1
  FROM tree
  JOIN {samples} AS child ON child.parent_id = tree.sample_id
  JOIN {changes} AS changed_child ON changed_child.sample_id = child.id
)
SELECT s.id AS sample_id, s.parent_id, s.experiment_id, tree.top_parent_id, tree.depth
FROM {changes} AS c
JOIN {samples} AS s ON s.id = c.sample_id
LEFT JOIN tree ON tree.sample_id = s.id"""

