"""Asset checks: one integrity property each, evaluated in SQL inside MySQL, offenders named.

Every check reports the first offenders (``OFFENDER_LIMIT``) and their total count in its
metadata (``offenders``, ``offender_count``) and in the run log. Checks on the lab's source tables
hang on the first asset built from them (``sample_lineage`` for ``samples``,
``measurement_types`` for ``sample_measurements``): Dagster does not execute checks of observable
source assets in a materialization run, so there they would never run.

Blocking checks (the catalog's column names and column count) stop ``experiment_measurements``
from being rebuilt, so the last good table stays; they fail their step with a message naming the
problem. The other checks report and let good rows be published.
"""

from collections.abc import Callable, Iterator, Sequence

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    Failure,
    MetadataValue,
    asset_check,
)

from lab_assets.defs.assets import experiment_measurements, sample_measurements, samples
from lab_assets.lib import integrity
from lab_assets.lib.flat_table import IDENTIFYING_COLUMNS, MAX_MEASUREMENT_COLUMNS, column_limit_problem
from lab_assets.lib.lineage import recursion_limit
from lab_assets.lib.names import EXPERIMENT_MEASUREMENTS, MEASUREMENT_TYPES, SAMPLE_LINEAGE, SAMPLE_MEASUREMENTS
from lab_assets.mysql import MySQLResource

OFFENDER_LIMIT = integrity.OFFENDER_LIMIT


def _result(
    context: AssetCheckExecutionContext,
    *,
    name: str,
    rows: Sequence[tuple],
    severity: AssetCheckSeverity,
    what: str,
    offender: Callable[[tuple], object],
    extra_metadata: dict[str, MetadataValue] | None = None,
) -> AssetCheckResult:
    """An AssetCheckResult from an ``integrity.offenders`` query result (count in the last column)."""
    count = int(rows[0][-1]) if rows else 0
    named = [offender(row[:-1]) for row in rows]
    if count:
        message = f"{name}: {count} {what}; first {len(named)}: {named}"
        (context.log.error if severity == AssetCheckSeverity.ERROR else context.log.warning)(message)
    else:
        message = f"{name}: passed, none found"
        context.log.info(message)
    return AssetCheckResult(
        passed=count == 0,
        severity=severity,
        description=message,
        metadata={
            "offender_count": MetadataValue.int(count),
            "offenders": MetadataValue.json(named),
            **(extra_metadata or {}),
        },
    )


def _missing_tables(context: AssetCheckExecutionContext, mysql: MySQLResource, name: str, *tables: str):
    """A failed result naming the tables the check reads that do not exist (not built yet, or
    their first build failed), instead of a raw ``1146 ... doesn't exist``; None if all exist."""
    missing = [f"{mysql.tables.database_of(t)}.{t}" for t in tables if not mysql.column_names(t)]
    if not missing:
        return None
    message = f"{name}: {', '.join(missing)} does not exist yet (not built, or its first build failed)"
    context.log.error(message)
    return AssetCheckResult(
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=message,
        metadata={"missing_tables": MetadataValue.json(missing)},
    )


def _source_collation(mysql: MySQLResource) -> tuple[str, str]:
    """Character set and collation of sample_measurements.measurement_type."""
    column = mysql.column(SAMPLE_MEASUREMENTS, "measurement_type")
    return str(column.character_set), str(column.collation)


def _lineage_recursion_limit(mysql: MySQLResource) -> int:
    return recursion_limit(mysql.sample_id_span())


def _value(value: object) -> str:
    return "NULL" if value is None else repr(str(value))


# --- lineage: checks of `samples`, run with sample_lineage ------------------------------------


@asset_check(
    asset=SAMPLE_LINEAGE,
    additional_deps=[samples],
    description="No parent cycles: every sample either reaches a root or hangs under a missing parent."
    " Names the samples on or under a cycle (they get top_parent_id NULL). Non-blocking: all other"
    " rows are still published.",
)
def no_parent_cycles(context: AssetCheckExecutionContext, mysql: MySQLResource) -> AssetCheckResult:
    rows = mysql.fetch_all(
        integrity.cycle_samples_select(mysql.tables), recursion_limit=_lineage_recursion_limit(mysql)
    )
    return _result(
        context,
        name="no_parent_cycles",
        rows=rows,
        severity=AssetCheckSeverity.ERROR,
        what="samples on or under a parent cycle (top_parent_id NULL)",
        offender=lambda r: r[0],
    )


