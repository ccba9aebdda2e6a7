"""The asset graph: lab sources -> measurement-type catalog and sample lineage -> flat table."""

import time
from collections.abc import Iterator
from functools import partial
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy.engine import Connection
from dagster import (
    AssetExecutionContext,
    AssetOut,
    DagsterLogManager,
    DataVersion,
    Failure,
    MetadataValue,
    ObserveResult,
    Output,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    asset,
    multi_asset,
    observable_source_asset,
)
from dagster._core.definitions.metadata.metadata_set import TableMetadataSet

from lab_assets.defs.concurrency import FLAT_TABLE_POOL
from lab_assets.defs.resources import MySQLResource
from lab_assets.io_manager import SqlRelation, existing_columns
from lab_assets.lib.bulk import BulkBuild, chunk_select, in_sample_id_ranges, key_ranges
from lab_assets.lib.flat_table import (
    MAX_MEASUREMENT_COLUMNS,
    MeasurementColumn,
    column_limit_problem,
    flat_table_definition,
    pivot_select,
)
from lab_assets.lib.lineage import LINEAGE_TABLE, lineage_bulk_build, lineage_select, recursion_limit, recursion_limit_statement
from lab_assets.lib.refresh import (
    BUCKET_SUMS_DEFINITION,
    CHANGE_SET_DEFINITION,
    LINEAGE_BUCKETS,
    MEASUREMENT_BUCKETS,
    DIGEST_BUCKETS_TABLE,
    DIGEST_TABLE,
    LINEAGE_BUCKETS_TABLE,
    DIGEST_TABLE_DEFINITION,
    PENDING_TABLE,
    PENDING_TABLE_DEFINITION,
    REBUILD_ALL_MARKER,
    BucketScheme,
    bucket_table_build_statements,
    bucket_table_update_statements,
    changed_bucket_members_select,
    candidate_bucket_sums_select,
    candidate_digests_select,
    changed_digests_select,
    changed_measurement_samples_select,
    changed_samples_select,
    descendants_select,
    digest_bucket_sums_select,
    digest_bulk_build,
    lineage_bucket_sums_select,
    lineage_update_select,
    measurement_bucket_sums_select,
    measurement_digest_select,
    moved_samples_select,
    state_row_count_select,
    stored_lineage_bucket_sums_select,
)
from lab_assets.lib.naming import column_name_for_type
from lab_assets.lib.threads import completed_in_threads
from lab_assets.lib.sql import TableDefinition, qualified_name
from lab_assets.lib.sources import (
    MEASUREMENTS_COLUMNS,
    SAMPLES_COLUMNS,
    fingerprint_select,
    measurement_type_catalog_select,
)

SOURCES_GROUP = "lab_sources"
FLAT_GROUP = "lab_flat_table"
FLAT_TABLE = "experiment_measurements"


def _column_schema(mysql: MySQLResource, table: str) -> TableSchema:
    """The table's columns and SQL types as the server reports them (information_schema)."""
    rows = mysql.fetch_all(
        "SELECT column_name, column_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (mysql.database, table),
    )
    return TableSchema(
        columns=[
            TableColumn(name=name, type=str(column_type), constraints=TableColumnConstraints(nullable=nullable == "YES"))
            for name, column_type, nullable in rows
        ]
    )


def _observe(mysql: MySQLResource, table: str, columns: tuple[str, ...]) -> ObserveResult:
    started = time.monotonic()
    row_count, hash_a, hash_b = mysql.fetch_one(fingerprint_select(mysql.database, table, columns))
    return ObserveResult(
        data_version=DataVersion(f"{row_count}-{hash_a}-{hash_b}"),
        metadata={
            **TableMetadataSet(
                row_count=int(row_count),
                table_name=f"{mysql.database}.{table}",
                column_schema=_column_schema(mysql, table),
            ),
            "observe_seconds": round(time.monotonic() - started, 3),
        },
    )


@observable_source_asset(
    name="samples",
    group_name=SOURCES_GROUP,
    description="The lab system's samples (id, parent_id, experiment_id, ts): trees of samples, each"
    " made from a parent sample. Read-only for lab_assets; observed as row count and content hash.",
    tags={"dagster/kind/mysql": ""},
)
def samples(mysql: MySQLResource) -> ObserveResult:
    return _observe(mysql, "samples", SAMPLES_COLUMNS)


