"""The asset checks' evaluation (declared in lab_assets.defs.checks), from what the step that
built a table already holds, or over the whole live sources when a run selects only the checks
(the audit). Each result names its first offenders (``offenders``, ``offender_count``) and what it
covered (``covered``, ``covered_rows``).

What each check reads in a build:

* ``no_parent_cycles``, ``no_missing_parents``: the lineage just written, through its
  top_parent_id index (the walk leaves exactly the samples on or under a cycle or a missing
  parent without a root); nothing to read when every sample has one.
* ``measurement_types_not_null``, ``no_duplicate_measurements``, ``one_spelling_per_column``:
  counts the catalog's own scan of ``sample_measurements`` returns (:class:`CatalogScan`); the
  offenders are looked up only when a count says there are some.
* ``measurements_have_samples``: one anti-join of the measurements with the samples, run beside
  the catalog, lineage and digest computations.
* the blocking catalog checks: the catalog table (a few rows).
* ``one_row_per_sample``, ``flat_table_reconciles``: the verification of the rows the build wrote
  (lab_assets.refresh.verification): every written row against the recorded digests and lineage,
  differing rows against one snapshot of the live sources, the lineage proven by induction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, DagsterLogManager, Failure, MetadataValue

from lab_assets.lib import integrity
from lab_assets.lib.flat_table import IDENTIFYING_COLUMNS, column_limit_problem
from lab_assets.lib.lineage import recursion_limit
from lab_assets.lib.names import (
    CATALOG_COLUMN_NAMES_UNIQUE,
    CATALOG_WITHIN_COLUMN_LIMIT,
    EXPERIMENT_MEASUREMENTS,
    FLAT_TABLE_RECONCILES,
    MEASUREMENT_TYPES,
    MEASUREMENT_TYPES_NOT_NULL,
    MEASUREMENTS_HAVE_SAMPLES,
    NO_DUPLICATE_MEASUREMENTS,
    NO_MISSING_PARENTS,
    NO_PARENT_CYCLES,
    ONE_ROW_PER_SAMPLE,
    ONE_SPELLING_PER_COLUMN,
    SAMPLE_LINEAGE,
    SAMPLE_MEASUREMENTS,
)
from lab_assets.lib.value_types import declared_type, max_measurement_columns
from lab_assets.mysql import MySQLResource
from lab_assets.refresh.value_type import UnpublishableValueType, source_value_type
from lab_assets.refresh.verification import Offenders, Verification

OFFENDER_LIMIT = integrity.OFFENDER_LIMIT
# A failed one fails its step, so experiment_measurements is not rebuilt (lab_assets.defs.checks).
BLOCKING_CHECKS = (CATALOG_COLUMN_NAMES_UNIQUE, CATALOG_WITHIN_COLUMN_LIMIT)


@dataclass(frozen=True)
class CatalogScan:
    """What the catalog's scan of sample_measurements counted, besides the catalog itself."""

    null_type_rows: int  # rows with a NULL measurement_type
    types_with_repeats: int  # types with a (sample, type) pair measured more than once
    types_with_several_spellings: int  # types the collation merges from several spellings
    measurement_rows: int  # every row scanned


@dataclass(frozen=True)
class Coverage:
    """What a check result covered, as its metadata says."""

    what: str
    rows: int | None = None

    def metadata(self) -> dict[str, MetadataValue]:
        covered: dict[str, MetadataValue] = {"covered": MetadataValue.text(self.what)}
        return covered if self.rows is None else {**covered, "covered_rows": MetadataValue.int(self.rows)}


AUDIT = Coverage("every row of the live tables (audit: the checks alone, recomputed, nothing rebuilt)")


def _value(value: object) -> str:
    return "NULL" if value is None else repr(str(value))