@asset_check(
    asset=SAMPLE_LINEAGE,
    additional_deps=[samples],
    description="No missing parents: every parent_id names an existing sample. Names the samples under"
    " a parent that does not exist (they get top_parent_id NULL) and the missing parent ids."
    " Non-blocking.",
)
def no_missing_parents(context: AssetCheckExecutionContext, mysql: MySQLResource) -> AssetCheckResult:
    rows = mysql.fetch_all(
        integrity.missing_parent_samples_select(mysql.tables), recursion_limit=_lineage_recursion_limit(mysql)
    )
    parents = mysql.fetch_all(integrity.missing_parent_ids_select(mysql.tables))
    return _result(
        context,
        name="no_missing_parents",
        rows=rows,
        severity=AssetCheckSeverity.ERROR,
        what=f"samples under a missing parent (top_parent_id NULL); missing parent ids: {[p[0] for p in parents]}",
        offender=lambda r: r[0],
        extra_metadata={
            "missing_parent_ids": MetadataValue.json([p[0] for p in parents]),
            "missing_parent_count": MetadataValue.int(int(parents[0][-1]) if parents else 0),
        },
    )


# --- measurements: checks of `sample_measurements`, run with measurement_types -----------------


@asset_check(
    asset=MEASUREMENT_TYPES,
    additional_deps=[sample_measurements, samples],
    description="Every measurement belongs to a sample: sample_id is not NULL and names an existing"
    " sample. Such rows cannot be placed in the flat table and are left out; names them"
    " (sample_id, type, value).",
)
def measurements_have_samples(context: AssetCheckExecutionContext, mysql: MySQLResource) -> AssetCheckResult:
    rows = mysql.fetch_all(integrity.measurements_without_sample_select(mysql.tables))
    return _result(
        context,
        name="measurements_have_samples",
        rows=rows,
        severity=AssetCheckSeverity.WARN,
        what="measurements without a sample (left out of the flat table)",
        offender=lambda r: f"sample_id={_value(r[0])} type={_value(r[1])} value={_value(r[2])}",
    )


@asset_check(
    asset=MEASUREMENT_TYPES,
    additional_deps=[sample_measurements],
    description="Every measurement has a type (measurement_type is not NULL). Rows without one are left"
    " out of the flat table; names them (sample_id, value).",
)
def measurement_types_not_null(context: AssetCheckExecutionContext, mysql: MySQLResource) -> AssetCheckResult:
    rows = mysql.fetch_all(integrity.measurements_without_type_select(mysql.tables))
    return _result(
        context,
        name="measurement_types_not_null",
        rows=rows,
        severity=AssetCheckSeverity.WARN,
        what="measurements with a NULL measurement_type (left out of the flat table)",
        offender=lambda r: f"sample_id={_value(r[0])} value={_value(r[1])}",
    )


@asset_check(
    asset=MEASUREMENT_TYPES,
    additional_deps=[sample_measurements],
    description="No (sample, type) measured twice, types compared with the source column's collation"
    " as the catalog does. The flat table keeps the larger value (MAX), so results stay"
    " deterministic; names the pairs.",
)
def no_duplicate_measurements(context: AssetCheckExecutionContext, mysql: MySQLResource) -> AssetCheckResult:
    charset, _ = _source_collation(mysql)
    rows = mysql.fetch_all(integrity.duplicate_measurements_select(mysql.tables, f"{charset}_bin"))
    return _result(
        context,
        name="no_duplicate_measurements",
        rows=rows,
        severity=AssetCheckSeverity.WARN,
        what="(sample, type) pairs measured more than once (the flat table keeps the largest value)",
        offender=lambda r: f"sample_id={r[0]} type={_value(r[1])} measurements={r[2]}",
    )


@asset_check(
    asset=MEASUREMENT_TYPES,
    additional_deps=[sample_measurements],
    description="Each measurement column holds one spelling of its type. Types are identified as the"
    " source column's collation compares them (README, Column names), so spellings it holds equal"
    " (VOL and vol under a case-insensitive collation; any two emoji under utf8mb4_general_ci) share"
    " one column; this names every spelling of each such column, so no value is attributed to"
    " another spelling unseen. Non-blocking.",
)
def one_spelling_per_column(context: AssetCheckExecutionContext, mysql: MySQLResource) -> AssetCheckResult:
    charset, _ = _source_collation(mysql)
    rows = mysql.fetch_all(integrity.spellings_sharing_a_type_select(mysql.tables, f"{charset}_bin"))
    catalog = (
        dict(mysql.fetch_all(f"SELECT measurement_type, column_name FROM {mysql.tables.qualified(MEASUREMENT_TYPES)}"))
        if mysql.column_names(MEASUREMENT_TYPES)
        else {}
    )
    return _result(
        context,
        name="one_spelling_per_column",
        rows=rows,
        severity=AssetCheckSeverity.WARN,
        what="columns holding values of more than one spelling of a type",
        offender=lambda r: f"{catalog.get(r[0], '(not in the catalog yet)')}: {r[1]}",
    )


