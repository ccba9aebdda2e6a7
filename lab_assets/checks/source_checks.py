"""The source checks' evaluation (lineage, measurements, catalog; declared in
lab_assets.checks.specs), from what the step that built a table already holds, or over the whole
live sources when a run selects only the checks (the audit). Each result names its first
offenders (``offenders``, ``offender_count``) and what it covered (``covered``, ``covered_rows``).

What each check reads in a build:

* ``no_parent_cycles``, ``no_missing_parents``: the lineage just written, through its
  top_parent_id index (the walk leaves exactly the samples on or under a cycle or a missing
  parent without a root); nothing to read when every sample has one.
* ``measurement_types_not_null``, ``no_duplicate_measurements``, ``one_spelling_per_column``:
  counts the catalog's counts hold (:class:`CatalogScan`, whole after a scan or moved by the
  change feed's ids exactly as a scan would count them); the
  offenders are looked up only when a count says there are some.
* ``measurements_have_samples``: the record of orphan sample ids, rebuilt by one anti-join of the
  measurements with the samples (beside the catalog, lineage and digest computations) or moved
  by the change feed's ids, by index.
* the blocking catalog checks: the catalog table (a few rows).
* ``one_row_per_sample``, ``flat_table_reconciles``: the verification of the rows the build wrote
  (lab_assets.flat_table.verification): every written row against the recorded digests and lineage,
  differing rows against one snapshot of the live sources, the lineage proven by induction.
"""

from __future__ import annotations

from collections.abc import Callable

from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, DagsterLogManager, MetadataValue

import lab_assets.checks.sql as integrity
from lab_assets.catalog.value_type import UnpublishableValueType, source_value_type
from lab_assets.checks.evaluation import (
    AUDIT,
    CatalogScan,
    Coverage,
    binary_collation,
    could_not_check,
    fetch,
    missing_tables,
    result,
    value,
)
from lab_assets.flat_table.sql import column_limit_problem
from lab_assets.flat_table.verification import Offenders
from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.sessions import transaction
from lab_assets.names import (
    CATALOG_COLUMN_NAMES_UNIQUE,
    CATALOG_WITHIN_COLUMN_LIMIT,
    MEASUREMENT_TYPES,
    MEASUREMENT_TYPES_NOT_NULL,
    MEASUREMENTS_HAVE_SAMPLES,
    NO_DUPLICATE_MEASUREMENTS,
    NO_MISSING_PARENTS,
    NO_PARENT_CYCLES,
    ONE_SPELLING_PER_COLUMN,
    ORPHANS_TABLE,
    SAMPLE_LINEAGE,
)
from lab_assets.sources.value_types import max_measurement_columns


def lineage_check_results(
    log: DagsterLogManager, mysql: MySQLResource, selected: set[str], from_built_lineage: bool
) -> list[AssetCheckResult]:
    """``no_parent_cycles`` and ``no_missing_parents`` (those in ``selected``): from the lineage
    this run wrote (``from_built_lineage``, every sample as the run read them) or from a walk of
    the live samples."""
    tables = mysql.tables
    if from_built_lineage:
        coverage = Coverage("every sample, in the sample_lineage this run wrote (rows without a root, by index)")
        cycles_sql = integrity.lineage_cycle_samples_select(tables)
        missing_sql = integrity.lineage_missing_parent_samples_select(tables)
        parents_sql = integrity.lineage_missing_parent_ids_select(tables)
    else:
        coverage = AUDIT
        cycles_sql = integrity.cycle_samples_select(tables)
        missing_sql = integrity.missing_parent_samples_select(tables)
        parents_sql = integrity.missing_parent_ids_select(tables)
    results = []
    if NO_PARENT_CYCLES in selected:
        results.append(
            result(
                log,
                SAMPLE_LINEAGE,
                NO_PARENT_CYCLES,
                fetch(mysql, cycles_sql, recursive=True),
                coverage,
                what="samples on or under a parent cycle (top_parent_id NULL)",
            )
        )
    if NO_MISSING_PARENTS in selected:
        parents = fetch(mysql, parents_sql)
        parent_ids = [row[0] for row in parents.first]
        results.append(
            result(
                log,
                SAMPLE_LINEAGE,
                NO_MISSING_PARENTS,
                fetch(mysql, missing_sql, recursive=True),
                coverage,
                what=f"samples under a missing parent (top_parent_id NULL); missing parent ids: {parent_ids}",
                extra={
                    "missing_parent_ids": MetadataValue.json(parent_ids),
                    "missing_parent_count": MetadataValue.int(parents.count),
                },
            )
        )
    return results