@observable_source_asset(
    name="sample_measurements",
    group_name=SOURCES_GROUP,
    description="The lab system's measurements: one row per sample, measurement type and value; new"
    " types appear at any time. Read-only for lab_assets; observed as row count and content hash.",
    tags={"dagster/kind/mysql": ""},
)
def sample_measurements(mysql: MySQLResource) -> ObserveResult:
    return _observe(mysql, "sample_measurements", MEASUREMENTS_COLUMNS)


def _binary_collation_of_measurement_type(mysql: MySQLResource) -> str:
    (charset,) = mysql.fetch_one(
        "SELECT character_set_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = 'sample_measurements' AND column_name = 'measurement_type'",
        (mysql.database,),
    )
    return f"{charset}_bin"


MEASUREMENT_TYPES = "measurement_types"
LINEAGE = "sample_lineage"


@dataclass
class DerivedTable:
    """One source-derived table's computation, handed back to the step that runs them side by
    side: the value for the IO manager, its materialization metadata, and the sample ids to mark
    in the pending table (a SELECT) before the value is written."""

    value: object
    metadata: dict = field(default_factory=dict)
    pending_select: str | None = None


def _measurement_type_catalog(log: DagsterLogManager, mysql: MySQLResource) -> DerivedTable:
    rows = mysql.fetch_all(
        measurement_type_catalog_select(mysql.database, _binary_collation_of_measurement_type(mysql))
    )
    catalog = pd.DataFrame(
        {
            "measurement_type": [r[0] for r in rows],
            "column_name": [column_name_for_type(r[0]) for r in rows],
            "sample_count": pd.array([int(r[1]) for r in rows], dtype="int64"),
            "measurement_count": pd.array([int(r[2]) for r in rows], dtype="int64"),
        }
    ).sort_values("column_name", ignore_index=True)
    log.info(f"{len(catalog)} measurement types: {', '.join(catalog['measurement_type'])}")
    return DerivedTable(catalog, metadata={"preview": MetadataValue.md(catalog.to_markdown(index=False))})


# Work tables of an incremental refresh (lib/refresh.py), dropped once the write is done: the
# sample ids of the buckets whose sums differ from the stored ones, the changed sample ids among
# them, for lineage the moved ones, for digests the candidates' live digests.
LINEAGE_WORK_TABLES = tuple(f"sample_lineage__{t}" for t in ("candidates", "changes", "moved"))
DIGEST_WORK_TABLES = tuple(f"{DIGEST_TABLE}__{t}" for t in ("candidates", "live", "changes"))
REFRESH_TAG = "lab_assets/refresh"  # run tag; "full" rebuilds every table whole
# Above this share of changed samples an incremental refresh costs more than a full build.
FULL_REBUILD_FRACTION = 0.25


def _table_columns(mysql: MySQLResource, table: str) -> list[str]:
    with mysql.connect() as connection:
        return existing_columns(connection, mysql.database, table)


def _full_rebuild_requested(context: AssetExecutionContext) -> bool:
    return context.run.tags.get(REFRESH_TAG) == "full"


def _ensure_pending_table(mysql: MySQLResource) -> None:
    if not _table_columns(mysql, PENDING_TABLE):
        mysql.execute(PENDING_TABLE_DEFINITION.create_statement(mysql.database, PENDING_TABLE))


def _mark_pending(mysql: MySQLResource, select_sql: str) -> None:
    mysql.execute(f"INSERT IGNORE INTO {qualified_name(mysql.database, PENDING_TABLE)} (sample_id) {select_sql}")


def _fill_work_table(
    connection: Connection, schema: str, table: str, select_sql: str, definition: TableDefinition = CHANGE_SET_DEFINITION
) -> int:
    """(Re)create the work table ``table`` holding the rows ``select_sql`` produces (by default
    sample ids); its size."""
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {qualified_name(schema, table)}")
    connection.exec_driver_sql(definition.create_statement(schema, table))
    return _add_to_change_set(connection, schema, table, select_sql)


