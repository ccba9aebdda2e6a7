"""The flat table's checks, ``one_row_per_sample`` and ``flat_table_reconciles``: from the
verification of the rows the build wrote (lab_assets.flat_table.verification), every written row
against the recorded digests and lineage, differing rows against one snapshot of the live
sources, the lineage proven by induction; or, in the audit, recomputed over the live tables."""

from __future__ import annotations

from dagster import AssetCheckResult, DagsterLogManager, MetadataValue

import lab_assets.checks.flat_table_sql as flat_table_sql
import lab_assets.checks.sql as integrity
from lab_assets.catalog.value_type import source_value_type
from lab_assets.checks.evaluation import (
    AUDIT,
    OFFENDER_LIMIT,
    Coverage,
    fetch,
    missing_tables,
    result,
)
from lab_assets.flat_table.sql import IDENTIFYING_COLUMNS
from lab_assets.flat_table.verification import Offenders, Verification
from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.sessions import recursion_limit
from lab_assets.names import (
    EXPERIMENT_MEASUREMENTS,
    FLAT_TABLE_RECONCILES,
    MEASUREMENT_TYPES,
    ONE_ROW_PER_SAMPLE,
    SAMPLE_MEASUREMENTS,
)
from lab_assets.sources.value_types import declared_type


def flat_table_check_results(
    log: DagsterLogManager, mysql: MySQLResource, selected: set[str], verification: Verification | None
) -> list[AssetCheckResult]:
    """``one_row_per_sample`` and ``flat_table_reconciles`` (those in ``selected``): from the
    verification of the rows this run wrote, or (``verification`` None: the audit) over the
    whole table against the live sources."""
    missing = [
        missing_tables(log, mysql, EXPERIMENT_MEASUREMENTS, name, EXPERIMENT_MEASUREMENTS, MEASUREMENT_TYPES)
        for name in (ONE_ROW_PER_SAMPLE, FLAT_TABLE_RECONCILES)
        if name in selected
    ]
    if any(missing):
        return [m for m in missing if m]
    tables = mysql.tables
    if verification is None:
        coverage = AUDIT
        presence = fetch(mysql, integrity.sample_rows_mismatch_select(tables, EXPERIMENT_MEASUREMENTS))
        presence_named = [f"{r[0]} ({r[1]})" for r in presence.first]
    else:
        coverage = (
            Coverage(
                "every row of the table as this full refresh wrote it, against the sources it read"
                " (rows that differ: against the live sources)"
            )
            if verification.written is None
            else Coverage(
                "the rows this refresh rewrote, each against its parent's recorded lineage row, and the"
                " table's columns (rows that differ: against the live sources)",
                verification.written,
            )
        )
        presence = verification.presence_offenders
        presence_named = [f"{r[0]} ({'not a sample' if r[1] else 'no row'})" for r in presence.first]
    results = []
    if ONE_ROW_PER_SAMPLE in selected:
        results.append(
            result(
                log,
                EXPERIMENT_MEASUREMENTS,
                ONE_ROW_PER_SAMPLE,
                presence,
                coverage,
                what="sample ids without exactly one row",
                named=presence_named,
            )
        )
    if FLAT_TABLE_RECONCILES in selected:
        results.append(_reconciliation_result(log, mysql, coverage, verification))
    return results


def _reconciliation_result(
    log: DagsterLogManager, mysql: MySQLResource, coverage: Coverage, verification: Verification | None
) -> AssetCheckResult:
    tables = mysql.tables
    identifying = {c.name for c in IDENTIFYING_COLUMNS}
    flat_columns = [c for c in mysql.table_columns(EXPERIMENT_MEASUREMENTS) if c.name not in identifying]
    measurement_columns = [c.name for c in flat_columns]
    value_type = source_value_type(mysql)
    catalog = mysql.fetch_all(f"SELECT measurement_type, column_name FROM {tables.qualified(MEASUREMENT_TYPES)}")
    column_problems = [
        f"column {c} not in the catalog" for c in sorted(set(measurement_columns) - {c for _, c in catalog})
    ]
    column_problems += [
        f"catalog column {c} missing" for c in sorted({c for _, c in catalog} - set(measurement_columns))
    ]
    declared = {c.name: declared_type(c.column_type, c.character_set, c.collation) for c in flat_columns}
    column_problems += [
        f"column {name} is {ddl}, sample_measurements.value is {value_type.ddl}"
        for name, ddl in declared.items()
        if ddl != value_type.ddl
    ]
    if verification is None:
        sql, params = flat_table_sql.reconciliation_offending_samples_select(
            tables, EXPERIMENT_MEASUREMENTS, [(t, c) for t, c in catalog if c in measurement_columns], value_type
        )
        offending = sorted(r[0] for r in mysql.fetch_all(sql, params))
        count = len(offending)
        upper_bound = False
    else:
        content, lineage = verification.content_offenders, verification.lineage_offenders
        offending = sorted({r[0] for r in content.first} | {r[0] for r in lineage.first})
        # Exact when both lists are complete; otherwise the sum, an upper bound (a row can fail both).
        complete = content.count == len(content.first) and lineage.count == len(lineage.first)
        count = len(offending) if complete else content.count + lineage.count
        upper_bound = not complete
    rows: list[tuple] = []
    if offending:
        source = mysql.column(SAMPLE_MEASUREMENTS, "measurement_type")
        sql, params = flat_table_sql.reconciliation_select(
            tables,
            EXPERIMENT_MEASUREMENTS,
            MEASUREMENT_TYPES,
            measurement_columns,
            str(source.character_set),
            str(source.collation),
            value_type,
            only_sample_ids=offending[:OFFENDER_LIMIT],
        )
        rows = mysql.fetch_all(sql, params, recursion_limit=recursion_limit(mysql.sample_id_span()))
        # The passes prove the same properties; should they ever disagree (a row changed since),
        # still name the rows.
        rows = rows or [(sample_id, "row") for sample_id in offending[:OFFENDER_LIMIT]]
    named = column_problems + [f"sample_id={r[0]} {r[1]}" for r in rows]
    found = Offenders(tuple((n,) for n in named[:OFFENDER_LIMIT]), count + len(column_problems))
    what = "samples whose row differs from the source, or columns"
    bound: dict[str, MetadataValue] = {}
    if upper_bound:
        # Cut lists: a row can fail both the cells and the lineage, so the sum is an upper bound.
        what += " (at most; a row can fail both its cells and its lineage)"
        bound = {"offender_count_is_upper_bound": MetadataValue.bool(True)}
    if verification is not None:
        what += (
            " (rows whose cells differ are marked pending: the next refresh rewrites them; a sample"
            " moved, re-assigned or deleted while this run built is rewritten by the next refresh too)"
        )
    return result(
        log,
        EXPERIMENT_MEASUREMENTS,
        FLAT_TABLE_RECONCILES,
        found,
        coverage,
        what=what,
        extra={"measurement_columns": MetadataValue.int(len(measurement_columns)), **bound},
    )