# --- measurements and the catalog -------------------------------------------------------------


def keep_orphan_record(mysql: MySQLResource, ids_table: str | None) -> None:
    """The record of orphan sample ids made exact: with the change feed's ids (``ids_table``) and
    a record, only those ids' rows recomputed, by index, in one transaction; else rebuilt from one
    anti-join of the whole tables. Every refresh that stores a binlog position keeps it so
    (lab_assets.derivations.step), whether or not ``measurements_have_samples`` is selected."""
    if ids_table is not None and mysql.column_names(ORPHANS_TABLE) == ["sample_id"]:
        with mysql.connect() as connection, transaction(connection):
            for statement in integrity.orphan_samples_delta_statements(mysql.tables, ids_table):
                connection.exec_driver_sql(statement)
        return
    for statement in integrity.orphan_samples_rebuild_statements(mysql.tables):
        mysql.execute(statement)


def measurements_have_samples_result(
    log: DagsterLogManager,
    mysql: MySQLResource,
    coverage: Coverage,
    *,
    recorded: bool | None = None,
    ids_table: str | None = None,
) -> AssetCheckResult:
    """The audit (``recorded`` None): one anti-join of sample_measurements with samples, whole.
    A building step: the offenders are read through the record of orphan sample ids, kept first
    by :func:`keep_orphan_record` (by the change feed's ``ids_table`` when given); with
    ``recorded`` True (the binlog says no measurement row came or went since) and no ids, the
    record is read as it is, by index, without scanning either table."""
    tables = mysql.tables
    if recorded is None:
        found = fetch(mysql, integrity.measurements_without_sample_select(tables))
    else:
        if ids_table is not None or not recorded or mysql.column_names(ORPHANS_TABLE) != ["sample_id"]:
            keep_orphan_record(mysql, ids_table)
        found = fetch(mysql, integrity.recorded_orphans_select(tables))
    return result(
        log,
        MEASUREMENT_TYPES,
        MEASUREMENTS_HAVE_SAMPLES,
        found,
        coverage,
        what="measurements without a sample (left out of the flat table)",
        severity=AssetCheckSeverity.WARN,
        named=[f"sample_id={value(r[0])} type={value(r[1])} value={value(r[2])}" for r in found.first],
    )


def catalog_check_results(
    log: DagsterLogManager, mysql: MySQLResource, selected: set[str], scan: CatalogScan | None
) -> list[AssetCheckResult]:
    """The measurement checks in ``selected`` except ``measurements_have_samples``: from the
    catalog scan's counts when this run made one (``scan``; offenders looked up only when a count
    is not zero), else over the whole live table; then the blocking checks on the catalog table."""
    tables = mysql.tables
    coverage = (
        AUDIT
        if scan is None
        else Coverage("every row of sample_measurements, in this run's catalog scan", scan.measurement_rows)
    )

    def counted(name: str, count: int | None, sql: Callable[[], str], what: str, shown: Callable[[tuple], str]) -> None:
        """The check ``name`` if selected: no offenders when the scan counted none (``count`` 0),
        else looked up by ``sql``."""
        if name not in selected:
            return
        found = Offenders() if count == 0 else fetch(mysql, sql())
        results.append(
            result(
                log,
                MEASUREMENT_TYPES,
                name,
                found,
                coverage,
                what=what,
                severity=AssetCheckSeverity.WARN,
                named=[shown(r) for r in found.first],
            )
        )

    catalog: dict[object, str] = {}

    def catalog_column(measurement_type: object) -> str:
        """The column of a type, from one read of the catalog (made only to name offenders)."""
        if not catalog and mysql.column_names(MEASUREMENT_TYPES):
            catalog.update(
                mysql.fetch_all(f"SELECT measurement_type, column_name FROM {tables.qualified(MEASUREMENT_TYPES)}")
            )
        return catalog.get(measurement_type, "(not in the catalog yet)")

    results: list[AssetCheckResult] = []
    counted(
        MEASUREMENT_TYPES_NOT_NULL,
        scan and scan.null_type_rows,
        lambda: integrity.measurements_without_type_select(tables),
        "measurements with a NULL measurement_type (left out of the flat table)",
        lambda r: f"sample_id={value(r[0])} value={value(r[1])}",
    )
    counted(
        NO_DUPLICATE_MEASUREMENTS,
        scan and scan.types_with_repeats,
        lambda: integrity.duplicate_measurements_select(tables, binary_collation(mysql)),
        "(sample, type) pairs measured more than once (the flat table keeps the largest value)",
        lambda r: f"sample_id={r[0]} type={value(r[1])} measurements={r[2]}",
    )
    counted(
        ONE_SPELLING_PER_COLUMN,
        scan and scan.types_with_several_spellings,
        lambda: integrity.spellings_sharing_a_type_select(tables, binary_collation(mysql)),
        "columns holding values of more than one spelling of a type",
        lambda r: f"{catalog_column(r[0])}: {r[1]}",
    )
    if CATALOG_COLUMN_NAMES_UNIQUE in selected:
        results.append(_column_names_unique_result(log, mysql))
    if CATALOG_WITHIN_COLUMN_LIMIT in selected:
        results.append(_column_limit_result(log, mysql))
    return results


