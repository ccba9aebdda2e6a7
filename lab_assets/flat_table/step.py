"""The flat table's write: the pending samples' rows replaced, or the whole table built and
swapped in, as :func:`lab_assets.flat_table.plan.plan_flat_table` decides."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, Failure, Output

from lab_assets.catalog.value_type import source_value_type
from lab_assets.checks.flat_table_checks import flat_table_check_results
from lab_assets.flat_table.plan import plan_flat_table
from lab_assets.flat_table.preview import rewritten_ids_metadata, table_report
from lab_assets.flat_table.sql import (
    IDENTIFYING_COLUMNS,
    MeasurementColumn,
    column_limit_problem,
    flat_table_definition,
    in_sample_id_ranges,
    pivot_select,
)
from lab_assets.flat_table.summary import (
    DELTA_TABLE,
    ColumnSummaryUpkeep,
    full_refresh_summary,
    prepare_incremental_summary,
)
from lab_assets.flat_table.verification import verify_written_rows
from lab_assets.io_manager import KeyedRowsReplacement, SqlRelation, TableBuild, TableWrite
from lab_assets.lineage.sql import LINEAGE_STATE
from lab_assets.mysql.resource import MySQLResource
from lab_assets.names import COLUMN_SUMMARY, EXPERIMENT_MEASUREMENTS, NEW_SUFFIX, PENDING_SAMPLES, helper_table
from lab_assets.sources.value_types import ValueType, declared_type, max_measurement_columns
from lab_assets.state.bucket_sql import state_row_count_select
from lab_assets.state.guard import check_sources, guarded_build, io_manager_schema, should_full_refresh
from lab_assets.state.pending import (
    FULL_REFRESH_MARKER,
    FULL_REFRESH_SELECT,
    ensure_pending_table,
    mark_pending,
    read_pending,
)
from lab_assets.state.work_tables import buckets_ready


def flat_table_outputs(
    context: AssetExecutionContext,
    mysql: MySQLResource,
    measurement_types: pd.DataFrame,
    sample_lineage: SqlRelation,
) -> Iterator[Output | AssetCheckResult]:
    """The flat table's output for the IO manager, then (once it is written) the written rows
    verified against the sources (lab_assets.flat_table.verification) and the selected checks'
    results from that verification. Runs under the build lock. With the table not selected (the
    audit), only the checks run, over the whole table and the live sources."""
    checks = {key.name for key in context.selected_asset_check_keys}
    if not context.selected_asset_keys:
        check_sources(mysql)  # a renamed source column: one sentence, not the checks' raw 1054
        yield from flat_table_check_results(context.log, mysql, checks, verification=None)
        return
    with guarded_build(
        context.log, mysql, context.run.run_id, EXPERIMENT_MEASUREMENTS, io_manager_schema(context)
    ) as still_held:
        columns = measurement_columns(measurement_types)
        value_type = source_value_type(mysql)
        write = flat_table_write(context, mysql, columns, sample_lineage, value_type)
        still_held()
        yield Output(write, output_name=EXPERIMENT_MEASUREMENTS)
        still_held()
        verification = verify_written_rows(
            context.log, mysql, columns, whole_table=isinstance(write, TableBuild), value_type=value_type
        )
        # Under the lock: the checks read the catalog, which another run's build could change.
        yield from flat_table_check_results(context.log, mysql, checks, verification)


def measurement_columns(measurement_types: pd.DataFrame) -> list[MeasurementColumn]:
    """The flat table's measurement columns, one per row of the catalog and in its order, each with its
    sample count for the column's description."""
    return [
        MeasurementColumn(measurement_type=t, column_name=c, sample_count=int(n))
        for t, c, n in zip(
            measurement_types["measurement_type"],
            measurement_types["column_name"],
            measurement_types["sample_count"],
            strict=True,
        )
    ]