def _add_to_change_set(connection: Connection, schema: str, table: str, select_sql: str) -> int:
    """Adds the keys ``select_sql`` produces to the work table; its size afterwards."""
    connection.exec_driver_sql(f"INSERT IGNORE INTO {qualified_name(schema, table)} {select_sql}")
    (count,) = connection.exec_driver_sql(f"SELECT COUNT(*) FROM {qualified_name(schema, table)}").one()
    return int(count)


def _fill_candidates(
    mysql: MySQLResource, candidates_table: str, scheme: BucketScheme, live_sums_select: str, buckets_table: str,
    stored_sums_select,
) -> None:
    """The first level of lib/refresh.py's diff: the ids of the buckets whose live sums differ
    from ``buckets_table`` (first summed from the state table with ``stored_sums_select`` if
    missing) into the work table ``candidates_table``."""
    schema = mysql.database
    with mysql.connect() as connection:
        # Missing (a whole-table build was cut short) or of an older layout: summed again.
        if existing_columns(connection, schema, buckets_table) != list(BUCKET_SUMS_DEFINITION.column_names):
            for statement in bucket_table_build_statements(schema, buckets_table, stored_sums_select):
                connection.exec_driver_sql(statement)
        _fill_work_table(
            connection, schema, candidates_table,
            changed_bucket_members_select(schema, scheme, live_sums_select, buckets_table),
        )


def _drop_table(mysql: MySQLResource, table: str) -> None:
    mysql.execute(f"DROP TABLE IF EXISTS {qualified_name(mysql.database, table)}")


def _sample_count(mysql: MySQLResource) -> int:
    """At least the number of samples (exactly that while ids are dense), read from the primary
    key's two ends: a bound for the recursion limit and the base of the full-rebuild share,
    without counting a million rows three times per refresh."""
    (span,) = mysql.fetch_one(f"SELECT COALESCE(MAX(id) - MIN(id) + 1, 0) FROM {qualified_name(mysql.database, 'samples')}")
    return int(span)


def _too_many(changed: int, sample_count: int) -> bool:
    return changed > FULL_REBUILD_FRACTION * max(sample_count, 1)


_REBUILD_ALL_SELECT = f"SELECT {REBUILD_ALL_MARKER}"


def _changed_rows_written(
    schema: str, select_sql: str, definition: TableDefinition, work_tables: tuple[str, ...], changes_table: str,
    changed: int, buckets_table: str, bucket_updates: tuple[str, ...], recursion_limit: int | None = None,
) -> DerivedTable:
    """A state table's incremental write: the rows of the ids in ``changes_table`` replaced by
    ``select_sql``, its bucket table brought up to date in the same transaction, its row count
    summed from the bucket table, those ids marked pending for the flat table."""
    return DerivedTable(
        SqlRelation(
            select_sql=select_sql,
            definition=definition,
            recursion_limit=recursion_limit,
            only_keys_in=changes_table,
            after_write=bucket_updates,
            row_count_select=state_row_count_select(schema, buckets_table),
            drop_after_write=work_tables,
        ),
        metadata={"refresh": "incremental", "changed_samples": changed},
        pending_select=f"SELECT sample_id FROM {qualified_name(schema, changes_table)}",
    )


def _whole_table_written(
    mysql: MySQLResource, select_sql: str, definition: TableDefinition, work_tables: tuple[str, ...], bulk: BulkBuild,
    buckets_table: str, stored_sums_select, recursion_limit: int | None = None,
) -> DerivedTable:
    """A state table's whole-table build: its bucket table dropped now (stale once the new table
    is swapped in) and summed again after the swap; every sample marked for the flat table."""
    _drop_table(mysql, buckets_table)
    return DerivedTable(
        SqlRelation(
            select_sql=select_sql, definition=definition, recursion_limit=recursion_limit, bulk=bulk,
            drop_after_write=work_tables,
            after_write=bucket_table_build_statements(mysql.database, buckets_table, stored_sums_select),
        ),
        metadata={"refresh": "full"},
        pending_select=_REBUILD_ALL_SELECT,
    )