def _result(
    log: DagsterLogManager,
    asset: str,
    name: str,
    found: Offenders,
    coverage: Coverage,
    *,
    what: str,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
    named: Sequence[object] | None = None,
    extra: dict[str, MetadataValue] | None = None,
) -> AssetCheckResult:
    """A check result from its offenders (``named``: how to show them; default the first column)."""
    shown = list(named) if named is not None else [row[0] for row in found.first]
    if found.count:
        message = f"{name}: {found.count} {what}; first {len(shown)}: {shown}"
        (log.error if severity == AssetCheckSeverity.ERROR else log.warning)(message)
    else:
        message = f"{name}: passed, none found (covered: {coverage.what})"
        log.info(message)
    return AssetCheckResult(
        asset_key=AssetKey(asset),
        check_name=name,
        passed=found.count == 0,
        severity=severity,
        description=message,
        metadata={
            "offender_count": MetadataValue.int(found.count),
            "offenders": MetadataValue.json(shown),
            **coverage.metadata(),
            **(extra or {}),
        },
    )


def _missing_tables(
    log: DagsterLogManager, mysql: MySQLResource, asset: str, name: str, *tables: str
) -> AssetCheckResult | None:
    """A failed result naming the tables the check reads that do not exist (not built yet, or
    their first build failed), instead of a raw ``1146 ... doesn't exist``; None if all exist."""
    missing = [f"{mysql.tables.database_of(t)}.{t}" for t in tables if not mysql.column_names(t)]
    if not missing:
        return None
    message = f"{name}: {', '.join(missing)} does not exist yet (not built, or its first build failed)"
    return _could_not_check(log, asset, name, message, {"missing_tables": MetadataValue.json(missing)})


def _could_not_check(
    log: DagsterLogManager, asset: str, name: str, message: str, metadata: dict[str, MetadataValue]
) -> AssetCheckResult:
    """A failed result for a check that could not look at its data, saying why."""
    log.error(message)
    return AssetCheckResult(
        asset_key=AssetKey(asset),
        check_name=name,
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=message,
        metadata=metadata,
    )


def _fetch(mysql: MySQLResource, sql: str, params: Sequence[object] = (), recursive: bool = False) -> Offenders:
    limit = recursion_limit(mysql.sample_id_span()) if recursive else None
    return Offenders.from_rows(mysql.fetch_all(sql, params, recursion_limit=limit))


def _binary_collation(mysql: MySQLResource) -> str:
    return f"{mysql.column(SAMPLE_MEASUREMENTS, 'measurement_type').character_set}_bin"


def raise_if_blocking_failed(results: Iterable[AssetCheckResult], blocking: Iterable[str]) -> None:
    """After a step yielded its results: a failed blocking check fails the step with its own
    message (Dagster's own error names only the check), so the tables downstream are not rebuilt."""
    failed = [r for r in results if r.check_name in set(blocking) and not r.passed]
    if failed:
        raise Failure(
            description="; ".join(str(r.description) for r in failed),
            metadata=dict(failed[0].metadata or {}),
        )