def _fail_step_if(result: AssetCheckResult) -> Iterator[AssetCheckResult]:
    """Blocking checks: record the result, then fail the step with the same message, so the run's
    error says what is wrong (Dagster's own message for a failed blocking check names only the check)."""
    yield result
    if not result.passed:
        raise Failure(description=result.description, metadata=dict(result.metadata))


@asset_check(  # pyright: ignore[reportArgumentType]  (a generator check: Dagster runs it, its stub type omits it)
    asset=MEASUREMENT_TYPES,
    blocking=True,
    description="The catalog's column names are unique as MySQL compares column names (case-insensitively),"
    " also against experiment_id, top_parent_id and sample_id. Blocking: experiment_measurements is"
    " not rebuilt, the last good table stays.",
)
def catalog_column_names_unique(
    context: AssetCheckExecutionContext, mysql: MySQLResource
) -> Iterator[AssetCheckResult]:
    yield from _fail_step_if(_column_names_unique_result(context, mysql))


def _column_names_unique_result(context: AssetCheckExecutionContext, mysql: MySQLResource) -> AssetCheckResult:
    missing = _missing_tables(context, mysql, "catalog_column_names_unique", MEASUREMENT_TYPES)
    if missing:
        return missing
    sql, params = integrity.duplicate_column_names_select(mysql.tables, MEASUREMENT_TYPES)
    return _result(
        context,
        name="catalog_column_names_unique",
        rows=mysql.fetch_all(sql, params),
        severity=AssetCheckSeverity.ERROR,
        what="column names that MySQL would see as one (experiment_measurements is not rebuilt)",
        offender=lambda r: f"{r[0]} x{r[1]}",
    )


@asset_check(  # pyright: ignore[reportArgumentType]  (a generator check: Dagster runs it, its stub type omits it)
    asset=MEASUREMENT_TYPES,
    blocking=True,
    description=f"The catalog fits in one table: at most {MAX_MEASUREMENT_COLUMNS} measurement columns"
    " (InnoDB row size limit with DECIMAL(16,6) columns) and a table definition within MariaDB's limit."
    " Blocking: experiment_measurements is not rebuilt, the last good table stays.",
)
def catalog_within_column_limit(
    context: AssetCheckExecutionContext, mysql: MySQLResource
) -> Iterator[AssetCheckResult]:
    yield from _fail_step_if(_column_limit_result(context, mysql))


def _column_limit_result(context: AssetCheckExecutionContext, mysql: MySQLResource) -> AssetCheckResult:
    missing = _missing_tables(context, mysql, "catalog_within_column_limit", MEASUREMENT_TYPES)
    if missing:
        return missing
    names = [row[0] for row in mysql.fetch_all(f"SELECT column_name FROM {mysql.tables.qualified(MEASUREMENT_TYPES)}")]
    problem = column_limit_problem(names)
    metadata = {
        "measurement_columns": MetadataValue.int(len(names)),
        "column_limit": MetadataValue.int(MAX_MEASUREMENT_COLUMNS),
    }
    if problem:
        context.log.error(f"catalog_within_column_limit: {problem}")
        result = AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=f"catalog_within_column_limit: {problem}; experiment_measurements is not rebuilt",
            metadata={**metadata, "offender_count": MetadataValue.int(len(names) - MAX_MEASUREMENT_COLUMNS)},
        )
    else:
        result = AssetCheckResult(
            passed=True,
            severity=AssetCheckSeverity.ERROR,
            description=f"{len(names)} measurement columns, limit {MAX_MEASUREMENT_COLUMNS}",
            metadata=metadata,
        )
    return result


# --- the flat table ---------------------------------------------------------------------------