def _sample_lineage(log: DagsterLogManager, mysql: MySQLResource, full_rebuild: bool) -> DerivedTable:
    schema = mysql.database
    sample_count = _sample_count(mysql)
    limit = recursion_limit(sample_count)
    if not full_rebuild and _table_columns(mysql, LINEAGE) == list(LINEAGE_TABLE.column_names):
        started = time.monotonic()
        candidates_table, changes_table, moved_table = LINEAGE_WORK_TABLES
        _fill_candidates(
            mysql, candidates_table, LINEAGE_BUCKETS, lineage_bucket_sums_select(schema), LINEAGE_BUCKETS_TABLE,
            stored_lineage_bucket_sums_select,
        )
        with mysql.connect() as connection:
            _fill_work_table(connection, schema, changes_table, changed_samples_select(schema, candidates_table))
            _fill_work_table(connection, schema, moved_table, moved_samples_select(schema, changes_table))
            connection.exec_driver_sql(recursion_limit_statement(connection.dialect.is_mariadb, limit))
            changed = _add_to_change_set(connection, schema, changes_table, descendants_select(schema, moved_table))
        log.info(f"{changed} samples changed or under a changed parent ({time.monotonic() - started:.2f} s to find)")
        if not _too_many(changed, sample_count):
            return _changed_rows_written(
                schema, lineage_update_select(schema, changes_table), LINEAGE_TABLE, LINEAGE_WORK_TABLES, changes_table,
                changed, LINEAGE_BUCKETS_TABLE,
                bucket_table_update_statements(
                    schema, LINEAGE_BUCKETS, LINEAGE_BUCKETS_TABLE, LINEAGE_WORK_TABLES[:2],
                    stored_lineage_bucket_sums_select(schema, LINEAGE_WORK_TABLES[:2]),
                ),
                recursion_limit=limit,
            )
        log.info(f"{changed} of {sample_count} samples changed: rebuilding sample_lineage whole")
    return _whole_table_written(
        mysql, lineage_select(schema), LINEAGE_TABLE, LINEAGE_WORK_TABLES, lineage_bulk_build(schema),
        LINEAGE_BUCKETS_TABLE, stored_lineage_bucket_sums_select, recursion_limit=limit,
    )


