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

from lab_assets.lib.bulk import BulkBuild
from lab_assets.lib.sql import Column, TableDefinition
from lab_assets.lib.tables import TableLocations

# parent_id and experiment_id record what the lineage was computed from (the refresh diffs them
# and walks down the recorded parent links: lab_assets.lib.refresh.descendants_select).
LINEAGE_TABLE = TableDefinition(
    columns=(
        Column("sample_id", "INT NOT NULL"),
        Column("parent_id", "INT NULL"),
        Column("experiment_id", "INT NULL"),
        Column("top_parent_id", "INT NULL"),
        Column("depth", "INT NULL"),
    ),
    primary_key=("sample_id",),
    indexes=(("top_parent_id",), ("parent_id",)),
)
# The name the server gives ``KEY (parent_id)`` above; a lineage table without it (made before it
# was added) is rebuilt whole by the next run.
RECORDED_PARENT_INDEX = "parent_id"

SERVER_DEFAULT_RECURSION_LIMIT = 1000


def recursion_limit(sample_count: int) -> int:
    """A recursion limit no tree of ``sample_count`` samples can reach (never below the default)."""
    return max(SERVER_DEFAULT_RECURSION_LIMIT, sample_count + 1)


def recursion_limit_statement(is_mariadb: bool, limit: int) -> str:
    """The session setting that bounds recursive CTEs; the variable's name differs per server."""
    variable = "max_recursive_iterations" if is_mariadb else "cte_max_recursion_depth"
    return f"SET SESSION {variable} = {int(limit)}"


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
    at 1M samples that index cost most of the build (bench/RESULTS.md). Here the walk's rows
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
