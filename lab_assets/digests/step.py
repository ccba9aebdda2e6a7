"""``sample_measurement_digests``: per sample, its measurement rows' count and hash sums,
refreshed for the samples whose measurements changed, or rebuilt whole."""

from __future__ import annotations

import time
from functools import partial

from dagster import DagsterLogManager

from lab_assets.catalog.value_type import source_value_type
from lab_assets.digests.sql import (
    DIGEST_STATE,
    DIGEST_TABLE_DEFINITION,
    candidate_bucket_sums_select,
    candidate_digests_select,
    changed_digests_select,
    changed_measurement_samples_select,
    digest_bulk_build,
    measurement_bucket_sums_select,
    measurement_digest_select,
)
from lab_assets.flat_table.plan import too_many_changed
from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.threads import completed_in_threads
from lab_assets.sources.value_types import ValueType
from lab_assets.sql.bulk import chunk_select, key_ranges
from lab_assets.state.bucket_sql import bucket_delta_statements, bucket_table_update_statements
from lab_assets.state.sql import StateTable
from lab_assets.state.work_tables import fill_candidates, fill_work_table
from lab_assets.state.writes import DerivedTable, full_refresh_write, incremental_refresh_write


def compute_sample_measurement_digests(
    log: DagsterLogManager, mysql: MySQLResource, full_refresh: bool, feed_ids_table: str | None = None
) -> DerivedTable:
    """Changed samples: candidates whose live digest differs from the stored one. Incremental
    unless a full refresh is asked for, the table is missing or of another layout, or too many
    samples changed."""
    state, tables = DIGEST_STATE, mysql.tables
    value_type = source_value_type(mysql)  # the row hashes depend on it
    if not full_refresh and mysql.column_names(state.name) == list(state.definition.column_names):
        started = time.monotonic()
        fill_candidates(mysql, state, measurement_bucket_sums_select(tables, value_type), feed_ids_table)
        fill_live_digests(mysql, state, value_type)
        with mysql.connect() as connection:
            changed = fill_work_table(
                connection,
                tables.output_database,
                state.changes_table,
                changed_measurement_samples_select(tables, state.candidates_table, state.extra_table),
            )
        log.info(f"{changed} samples with changed measurements ({time.monotonic() - started:.2f} s to find)")
        if not too_many_changed(changed, mysql.sample_id_span()):
            return incremental_refresh_write(
                tables=tables,
                state=state,
                select_sql=changed_digests_select(tables, state.extra_table, state.changes_table),
                changed=changed,
                # The scan's candidates fill whole buckets, so their live digests alone give the
                # buckets' new sums (stale ones repaired too); the binlog's ids do not: by delta there.
                bucket_updates=bucket_delta_statements(tables, state, state.changes_table)
                if feed_ids_table is not None
                else (
                    (),
                    bucket_table_update_statements(
                        tables,
                        state,
                        (state.candidates_table,),
                        candidate_bucket_sums_select(tables, state.extra_table),
                    ),
                ),
            )
        log.info(f"{changed} samples changed: rebuilding {state.name} whole")
    return full_refresh_write(
        mysql=mysql,
        state=state,
        select_sql=measurement_digest_select(tables, value_type),
        faster_plan=digest_bulk_build(tables, value_type),
    )


def fill_live_digests(mysql: MySQLResource, state: StateTable, value_type: ValueType) -> None:
    """The candidates' live digests into the state's live work table, the two halves of the
    candidate id range side by side on two connections: by now the source scans are usually done
    and the second core would idle (bench/RESULTS.md)."""
    tables = mysql.tables
    live_table = tables.qualified(state.extra_table)
    select_sql = candidate_digests_select(tables, state.candidates_table, value_type)
    with mysql.connect() as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {live_table}")
        connection.exec_driver_sql(DIGEST_TABLE_DEFINITION.create_statement(tables.output_database, state.extra_table))
        low, high = connection.exec_driver_sql(
            f"SELECT MIN(sample_id), MAX(sample_id) FROM {tables.qualified(state.candidates_table)}"
        ).one()
    if low is None:
        return
    halves = key_ranges(low, high, (high - low) // 2 + 1)
    inserts = {
        f"{first}..{last}": partial(
            mysql.execute, f"INSERT INTO {live_table} {chunk_select(select_sql, 'm.sample_id', first, last)}"
        )
        for first, last in halves
    }
    # Both halves end before anything is raised: no statement is left running on its own.
    done = completed_in_threads(inserts, at_most=mysql.side_by_side(len(inserts)))
    errors = [error for _, _, error in done if error is not None]
    if errors:
        raise errors[0]