def _fill_live_digests(mysql: MySQLResource, candidates_table: str, live_table: str) -> None:
    """The candidates' live digests into ``live_table``, the two halves of the candidate id range
    side by side on two connections: by now the source scans are usually done and the second
    core would idle (measured 0.45 s -> 0.33 s for 40k candidates at 1M samples)."""
    schema = mysql.database
    select_sql = candidate_digests_select(schema, candidates_table)
    with mysql.connect() as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {qualified_name(schema, live_table)}")
        connection.exec_driver_sql(DIGEST_TABLE_DEFINITION.create_statement(schema, live_table))
        low, high = connection.exec_driver_sql(
            f"SELECT MIN(sample_id), MAX(sample_id) FROM {qualified_name(schema, candidates_table)}"
        ).one()
    if low is None:
        return
    halves = key_ranges(low, high, (high - low) // 2 + 1)
    inserts = {
        f"{first}..{last}": partial(
            mysql.execute, f"INSERT INTO {qualified_name(schema, live_table)} {chunk_select(select_sql, 'm.sample_id', first, last)}"
        )
        for first, last in halves
    }
    # Both halves end before anything is raised: no statement is left running on its own.
    errors = [error for _, _, error in completed_in_threads(inserts) if error is not None]
    if errors:
        raise errors[0]


def _sample_measurement_digests(log: DagsterLogManager, mysql: MySQLResource, full_rebuild: bool) -> DerivedTable:
    schema = mysql.database
    if not full_rebuild and _table_columns(mysql, DIGEST_TABLE) == list(DIGEST_TABLE_DEFINITION.column_names):
        started = time.monotonic()
        candidates_table, live_table, changes_table = DIGEST_WORK_TABLES
        _fill_candidates(
            mysql, candidates_table, MEASUREMENT_BUCKETS, measurement_bucket_sums_select(schema), DIGEST_BUCKETS_TABLE,
            digest_bucket_sums_select,
        )
        _fill_live_digests(mysql, candidates_table, live_table)
        with mysql.connect() as connection:
            changed = _fill_work_table(
                connection, schema, changes_table, changed_measurement_samples_select(schema, candidates_table, live_table)
            )
        log.info(f"{changed} samples with changed measurements ({time.monotonic() - started:.2f} s to find)")
        if not _too_many(changed, _sample_count(mysql)):
            return _changed_rows_written(
                schema, changed_digests_select(schema, live_table, changes_table), DIGEST_TABLE_DEFINITION,
                DIGEST_WORK_TABLES, changes_table, changed, DIGEST_BUCKETS_TABLE,
                bucket_table_update_statements(
                    schema, MEASUREMENT_BUCKETS, DIGEST_BUCKETS_TABLE, (candidates_table,),
                    candidate_bucket_sums_select(schema, live_table),
                ),
            )
        log.info(f"{changed} samples changed: rebuilding {DIGEST_TABLE} whole")
    return _whole_table_written(
        mysql, measurement_digest_select(schema), DIGEST_TABLE_DEFINITION, DIGEST_WORK_TABLES,
        digest_bulk_build(schema), DIGEST_BUCKETS_TABLE, digest_bucket_sums_select,
    )


# The tables lab_assets derives from the sources, in the order their outputs are written.
SOURCE_DERIVED_TABLES = (MEASUREMENT_TYPES, LINEAGE, DIGEST_TABLE)


@multi_asset(
    name="lab_source_derivations",
    outs={
        MEASUREMENT_TYPES: AssetOut(
            dagster_type=pd.DataFrame,
            group_name=FLAT_GROUP,
            kinds={"mysql", "pandas"},
            is_required=False,
            description="Catalog of measurement types: one row per distinct type (as the source column's"
            " collation compares them) with the type as stored, its column in experiment_measurements and"
            " how many samples have it.",
        ),
        LINEAGE: AssetOut(
            dagster_type=SqlRelation,
            group_name=FLAT_GROUP,
            kinds={"mysql"},
            is_required=False,
            description="Root enrichment: each sample's root sample (top_parent_id) and depth, computed in"
            " MySQL with a recursive CTE for trees of any depth, plus the parent_id and experiment_id it was"
            " computed from. Samples on a parent cycle or under a missing parent get top_parent_id NULL."
            " Refreshes recompute only changed samples and the subtrees under them.",
        ),
        DIGEST_TABLE: AssetOut(
            dagster_type=SqlRelation,
            group_name=FLAT_GROUP,
            kinds={"mysql"},
            is_required=False,
            description="Per-sample digest of sample_measurements (row count and two CRC32 sums): what the"
            " last refresh saw, so the next one finds changed, added and deleted measurements without"
            " timestamps on the source table.",
        ),
    },
    deps=[samples, sample_measurements],
    internal_asset_deps={
        MEASUREMENT_TYPES: {sample_measurements.key},
        LINEAGE: {samples.key},
        DIGEST_TABLE: {samples.key, sample_measurements.key},
    },
    can_subset=True,
    pool=FLAT_TABLE_POOL,
    description="The tables derived from the two sources, computed side by side: each reads the sources"
    " on its own connection (a refresh's change detection is one scan per source), so on a server with"
    " more than one core the catalog, the lineage and the digests take about as long as the slowest.",
)
def lab_source_derivations(context: AssetExecutionContext, mysql: MySQLResource) -> Iterator[Output]:
    full_rebuild = _full_rebuild_requested(context)
    computations = {
        MEASUREMENT_TYPES: lambda: _measurement_type_catalog(context.log, mysql),
        LINEAGE: lambda: _sample_lineage(context.log, mysql, full_rebuild),
        DIGEST_TABLE: lambda: _sample_measurement_digests(context.log, mysql, full_rebuild),
    }
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    _ensure_pending_table(mysql)  # once, before the marks made below
    done: dict[str, DerivedTable] = {}
    failures: dict[str, BaseException] = {}
    for name, derived, error in completed_in_threads({n: f for n, f in computations.items() if n in selected}):
        if error is None:
            done[name] = derived
        else:
            failures[name] = error
            context.log.error(f"{name} failed: {error}")
    # Written one after another, each after its pending marks (the IO manager writes each output as
    # it is yielded); the tables whose computation succeeded are written even if another failed.
    for name in SOURCE_DERIVED_TABLES:
        if name in done:
            if done[name].pending_select:
                _mark_pending(mysql, done[name].pending_select)
            yield Output(done[name].value, output_name=name, metadata=done[name].metadata)
    if failures:
        raise next(iter(failures.values()))


@asset(
    name=FLAT_TABLE,
    deps=[samples, sample_measurements, DIGEST_TABLE],
    group_name=FLAT_GROUP,
    kinds={"mysql"},
    pool=FLAT_TABLE_POOL,
    description="The flat table scientists query: one row per sample with experiment_id, its root"
    " sample (top_parent_id), sample_id and one measurement_<type> DECIMAL(16,6) column per"
    " measurement type (NULL where the sample has no such measurement). Built inside MySQL; a full"
    " build is swapped in with one RENAME TABLE, a refresh replaces the changed rows in one"
    " transaction, so readers never see a mix.",
)
def experiment_measurements(
    context: AssetExecutionContext,
    mysql: MySQLResource,
    measurement_types: pd.DataFrame,
    sample_lineage: SqlRelation,
) -> SqlRelation:
    schema = mysql.database
    columns = [
        MeasurementColumn(measurement_type=t, column_name=c)
        for t, c in zip(measurement_types["measurement_type"], measurement_types["column_name"])
    ]
    # Before any DDL, so the last good table stays (also when the catalog checks are not run).
    problem = column_limit_problem([c.column_name for c in columns])
    if problem:
        raise Failure(
            description=f"experiment_measurements not rebuilt: {problem}",
            metadata={"measurement_columns": len(columns), "column_limit": MAX_MEASUREMENT_COLUMNS},
        )
    definition = flat_table_definition(columns)
    present = _table_columns(mysql, FLAT_TABLE)
    added = [c for c in columns if present and c.column_name not in present]
    if added:
        context.log.info(f"new measurement columns: {', '.join(c.column_name for c in added)}")
    context.add_output_metadata(
        {
            "measurement_columns": len(columns),
            "measurement_columns_added": ", ".join(c.column_name for c in added) or "none",
            # Shown per materialization in the UI: the measurement types this build brought in.
            "measurement_types_added": ", ".join(c.measurement_type for c in added) or "none",
        }
    )
    _ensure_pending_table(mysql)
    pending = qualified_name(schema, PENDING_TABLE)
    (pending_count, rebuild_all) = mysql.fetch_one(
        f"SELECT COUNT(*), COALESCE(MAX(sample_id = %s), 0) FROM {pending}", (REBUILD_ALL_MARKER,)
    )
    reason = (
        "full rebuild requested" if _full_rebuild_requested(context)
        else "table missing" if not present
        else "measurement columns changed" if present != list(definition.column_names)
        else "an upstream table was rebuilt whole" if rebuild_all
        else "too many changed samples" if _too_many(int(pending_count), _sample_count(mysql))
        else None
    )
    if reason is None:
        context.log.info(f"refreshing {pending_count} changed samples")
        context.add_output_metadata({"refresh": "incremental", "changed_samples": int(pending_count)})
        select_sql, params = pivot_select(
            schema, sample_lineage.as_from_item(), sample_lineage.params, columns, only_samples_in=PENDING_TABLE
        )
        return SqlRelation(
            select_sql=select_sql, params=params, definition=definition,
            only_keys_in=PENDING_TABLE, consume_keys_in=PENDING_TABLE,
        )
    context.log.info(f"building the whole table: {reason}")
    context.add_output_metadata({"refresh": f"full ({reason})"})
    select_sql, params = pivot_select(schema, sample_lineage.as_from_item(), sample_lineage.params, columns)
    # In sample-id ranges only over a stored lineage table (a lineage subquery would be
    # recomputed for every range).
    bulk = in_sample_id_ranges(schema, select_sql, params) if sample_lineage.table_reference else None
    return SqlRelation(
        select_sql=select_sql, params=params, definition=definition, bulk=bulk, consume_keys_in=PENDING_TABLE
    )


LAB_ASSETS = [samples, sample_measurements, lab_source_derivations, experiment_measurements]
