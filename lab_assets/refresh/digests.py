"""``sample_measurement_digests``: per sample, its measurement rows' count and hash sums,
refreshed for the samples whose measurements changed, or rebuilt whole."""

from __future__ import annotations

import time

from dagster import DagsterLogManager

from lab_assets.lib.refresh import (
    bucket_table_update_statements,
    candidate_bucket_sums_select,
    changed_digests_select,
    changed_measurement_samples_select,
    digest_bulk_build,
    measurement_bucket_sums_select,
    measurement_digest_select,
)
from lab_assets.mysql import MySQLResource
from lab_assets.refresh.plan import too_many_changed
from lab_assets.refresh.state_tables import DIGEST_STATE
from lab_assets.refresh.value_type import source_value_type
from lab_assets.refresh.work_tables import fill_candidates, fill_live_digests, fill_work_table
from lab_assets.refresh.writes import DerivedTable, changed_rows_written, whole_table_written


def compute_sample_measurement_digests(
    log: DagsterLogManager, mysql: MySQLResource, full_rebuild: bool
) -> DerivedTable:
    """Changed samples: candidates whose live digest differs from the stored one. Incremental
    unless a full rebuild is asked for, the table is missing or of another layout, or too many
    samples changed."""
    state, tables = DIGEST_STATE, mysql.tables
    value_type = source_value_type(mysql)  # the row hashes depend on it
    if not full_rebuild and mysql.column_names(state.name) == list(state.definition.column_names):
        started = time.monotonic()
        fill_candidates(mysql, state, measurement_bucket_sums_select(tables, value_type))
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
            return changed_rows_written(
                tables=tables,
                state=state,
                select_sql=changed_digests_select(tables, state.extra_table, state.changes_table),
                changed=changed,
                bucket_updates=bucket_table_update_statements(
                    tables,
                    state.buckets,
                    state.buckets_table,
                    (state.candidates_table,),
                    candidate_bucket_sums_select(tables, state.extra_table),
                ),
            )
        log.info(f"{changed} samples changed: rebuilding {state.name} whole")
    return whole_table_written(
        mysql=mysql,
        state=state,
        select_sql=measurement_digest_select(tables, value_type),
        faster_plan=digest_bulk_build(tables, value_type),
    )