_CATALOG = Coverage("every row of the measurement_types catalog")


def _column_names_unique_result(log: DagsterLogManager, mysql: MySQLResource) -> AssetCheckResult:
    missing = missing_tables(log, mysql, MEASUREMENT_TYPES, CATALOG_COLUMN_NAMES_UNIQUE, MEASUREMENT_TYPES)
    if missing:
        return missing
    sql, params = integrity.duplicate_column_names_select(mysql.tables, MEASUREMENT_TYPES)
    found = fetch(mysql, sql, params)
    return result(
        log,
        MEASUREMENT_TYPES,
        CATALOG_COLUMN_NAMES_UNIQUE,
        found,
        _CATALOG,
        what="column names that MySQL would see as one (experiment_measurements is not rebuilt)",
        named=[f"{r[0]} x{r[1]}: {r[2]}" for r in found.first],
    )


def _column_limit_result(log: DagsterLogManager, mysql: MySQLResource) -> AssetCheckResult:
    missing = missing_tables(log, mysql, MEASUREMENT_TYPES, CATALOG_WITHIN_COLUMN_LIMIT, MEASUREMENT_TYPES)
    if missing:
        return missing
    names = [row[0] for row in mysql.fetch_all(f"SELECT column_name FROM {mysql.tables.qualified(MEASUREMENT_TYPES)}")]
    try:
        value_type = source_value_type(mysql)
    except UnpublishableValueType as error:
        message = f"{CATALOG_WITHIN_COLUMN_LIMIT}: {error.description}"
        metadata = {"measurement_columns": MetadataValue.int(len(names)), **_CATALOG.metadata()}
        return could_not_check(log, MEASUREMENT_TYPES, CATALOG_WITHIN_COLUMN_LIMIT, message, metadata)
    limit = max_measurement_columns(value_type)
    problem = column_limit_problem(names, value_type)
    metadata = {
        "measurement_columns": MetadataValue.int(len(names)),
        "column_limit": MetadataValue.int(limit),
        "measurement_column_type": MetadataValue.text(value_type.ddl),
        "offenders": MetadataValue.json([]),
        "offender_count": MetadataValue.int(0),
        **_CATALOG.metadata(),
    }
    if problem:
        log.error(f"{CATALOG_WITHIN_COLUMN_LIMIT}: {problem}")
        return AssetCheckResult(
            asset_key=AssetKey(MEASUREMENT_TYPES),
            check_name=CATALOG_WITHIN_COLUMN_LIMIT,
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=f"{CATALOG_WITHIN_COLUMN_LIMIT}: {problem}; experiment_measurements is not rebuilt",
            metadata={**metadata, "offender_count": MetadataValue.int(max(len(names) - limit, 0))},
        )
    return AssetCheckResult(
        asset_key=AssetKey(MEASUREMENT_TYPES),
        check_name=CATALOG_WITHIN_COLUMN_LIMIT,
        passed=True,
        severity=AssetCheckSeverity.ERROR,
        description=f"{len(names)} measurement columns, limit {limit} for {value_type.ddl}",
        metadata=metadata,
    )


# --- the flat table ---------------------------------------------------------------------------