@asset_check(
    asset=experiment_measurements,
    additional_deps=[samples],
    description="One row per sample: the same ids as samples, each once. Names ids without a row,"
    " rows without a sample and repeated ids.",
)
def one_row_per_sample(context: AssetCheckExecutionContext, mysql: MySQLResource) -> AssetCheckResult:
    missing = _missing_tables(context, mysql, "one_row_per_sample", EXPERIMENT_MEASUREMENTS)
    if missing:
        return missing
    rows = mysql.fetch_all(integrity.sample_rows_mismatch_select(mysql.tables, EXPERIMENT_MEASUREMENTS))
    return _result(
        context,
        name="one_row_per_sample",
        rows=rows,
        severity=AssetCheckSeverity.ERROR,
        what="sample ids without exactly one row",
        offender=lambda r: f"{r[0]} ({r[1]})",
    )


@asset_check(
    asset=experiment_measurements,
    additional_deps=[samples, sample_measurements, MEASUREMENT_TYPES],
    description="Reconciliation over the whole table, recomputed differently from the build: every"
    " measurement cell equals MAX(value) of its (sample, type) in the source (NULL where none), the"
    " table has exactly the catalog's columns, experiment_id is the sample's, and top_parent_id is"
    " the sample's root (a sample with parent_id NULL) or NULL exactly where no root is reachable."
    " Names (sample_id, column) pairs.",
)
def flat_table_reconciles(context: AssetCheckExecutionContext, mysql: MySQLResource) -> AssetCheckResult:
    missing = _missing_tables(context, mysql, "flat_table_reconciles", EXPERIMENT_MEASUREMENTS, MEASUREMENT_TYPES)
    if missing:
        return missing
    tables = mysql.tables
    identifying = {c.name for c in IDENTIFYING_COLUMNS}
    table_columns = mysql.column_names(EXPERIMENT_MEASUREMENTS)
    measurement_columns = [c for c in table_columns if c not in identifying]
    catalog_columns = [r[0] for r in mysql.fetch_all(f"SELECT column_name FROM {tables.qualified(MEASUREMENT_TYPES)}")]
    column_problems = [
        f"column {c} not in the catalog" for c in sorted(set(measurement_columns) - set(catalog_columns))
    ]
    column_problems += [f"catalog column {c} missing" for c in sorted(set(catalog_columns) - set(measurement_columns))]
    charset, collation = _source_collation(mysql)
    # Whole table in one cheap pass; then the columns of the first offending samples by name.
    catalog = mysql.fetch_all(f"SELECT measurement_type, column_name FROM {tables.qualified(MEASUREMENT_TYPES)}")
    sql, params = integrity.reconciliation_offending_samples_select(
        tables, EXPERIMENT_MEASUREMENTS, [(t, c) for t, c in catalog if c in measurement_columns]
    )
    offending = sorted(r[0] for r in mysql.fetch_all(sql, params))
    rows = []
    if offending:
        sql, params = integrity.reconciliation_select(
            tables,
            EXPERIMENT_MEASUREMENTS,
            MEASUREMENT_TYPES,
            measurement_columns,
            charset,
            collation,
            only_sample_ids=offending[:OFFENDER_LIMIT],
        )
        rows = mysql.fetch_all(sql, params, recursion_limit=_lineage_recursion_limit(mysql))
        # The two passes prove the same properties; should they ever disagree, still name the rows.
        rows = rows or [(sample_id, "row") for sample_id in offending[:OFFENDER_LIMIT]]
    total = len(offending) + len(column_problems)
    # Column-set problems come first; they are few (metadata about the table, not data rows).
    combined = [(p, total) for p in column_problems] + [(f"sample_id={r[0]} {r[1]}", total) for r in rows]
    return _result(
        context,
        name="flat_table_reconciles",
        rows=combined[:OFFENDER_LIMIT],
        severity=AssetCheckSeverity.ERROR,
        what="samples whose row differs from the source, or columns",
        offender=lambda r: r[0],
        extra_metadata={"measurement_columns": MetadataValue.int(len(measurement_columns))},
    )


ALL_CHECKS = [
    no_parent_cycles,
    no_missing_parents,
    measurements_have_samples,
    measurement_types_not_null,
    no_duplicate_measurements,
    one_spelling_per_column,
    catalog_column_names_unique,
    catalog_within_column_limit,
    one_row_per_sample,
    flat_table_reconciles,
]

# Checks that stop experiment_measurements from being rebuilt; they run in every refresh.
BLOCKING_CHECKS = [catalog_column_names_unique, catalog_within_column_limit]
