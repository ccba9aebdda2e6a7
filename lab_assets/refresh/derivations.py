"""The three tables derived from the sources (catalog, lineage, digests), computed side by side
and each written, after its pending marks, as soon as it is computed (:data:`WRITE_ORDER`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, DagsterLogManager, MetadataValue, Output

from lab_assets.lib.names import (
    COLUMN_NAMES_TABLE,
    FULL_REBUILD_TAG,
    FULL_REBUILD_VALUE,
    MEASUREMENT_TYPES,
    MEASUREMENTS_HAVE_SAMPLES,
    SAMPLE_LINEAGE,
    SAMPLE_MEASUREMENT_DIGESTS,
    SAMPLE_MEASUREMENTS,
)
from lab_assets.lib.naming import column_name_for_type
from lab_assets.lib.sources import measurement_type_catalog_select
from lab_assets.lib.sql import Column, TableDefinition, no_pad_binary_collation
from lab_assets.lib.threads import started_in_threads
from lab_assets.mysql import MySQLResource
from lab_assets.refresh.checks import (
    AUDIT,
    BLOCKING_CHECKS,
    CatalogScan,
    Coverage,
    catalog_check_results,
    lineage_check_results,
    measurements_have_samples_result,
    raise_if_blocking_failed,
)
from lab_assets.refresh.digests import compute_sample_measurement_digests
from lab_assets.refresh.guard import check_sources, guarded_build
from lab_assets.refresh.lineage import compute_sample_lineage
from lab_assets.refresh.pending import ensure_pending_table, mark_pending
from lab_assets.refresh.writes import DerivedTable
from lab_assets.sessions import MAX_CONNECTIONS, is_mariadb


def column_names_definition(type_collation: str) -> TableDefinition:
    """The column each measurement type (spelling as first seen) was given. VARCHAR(255): the
    catalog's key length (README, Known limits). The type in ``type_collation``
    (:func:`lab_assets.lib.sql.no_pad_binary_collation`), not the utf8mb4_bin of lab_assets'
    other tables: under a NO PAD source collation (MySQL 8's default utf8mb4_0900_ai_ci) 'ph'
    and 'ph ' are two types, which a PAD SPACE key would make one, and ``INSERT IGNORE`` would drop
    the second type's name."""
    return TableDefinition(
        columns=(
            Column("measurement_type", f"VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {type_collation} NOT NULL"),
            Column("column_name", "VARCHAR(64) NOT NULL"),
        ),
        primary_key=("measurement_type",),
    )


def full_rebuild_requested(context: AssetExecutionContext) -> bool:
    """The run carries ``lab_assets/refresh=full``: every table is rebuilt whole."""
    return context.run.tags.get(FULL_REBUILD_TAG) == FULL_REBUILD_VALUE


def compute_measurement_type_catalog(log: DagsterLogManager, mysql: MySQLResource) -> DerivedTable:
    """One row per distinct measurement type, as the source column's own collation groups them
    (its binary collation picks the representative spelling), with its column name and counts.

    Column names are a published interface: a type keeps the column it was first given
    (recorded in ``lab_measurement_columns``, never forgotten), also when a new spelling of it
    appears or it disappears and comes back; only a type seen for the first time is named by
    :func:`column_name_for_type`, and that name is recorded before it is published."""
    source = mysql.column(SAMPLE_MEASUREMENTS, "measurement_type")
    tables = mysql.tables
    recorded = tables.qualified(COLUMN_NAMES_TABLE)
    with mysql.connect() as connection:
        type_collation = no_pad_binary_collation(is_mariadb(connection))
    definition = column_names_definition(type_collation)
    mysql.execute(definition.create_statement(tables.output_database, COLUMN_NAMES_TABLE, if_not_exists=True))
    if mysql.column(COLUMN_NAMES_TABLE, "measurement_type").collation != type_collation:  # made before 2026-11-30
        mysql.execute(f"ALTER TABLE {recorded} MODIFY {definition.columns[0].definition()}")
    scanned = mysql.fetch_all(measurement_type_catalog_select(tables, str(source.character_set), str(source.collation)))
    rows = [r for r in scanned if r[0] is not None]
    scan = CatalogScan(
        null_type_rows=sum(int(r[2]) for r in scanned if r[0] is None),
        types_with_repeats=sum(1 for r in rows if r[3]),
        types_with_several_spellings=sum(1 for r in rows if r[4]),
        measurement_rows=sum(int(r[2]) for r in scanned),
    )
    names = [r[5] or column_name_for_type(r[0]) for r in rows]
    new = [(r[0], name) for r, name in zip(rows, names, strict=True) if r[5] is None]
    if new:
        with mysql.connect() as connection:
            connection.exec_driver_sql(
                f"INSERT IGNORE INTO {recorded} (measurement_type, column_name) VALUES (%s, %s)", new
            )
        log.info(f"new measurement columns recorded: {', '.join(f'{t!r} -> {n}' for t, n in new)}")
    catalog = pd.DataFrame(
        {
            # object dtype even when empty: an empty list alone would make float64 (DOUBLE) columns
            "measurement_type": pd.Series([r[0] for r in rows], dtype=object),
            "column_name": pd.Series(names, dtype=object),
            "sample_count": pd.array([int(r[1]) for r in rows], dtype="int64"),
            "measurement_count": pd.array([int(r[2]) for r in rows], dtype="int64"),
        }
    ).sort_values("column_name", ignore_index=True)
    log.info(f"{len(catalog)} measurement types: {', '.join(catalog['measurement_type'])}")
    return DerivedTable(catalog, metadata={"preview": MetadataValue.md(catalog.to_markdown(index=False))}, facts=scan)


def derive_source_tables(context: AssetExecutionContext, mysql: MySQLResource) -> Iterator[Output | AssetCheckResult]:
    """Computes the selected tables in threads, each on its own connection (code run there logs
    only through ``context.log`` and returns metadata), and marks and yields each on the step's
    own thread as soon as it is computed, in :data:`WRITE_ORDER`, then the selected checks'
    results (lab_assets.refresh.checks). Tables whose computation succeeded are written even if
    another failed; the first failure is raised afterwards. The build lock is held until the last output
    is written (Dagster's IO manager writes an output before the generator resumes). With no
    table selected (the audit), only the checks run, over the live sources."""
    checks = {key.name for key in context.selected_asset_check_keys}
    if not context.selected_asset_keys:
        check_sources(mysql)  # a renamed source column: one sentence, not the checks' raw 1054
        yield from _audited(context, mysql, checks)
        return
    full_rebuild = full_rebuild_requested(context)
    with guarded_build(
        context.log, mysql, context.run.run_id, "lab_source_derivations", io_manager_schema(context)
    ) as still_held:
        yield from _computed_and_written(context, mysql, full_rebuild, still_held, checks)


def _audited(context: AssetExecutionContext, mysql: MySQLResource, checks: set[str]) -> Iterator[AssetCheckResult]:
    results = lineage_check_results(context.log, mysql, checks, from_built_lineage=False)
    if MEASUREMENTS_HAVE_SAMPLES in checks:
        results.append(measurements_have_samples_result(context.log, mysql, AUDIT))
    results += catalog_check_results(context.log, mysql, checks, scan=None)
    # No Failure raised here: the audit rebuilds nothing, and the flat table's checks still run.
    yield from results


def io_manager_schema(context: AssetExecutionContext) -> str | None:
    """The database the run's IO manager writes into, when it is lab_assets' MySQL IO manager."""
    return getattr(getattr(context.resources, "io_manager", None), "schema", None)


# The order the tables are written in, each once its own computation is done. The IO manager
# fills a whole table as its output is yielded, on the step's thread, while the computations still
# running go on in theirs: so in a whole build the lineage walk (one connection, the longest fill)
# runs beside the catalog scan and the orphans' anti-join, and the digests (two connections)
# follow it. At 1M samples the derivations step went from 12.2-12.4 s to 10.5-10.6 s
# (bench/RESULTS.md); the catalog, written last, is a few rows.
WRITE_ORDER = (SAMPLE_LINEAGE, SAMPLE_MEASUREMENT_DIGESTS, MEASUREMENT_TYPES)


def _written_as_computed(
    log: DagsterLogManager,
    mysql: MySQLResource,
    futures: dict[str, Future],
    still_held: Callable[[], None],
    turns: threading.Semaphore | None,
) -> Iterator[Output]:
    """Each computed table's output in :data:`WRITE_ORDER`, after its pending marks, as soon as
    its computation is done. Tables whose computation succeeded are written even if another
    failed; the first failure (in :data:`WRITE_ORDER`, then the other tasks') is raised after the
    last write. With ``turns``, each write (the IO manager writes the output before the generator
    resumes) waits for the computation holding it: one connection at a time."""
    failures: list[BaseException] = []
    for name in (*WRITE_ORDER, *(n for n in futures if n not in WRITE_ORDER)):
        if name not in futures:
            continue
        error = futures[name].exception()  # waits for the computation
        derived = None if error else futures[name].result()
        if error is not None or derived is None:
            failures.append(error or RuntimeError(f"{name} returned nothing"))
            log.error(f"{name} failed: {failures[-1]}")
        elif isinstance(derived, DerivedTable):
            still_held()
            with turns or contextlib.nullcontext():
                if derived.pending_select:
                    mark_pending(mysql, derived.pending_select)
                yield Output(derived.value, output_name=name, metadata=derived.metadata)
    if failures:
        raise failures[0]


# Connections a computation may use at once (the digests' two halves) and a write with its
# parallel fill (the IO manager's connection and two workers): all side by side, each
# computation's and the write's, when the account's limit leaves room for them.
CONNECTIONS_PER_COMPUTATION = 2
CONNECTIONS_PER_WRITE = 3


def _turns_within_connection_limit(
    log: DagsterLogManager, mysql: MySQLResource, computations: int
) -> threading.Semaphore | None:
    """None when the account's and the server's connection limits leave room for every
    computation and a write side by side; else one turn that the computations and the writes take
    one after another (each may still use what the limits leave at its turn)."""
    # At most the engine's pool beside the build lock's connection.
    wanted = min(computations * CONNECTIONS_PER_COMPUTATION + CONNECTIONS_PER_WRITE, MAX_CONNECTIONS - 1)
    available = mysql.side_by_side(wanted)
    if available >= wanted:
        return None
    log.info(
        f"the connection limits leave {available} beside the build lock's connection, where this step would use up"
        f" to {wanted} side by side: computing and writing one table at a time"
    )
    return threading.Semaphore(1)


def _computed_and_written(
    context: AssetExecutionContext,
    mysql: MySQLResource,
    full_rebuild: bool,
    still_held: Callable[[], None],
    checks: set[str],
) -> Iterator[Output | AssetCheckResult]:
    computations: dict[str, Callable[[], object]] = {
        MEASUREMENT_TYPES: lambda: compute_measurement_type_catalog(context.log, mysql),
        SAMPLE_LINEAGE: lambda: compute_sample_lineage(context.log, mysql, full_rebuild),
        SAMPLE_MEASUREMENT_DIGESTS: lambda: compute_sample_measurement_digests(context.log, mysql, full_rebuild),
    }
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    tasks = {n: f for n, f in computations.items() if n in selected}
    if MEASUREMENTS_HAVE_SAMPLES in checks:  # a whole-table anti-join: beside the computations
        coverage = Coverage("every row of sample_measurements, against samples, read while this run built")
        tasks[MEASUREMENTS_HAVE_SAMPLES] = lambda: measurements_have_samples_result(context.log, mysql, coverage)
    ensure_pending_table(mysql)  # once, before the marks made below
    turns = _turns_within_connection_limit(context.log, mysql, len(tasks))
    futures = started_in_threads(tasks, turns)
    # A failed write fails the step at once; computations still running finish in their threads
    # (their statements hold metadata locks on their work tables, so a next run's DROP waits).
    yield from _written_as_computed(context.log, mysql, futures, still_held, turns)
    done = {name: future.result() for name, future in futures.items() if future.exception() is None}
    # Checks of a table this run did not build (picked alone in the UI) are recomputed live.
    results = lineage_check_results(context.log, mysql, checks, from_built_lineage=SAMPLE_LINEAGE in selected)
    orphans = done.get(MEASUREMENTS_HAVE_SAMPLES)
    if isinstance(orphans, AssetCheckResult):
        results.append(orphans)
    catalog = done.get(MEASUREMENT_TYPES)
    scan = catalog.facts if isinstance(catalog, DerivedTable) else None
    results += catalog_check_results(context.log, mysql, checks, scan)
    yield from results
    raise_if_blocking_failed(results, BLOCKING_CHECKS)
