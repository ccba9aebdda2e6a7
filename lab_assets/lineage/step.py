"""``sample_lineage``: each sample's root and depth, refreshed for changed samples and the
subtrees under them, or rebuilt whole."""

from __future__ import annotations

import time

from dagster import DagsterLogManager

from lab_assets.flat_table.plan import too_many_changed
from lab_assets.lineage.sql import (
    LINEAGE_CHANGES_DEFINITION,
    LINEAGE_STATE,
    RECORDED_PARENT_INDEX,
    changed_samples_select,
    descendants_select,
    lineage_bucket_sums_select,
    lineage_bulk_build,
    lineage_select,
    lineage_update_select,
    moved_samples_select,
)
from lab_assets.mysql.catalog import index_starting_with
from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.sessions import is_mariadb, recursion_limit, recursion_limit_statement
from lab_assets.state.bucket_sql import bucket_delta_statements, stale_bucket_repair_statements
from lab_assets.state.work_tables import add_to_work_table, fill_candidates, fill_work_table
from lab_assets.state.writes import DerivedTable, full_refresh_write, incremental_refresh_write


def compute_sample_lineage(
    log: DagsterLogManager, mysql: MySQLResource, full_refresh: bool, feed_ids_table: str | None = None
) -> DerivedTable:
    """Changed samples: those in buckets whose sums differ and whose (parent, experiment) differ
    from the record, plus every sample under a moved one. Incremental unless a full refresh is
    asked for, the table is missing or of another layout (its columns, or no index on the recorded
    parent_id the walk down needs), or too many samples changed."""
    state, tables = LINEAGE_STATE, mysql.tables
    output = tables.output_database
    sample_count = mysql.sample_id_span()
    limit = recursion_limit(sample_count)
    if not full_refresh and _incremental_layout(log, mysql):
        started = time.monotonic()
        fill_candidates(mysql, state, lineage_bucket_sums_select(tables), feed_ids_table)
        with mysql.connect() as connection:
            fill_work_table(
                connection,
                output,
                state.changes_table,
                changed_samples_select(tables, state.candidates_table),
                LINEAGE_CHANGES_DEFINITION,
            )
            fill_work_table(connection, output, state.extra_table, moved_samples_select(tables, state.changes_table))
            connection.exec_driver_sql(recursion_limit_statement(is_mariadb(connection), limit))
            changed = add_to_work_table(
                connection, output, state.changes_table, descendants_select(tables, state.extra_table)
            )
        log.info(f"{changed} samples changed or under a changed parent ({time.monotonic() - started:.2f} s to find)")
        if not too_many_changed(changed, sample_count):
            before, after = bucket_delta_statements(tables, state, state.changes_table)
            # The binlog's ids are no whole buckets, and no sums were compared: nothing to repair.
            if feed_ids_table is None:
                after += stale_bucket_repair_statements(tables, state, state.candidates_table)
            return incremental_refresh_write(
                tables=tables,
                state=state,
                select_sql=lineage_update_select(tables, state.changes_table),
                changed=changed,
                bucket_updates=(before, after),
                recursion_limit=limit,
            )
        log.info(f"{changed} of {sample_count} samples changed: rebuilding {state.name} whole")
    return full_refresh_write(
        mysql=mysql,
        state=state,
        select_sql=lineage_select(tables),
        faster_plan=lineage_bulk_build(tables),
        recursion_limit=limit,
    )


def _incremental_layout(log: DagsterLogManager, mysql: MySQLResource) -> bool:
    """True when ``sample_lineage`` has the columns and the recorded-parent index the incremental
    refresh reads; a table made before that index was added is rebuilt whole once."""
    state, tables = LINEAGE_STATE, mysql.tables
    if mysql.column_names(state.name) != list(state.definition.column_names):
        return False
    with mysql.connect() as connection:
        index = index_starting_with(connection, tables.output_database, state.name, "parent_id")
    if index != RECORDED_PARENT_INDEX:
        log.info(f"{state.name} has no index {RECORDED_PARENT_INDEX!r} on its recorded parent_id: rebuilding it whole")
        return False
    return True
