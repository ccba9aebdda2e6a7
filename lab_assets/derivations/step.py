"""The three tables derived from the sources (catalog, lineage, digests), computed side by side
and each written, after its pending marks, as soon as it is computed (:data:`WRITE_ORDER`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future

from dagster import AssetCheckResult, AssetExecutionContext, DagsterLogManager, Output

from lab_assets.catalog.step import compute_measurement_type_catalog
from lab_assets.change_feed.mode import scan_asked
from lab_assets.change_feed.plan import plan_feed, store_after_refresh
from lab_assets.checks.evaluation import AUDIT, BLOCKING_CHECKS, Coverage, raise_if_blocking_failed
from lab_assets.checks.source_checks import (
    catalog_check_results,
    keep_orphan_record,
    lineage_check_results,
    measurements_have_samples_result,
)
from lab_assets.digests.step import compute_sample_measurement_digests
from lab_assets.lineage.step import compute_sample_lineage
from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.sessions import MAX_CONNECTIONS
from lab_assets.mysql.threads import started_in_threads
from lab_assets.names import (
    MEASUREMENT_TYPES,
    MEASUREMENTS_HAVE_SAMPLES,
    ORPHANS_TABLE,
    SAMPLE_LINEAGE,
    SAMPLE_MEASUREMENT_DIGESTS,
    SOURCE_DERIVED_TABLES,
)
from lab_assets.state.guard import check_sources, guarded_build, io_manager_schema, should_full_refresh
from lab_assets.state.pending import ensure_pending_table, mark_pending
from lab_assets.state.writes import DerivedTable


def derive_source_tables(context: AssetExecutionContext, mysql: MySQLResource) -> Iterator[Output | AssetCheckResult]:
    """Computes the selected tables in threads, each on its own connection (code run there logs
    only through ``context.log`` and returns metadata), and marks and yields each on the step's
    own thread as soon as it is computed, in :data:`WRITE_ORDER`, then the selected checks'
    results (lab_assets.checks.source_checks, flat_table_checks). Tables whose computation succeeded are written even if
    another failed; the first failure is raised afterwards. The build lock is held until the last output
    is written (Dagster's IO manager writes an output before the generator resumes). With no
    table selected (the audit), only the checks run, over the live sources."""
    checks = {key.name for key in context.selected_asset_check_keys}
    if not context.selected_asset_keys:
        check_sources(mysql)  # a renamed source column: one sentence, not the checks' raw 1054
        yield from _audited(context, mysql, checks)
        return
    full_refresh = should_full_refresh(context)
    with guarded_build(
        context.log, mysql, context.run.run_id, "lab_source_derivations", io_manager_schema(context)
    ) as still_held:
        yield from _computed_and_written(context, mysql, full_refresh, still_held, checks)


def _audited(context: AssetExecutionContext, mysql: MySQLResource, checks: set[str]) -> Iterator[AssetCheckResult]:
    results = lineage_check_results(context.log, mysql, checks, from_built_lineage=False)
    if MEASUREMENTS_HAVE_SAMPLES in checks:
        results.append(measurements_have_samples_result(context.log, mysql, AUDIT))
    results += catalog_check_results(context.log, mysql, checks, scan=None)
    # No Failure raised here: the audit rebuilds nothing, and the flat table's checks still run.
    yield from results


# The order the tables are written in, each once its own computation is done. The IO manager
# fills a whole table as its output is yielded, on the step's thread, while the computations still
# running go on in theirs: so in a full refresh the lineage walk (one connection, the longest fill)
# runs beside the catalog scan and the orphans' anti-join, and the digests (two connections)
# follow it (the schedules are compared in bench/RESULTS.md); the catalog, written last, is a few
# rows.
WRITE_ORDER = (SAMPLE_LINEAGE, SAMPLE_MEASUREMENT_DIGESTS, MEASUREMENT_TYPES)


def _written_as_computed(
    log: DagsterLogManager,
    mysql: MySQLResource,
    futures: dict[str, Future],
    still_held: Callable[[], None],
    turns: threading.Semaphore | None,
    feed_metadata: dict[str, str],
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
                yield Output(derived.value, output_name=name, metadata={**derived.metadata, **feed_metadata})
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
    full_refresh: bool,
    still_held: Callable[[], None],
    checks: set[str],
) -> Iterator[Output | AssetCheckResult]:
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    # The binlog position covers every derived table: only a run that writes them all moves it.
    all_derived = selected >= set(SOURCE_DERIVED_TABLES)
    feed = plan_feed(context.log, mysql, scan_asked(context.run.tags)) if all_derived else None
    ids = feed.ids_table if feed else None
    kept = feed.rows_kept if feed else False
    computations: dict[str, Callable[[], object]] = {
        # The catalog's counts are kept only where binlog refreshes follow (a position is stored).
        MEASUREMENT_TYPES: lambda: compute_measurement_type_catalog(
            context.log, mysql, kept, ids, keep_counts=feed is not None and feed.position is not None
        ),
        SAMPLE_LINEAGE: lambda: compute_sample_lineage(context.log, mysql, full_refresh, ids),
        SAMPLE_MEASUREMENT_DIGESTS: lambda: compute_sample_measurement_digests(context.log, mysql, full_refresh, ids),
    }
    tasks = {n: f for n, f in computations.items() if n in selected}
    if MEASUREMENTS_HAVE_SAMPLES in checks:  # beside the computations: an anti-join, unless the feed names ids
        coverage = Coverage(
            "the measurements of the samples found without one when sample_measurements was last read whole, and"
            " those without a sample id: the binlog says none came or went since (its changed sample ids rechecked)"
            if kept
            else "the samples without one among those recorded, the binlog's changed sample ids rechecked by index,"
            " and the measurements without a sample id"
            if ids
            else "every row of sample_measurements, against samples, read while this run built"
        )
        tasks[MEASUREMENTS_HAVE_SAMPLES] = lambda: measurements_have_samples_result(
            context.log, mysql, coverage, recorded=kept, ids_table=ids
        )
    elif feed is not None and feed.position is not None:
        # The record moves with the stored position: the feed's next delta starts from it.
        tasks[MEASUREMENTS_HAVE_SAMPLES] = lambda: keep_orphan_record(mysql, ids) or ORPHANS_TABLE
    ensure_pending_table(mysql)  # once, before the marks made below
    turns = _turns_within_connection_limit(context.log, mysql, len(tasks))
    futures = started_in_threads(tasks, turns)
    # A failed write fails the step at once; computations still running finish in their threads
    # (their statements hold metadata locks on their work tables, so a next run's DROP waits).
    yield from _written_as_computed(context.log, mysql, futures, still_held, turns, feed.metadata if feed else {})
    if feed is not None:  # every table written (a failure raised above), the pending marks made
        store_after_refresh(mysql, feed)
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
