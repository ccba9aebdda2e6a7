"""A state table's two writes, as the IO manager's output kinds plus the pending marks:
"write the changed rows" and "write the whole table"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab_assets.io_manager import KeyedRowsReplacement, TableBuild, TableWrite
from lab_assets.mysql.resource import MySQLResource
from lab_assets.sources.locations import TableLocations
from lab_assets.sql.bulk import BulkBuild
from lab_assets.state.bucket_sql import (
    bucket_table_build_statements,
    row_count_forget_statements,
    state_row_count_select,
)
from lab_assets.state.pending import FULL_REFRESH_SELECT
from lab_assets.state.sql import StateTable


@dataclass
class DerivedTable:
    """One source-derived table's computation, handed back to the step that runs them side by
    side: the value for the IO manager, its materialization metadata, and the sample ids to mark
    in the pending table (a SELECT) before the value is written, and what the computation found
    that the step's checks use (``facts``; lab_assets.checks.source_checks, flat_table_checks)."""

    value: object
    metadata: dict[str, Any] = field(default_factory=dict)  # materialization metadata values
    pending_select: str | None = None
    facts: Any = None


def incremental_refresh_write(
    *,
    tables: TableLocations,
    state: StateTable,
    select_sql: str,
    changed: int,
    bucket_updates: tuple[tuple[str, ...], tuple[str, ...]],
    recursion_limit: int | None = None,
) -> DerivedTable:
    """The rows of the ids in ``state.changes_table`` replaced by ``select_sql``, the bucket table
    brought up to date in the same transaction (``bucket_updates``: statements run before the
    rows are replaced, and after), the row count read as stored beside it, those ids marked
    pending for the flat table."""
    before, after = bucket_updates
    write: TableWrite = KeyedRowsReplacement(
        select_sql=select_sql,
        definition=state.definition,
        keys_table=state.changes_table,
        recursion_limit=recursion_limit,
        in_transaction_before=before,
        in_transaction=after,
        row_count_select=state_row_count_select(tables, state),
        drop_after=state.work_tables,
    )
    return DerivedTable(
        write,
        metadata={"refresh": "incremental", "changed_samples": changed},
        pending_select=f"SELECT sample_id FROM {tables.qualified(state.changes_table)}",
    )


def full_refresh_write(
    *,
    mysql: MySQLResource,
    state: StateTable,
    select_sql: str,
    faster_plan: BulkBuild,
    recursion_limit: int | None = None,
) -> DerivedTable:
    """The whole state table built and swapped in: its bucket table and stored row count dropped
    now (stale once the new table is in) and summed again after the swap; every sample marked for
    the flat table."""
    for statement in row_count_forget_statements(mysql.tables, state):
        mysql.execute(statement)
    mysql.execute(f"DROP TABLE IF EXISTS {mysql.tables.qualified(state.buckets_table)}")
    write: TableWrite = TableBuild(
        select_sql=select_sql,
        definition=state.definition,
        recursion_limit=recursion_limit,
        faster_plan=faster_plan,
        after_swap=bucket_table_build_statements(mysql.tables, state),
        drop_after=state.work_tables,
    )
    return DerivedTable(write, metadata={"refresh": "full"}, pending_select=FULL_REFRESH_SELECT)