# --- lineage ----------------------------------------------------------------------------------


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
            _result(
                log,
                SAMPLE_LINEAGE,
                NO_PARENT_CYCLES,
                _fetch(mysql, cycles_sql, recursive=True),
                coverage,
                what="samples on or under a parent cycle (top_parent_id NULL)",
            )
        )
    if NO_MISSING_PARENTS in selected:
        parents = _fetch(mysql, parents_sql)
        parent_ids = [row[0] for row in parents.first]
        results.append(
            _result(
                log,
                SAMPLE_LINEAGE,
                NO_MISSING_PARENTS,
                _fetch(mysql, missing_sql, recursive=True),
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


def measurements_have_samples_result(
    log: DagsterLogManager, mysql: MySQLResource, coverage: Coverage
) -> AssetCheckResult:
    """One anti-join of sample_measurements with samples (whole tables)."""
    found = _fetch(mysql, integrity.measurements_without_sample_select(mysql.tables))
    return _result(
        log,
        MEASUREMENT_TYPES,
        MEASUREMENTS_HAVE_SAMPLES,
        found,
        coverage,
        what="measurements without a sample (left out of the flat table)",
        severity=AssetCheckSeverity.WARN,
        named=[f"sample_id={_value(r[0])} type={_value(r[1])} value={_value(r[2])}" for r in found.first],
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
        found = Offenders() if count == 0 else _fetch(mysql, sql())
        results.append(
            _result(
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
        lambda r: f"sample_id={_value(r[0])} value={_value(r[1])}",
    )
    counted(
        NO_DUPLICATE_MEASUREMENTS,
        scan and scan.types_with_repeats,
        lambda: integrity.duplicate_measurements_select(tables, _binary_collation(mysql)),
        "(sample, type) pairs measured more than once (the flat table keeps the largest value)",
        lambda r: f"sample_id={r[0]} type={_value(r[1])} measurements={r[2]}",
    )
    counted(
        ONE_SPELLING_PER_COLUMN,
        scan and scan.types_with_several_spellings,
        lambda: integrity.spellings_sharing_a_type_select(tables, _binary_collation(mysql)),
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
    missing = _missing_tables(log, mysql, MEASUREMENT_TYPES, CATALOG_COLUMN_NAMES_UNIQUE, MEASUREMENT_TYPES)
    if missing:
        return missing
    sql, params = integrity.duplicate_column_names_select(mysql.tables, MEASUREMENT_TYPES)
    found = _fetch(mysql, sql, params)
    return _result(
        log,
        MEASUREMENT_TYPES,
        CATALOG_COLUMN_NAMES_UNIQUE,
        found,
        _CATALOG,
        what="column names that MySQL would see as one (experiment_measurements is not rebuilt)",
        named=[f"{r[0]} x{r[1]}: {r[2]}" for r in found.first],
    )


def _column_limit_result(log: DagsterLogManager, mysql: MySQLResource) -> AssetCheckResult:
    missing = _missing_tables(log, mysql, MEASUREMENT_TYPES, CATALOG_WITHIN_COLUMN_LIMIT, MEASUREMENT_TYPES)
    if missing:
        return missing
    names = [row[0] for row in mysql.fetch_all(f"SELECT column_name FROM {mysql.tables.qualified(MEASUREMENT_TYPES)}")]
    try:
        value_type = source_value_type(mysql)
    except UnpublishableValueType as error:
        message = f"{CATALOG_WITHIN_COLUMN_LIMIT}: {error.description}"
        metadata = {"measurement_columns": MetadataValue.int(len(names)), **_CATALOG.metadata()}
        return _could_not_check(log, MEASUREMENT_TYPES, CATALOG_WITHIN_COLUMN_LIMIT, message, metadata)
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


def flat_table_check_results(
    log: DagsterLogManager, mysql: MySQLResource, selected: set[str], verification: Verification | None
) -> list[AssetCheckResult]:
    """``one_row_per_sample`` and ``flat_table_reconciles`` (those in ``selected``): from the
    verification of the rows this run wrote, or (``verification`` None: the audit) over the
    whole table against the live sources."""
    missing = [
        _missing_tables(log, mysql, EXPERIMENT_MEASUREMENTS, name, EXPERIMENT_MEASUREMENTS, MEASUREMENT_TYPES)
        for name in (ONE_ROW_PER_SAMPLE, FLAT_TABLE_RECONCILES)
        if name in selected
    ]
    if any(missing):
        return [m for m in missing if m]
    tables = mysql.tables
    if verification is None:
        coverage = AUDIT
        presence = _fetch(mysql, integrity.sample_rows_mismatch_select(tables, EXPERIMENT_MEASUREMENTS))
        presence_named = [f"{r[0]} ({r[1]})" for r in presence.first]
    else:
        coverage = (
            Coverage(
                "every row of the table as this whole-table build wrote it, against the sources it read"
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
            _result(
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
        sql, params = integrity.reconciliation_offending_samples_select(
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
        sql, params = integrity.reconciliation_select(
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
    return _result(
        log,
        EXPERIMENT_MEASUREMENTS,
        FLAT_TABLE_RECONCILES,
        found,
        coverage,
        what=what,
        extra={"measurement_columns": MetadataValue.int(len(measurement_columns)), **bound},
    )