def flat_table_write(
    context: AssetExecutionContext,
    mysql: MySQLResource,
    columns: list[MeasurementColumn],
    sample_lineage: SqlRelation,
    value_type: ValueType,
) -> TableWrite:
    """The write of ``experiment_measurements`` for this run, with its metadata added to the
    context; every measurement column of ``value_type`` (sample_measurements.value's). Raises
    ``Failure`` (before any DDL, so the last good table stays) when the catalog has more
    measurement columns of that type than one table can hold. The pending marks are consumed by the
    verification after the write, not by the write: a crash in between only rebuilds rows again."""
    tables = mysql.tables
    # Checked here too, so the limit holds also when the catalog checks are not run.
    problem = column_limit_problem([c.column_name for c in columns], value_type)
    if problem:
        raise Failure(
            description=f"{EXPERIMENT_MEASUREMENTS} not rebuilt: {problem}",
            metadata={"measurement_columns": len(columns), "column_limit": max_measurement_columns(value_type)},
        )
    definition = flat_table_definition(columns, value_type)
    present_columns = mysql.table_columns(EXPERIMENT_MEASUREMENTS)
    present = [c.name for c in present_columns]
    added = [c for c in columns if present and c.column_name not in present]
    if added:
        context.log.info(f"new measurement columns: {', '.join(c.column_name for c in added)}")
    context.add_output_metadata(
        {
            "measurement_columns": len(columns),
            "measurement_columns_added": ", ".join(c.column_name for c in added) or "none",
            # Shown per materialization in the UI: the measurement types this build brought in.
            "measurement_types_added": ", ".join(c.measurement_type for c in added) or "none",
            "measurement_column_type": value_type.ddl,
        },
        output_name=EXPERIMENT_MEASUREMENTS,
    )
    ensure_pending_table(mysql)
    pending = read_pending(mysql)
    plan = plan_flat_table(
        full_refresh_requested=should_full_refresh(context),
        present_columns=present,
        wanted_columns=definition.column_names,
        present_value_types=published_value_types(mysql),
        wanted_value_type=value_type.ddl,
        upstream_rebuilt_whole=pending.full_refresh,
        pending_count=pending.count,
        sample_count=mysql.sample_id_span(),
    )
    # The table itself in the materialization: its first rows and a summary of each column.
    report = table_report(tables.output_database, EXPERIMENT_MEASUREMENTS, columns, value_type)
    names = tuple(c.column_name for c in columns)
    if plan.incremental:
        context.log.info(f"refreshing {pending.count} changed samples")
        rewritten = rewritten_ids_metadata(
            mysql.fetch_all, tables.output_database, PENDING_SAMPLES, FULL_REFRESH_MARKER, pending.count
        )
        context.add_output_metadata(
            {"refresh": plan.metadata_value, "changed_samples": pending.count, **rewritten},
            output_name=EXPERIMENT_MEASUREMENTS,
        )
        select_sql, params = pivot_select(
            tables,
            sample_lineage.as_from_item(),
            sample_lineage.params,
            columns,
            value_type,
            only_samples_in=PENDING_SAMPLES,
        )
        prepare_incremental_summary(mysql, value_type)
        return KeyedRowsReplacement(
            select_sql=select_sql,
            params=params,
            definition=definition,
            keys_table=PENDING_SAMPLES,
            # One row per sample the lineage records (the pivot's FROM), all pending rows just
            # written: the lineage's row count as stored beside its bucket table, where there is
            # one, instead of counting the whole table.
            row_count_select=_lineage_row_count_select(mysql),
            # The column summary by delta, in the transaction that replaces the rows.
            upkeep=ColumnSummaryUpkeep(
                tables.output_database, EXPERIMENT_MEASUREMENTS, PENDING_SAMPLES, names, value_type
            ),
            drop_after=(DELTA_TABLE,),
            report=report,
        )
    context.log.info(f"building the whole table: {plan.reason}")
    # Until its verification has run, a full refresh owes one: the full-refresh marker stays
    # pending (the verification consumes it), so a run that dies after the swap and before the
    # verification is followed by another full refresh, never by trust in unverified rows.
    mark_pending(mysql, FULL_REFRESH_SELECT)
    context.add_output_metadata({"refresh": plan.metadata_value}, output_name=EXPERIMENT_MEASUREMENTS)
    select_sql, params = pivot_select(tables, sample_lineage.as_from_item(), sample_lineage.params, columns, value_type)
    # In sample-id ranges only over a stored lineage table (a lineage subquery would be
    # recomputed for every range).
    faster_plan = in_sample_id_ranges(tables, select_sql, params) if sample_lineage.table_reference else None
    staged = helper_table(EXPERIMENT_MEASUREMENTS, NEW_SUFFIX)
    return TableBuild(
        select_sql=select_sql,
        params=params,
        definition=definition,
        faster_plan=faster_plan,
        # The column summary aggregated from the staged table, swapped in with it.
        before_swap=full_refresh_summary(tables.output_database, staged, names, value_type),
        swap_along=(COLUMN_SUMMARY,),
        report=report,
    )


def published_value_types(mysql: MySQLResource) -> list[str]:
    """The declared types (:func:`declared_type`) of experiment_measurements' measurement columns
    as they are now, in column order; empty when the table or its measurement columns are missing."""
    identifying = {column.name for column in IDENTIFYING_COLUMNS}
    return [
        declared_type(c.column_type, c.character_set, c.collation)
        for c in mysql.table_columns(EXPERIMENT_MEASUREMENTS)
        if c.name not in identifying
    ]


def _lineage_row_count_select(mysql: MySQLResource) -> str | None:
    """The query of the lineage's stored row count (stored first where a lab_assets version
    without it left none), or None where the lineage has no bucket table of the current layout."""
    tables = mysql.tables
    with mysql.connect() as connection:
        ready = buckets_ready(connection, tables, LINEAGE_STATE)
    return state_row_count_select(tables, LINEAGE_STATE) if ready else None
