"""Sensor that starts a refresh when the lab's source tables change."""

import functools
import time
from collections.abc import Sequence

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from lab_assets.defs.jobs import lab_refresh_job
from lab_assets.lib.change_detection import (
    FULL_CHECK_INTERVAL_SECONDS,
    SensorCursor,
    is_unsettled,
    needs_fingerprint,
    refresh_decision,
    run_key,
)
from lab_assets.lib.names import (
    EXPERIMENT_MEASUREMENTS,
    PENDING_SAMPLES,
    SENSOR_NAME,
    SENSOR_RUN_TAGS,
)
from lab_assets.lib.refresh import recorded_totals_selects, source_totals_selects
from lab_assets.lib.threads import completed_in_threads
from lab_assets.mysql import MySQLResource
from lab_assets.refresh.state_tables import DIGEST_STATE, LINEAGE_STATE
from lab_assets.refresh.value_type import published_value_types, source_value_type
from lab_assets.server_errors import explaining
from lab_assets.sessions import is_mariadb

# How often the sensor is evaluated. Dagster's daemon evaluates sensors at most every 5 s (its
# sensor loop, MIN_INTERVAL_LOOP_TIME in dagster/_daemon/sensor.py, not configurable in 1.13); a
# minimum interval below that lets every loop tick this sensor, so a change is seen within 5 s of
# its commit. 5 s itself let ticks fall 5 or 10 s apart (median 7.5 s: the daemon compares the
# interval with the previous tick's recorded start, a few ms later than its loop's start), 30 s
# (before issue 17) 30-35 s. Measured with bench/write_to_table_latency.py (bench/RESULTS.md,
# "Write-to-table latency"): at 1M samples a quiet tick costs about 10 ms in the sensor (0.15 s as
# the daemon records it, gRPC included), a tick that sees a change about 2-2.5 s (one scan of each
# source table for the totals).
MINIMUM_INTERVAL_SECONDS = 2

IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def _update_times(mysql: MySQLResource) -> tuple[dict[str, str | None], str]:
    """When each source table was last written (information_schema, by the lab's table names,
    keyed by lab_assets' names) and the server's time; a missing table stops the tick with the
    sentence that names it (:func:`_raise_on_drift`)."""
    tables = mysql.tables
    names = {source.name: source.role for source in tables.sources}
    with mysql.connect() as connection:
        if not is_mariadb(connection):
            # MySQL 8 caches information_schema table statistics for a day by default.
            connection.exec_driver_sql("SET SESSION information_schema_stats_expiry = 0")
        rows = connection.exec_driver_sql(
            "SELECT table_name, DATE_FORMAT(update_time, '%%Y-%%m-%%d %%H:%%i:%%s'),"
            " DATE_FORMAT(NOW(), '%%Y-%%m-%%d %%H:%%i:%%s') FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name IN (%s, %s)",
            (tables.source_database, *names),
        ).fetchall()
    if len(rows) != 2:
        _raise_on_drift(mysql)
        raise RuntimeError(f"{tables.source_database} must hold the tables {' and '.join(names)}")
    roles = {name.lower(): role for name, role in names.items()}  # lower_case_table_names may fold them
    return {roles[str(name).lower()]: updated for name, updated, _ in rows}, rows[0][2]


def _raise_on_drift(mysql: MySQLResource) -> None:
    """Stops the tick with the one sentence naming a missing source table or column
    (:func:`lab_assets.mysql.source_drift`), as a build would, instead of a raw server error from
    the scans. Run only before the scans, so a quiet tick reads update times alone."""
    drift = mysql.source_drift()
    if drift is not None:
        raise RuntimeError(drift)


def _side_by_side(mysql: MySQLResource, selects: Sequence[str]) -> list[tuple]:
    """One row of each SELECT, all run at once, each on its own connection; in ``selects``' order."""
    rows: dict[int, tuple] = {}
    tasks = {str(i): functools.partial(mysql.fetch_one, sql) for i, sql in enumerate(selects)}
    for name, row, error in completed_in_threads(tasks, at_most=mysql.side_by_side(len(tasks))):
        if error is not None:
            raise error
        assert row is not None
        rows[int(name)] = row
    return [rows[i] for i in range(len(selects))]


def _totals(mysql: MySQLResource) -> tuple[str, str | None]:
    """The sources' totals as the refresh hashes them (one scan per source table), and the same
    totals over what the state tables recorded plus the count of pending marks (None before the
    state tables are built). The flat table is current when the two are equal and nothing is
    pending (lab_assets.lib.verification). The two scans run side by side, each on its own
    connection, so a tick that sees a change takes about as long as the larger one
    (sample_measurements: 1.4 s of the 1.9-2.1 s both take one after the other at 1M samples on a
    calm server; with other work on the 2 cores, median 2.2 s against 2.7 s, bench/RESULTS.md
    "Write-to-table latency"); then the recorded totals (small bucket tables, under 0.1 s)."""
    _raise_on_drift(mysql)
    tables = mysql.tables
    value_type = source_value_type(mysql)
    totals = source_totals_selects(tables, value_type)
    # The value column's type too: a type changed with the values' text unchanged (INT to
    # BIGINT, another collation) leaves every hash as it was, and the flat table must follow it.
    live = "|".join([*(":".join(map(str, row)) for row in _side_by_side(mysql, totals)), value_type.ddl])
    state_tables = (LINEAGE_STATE.buckets_table, DIGEST_STATE.buckets_table, PENDING_SAMPLES, EXPERIMENT_MEASUREMENTS)
    if not all(mysql.column_names(table) for table in state_tables):
        return live, None
    recorded = [":".join(map(str, mysql.fetch_one(sql))) for sql in recorded_totals_selects(tables)]
    published = set(published_value_types(mysql))
    recorded.append(value_type.ddl if published <= {value_type.ddl} else ",".join(sorted(published)))
    (pending,) = mysql.fetch_one(f"SELECT COUNT(*) FROM {tables.qualified(PENDING_SAMPLES)}")
    return live, "|".join(recorded) + ("" if pending == 0 else f"|{pending} pending")


@sensor(
    name=SENSOR_NAME,
    job=lab_refresh_job,
    minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Starts a refresh of experiment_measurements (and the tables it is built from) when"
    " samples or sample_measurements differ from what the tables were last built from: new, deleted or"
    " updated rows, also ones written during the last refresh. Ticks every 5 s (as often as the daemon"
    " evaluates sensors); quiet ticks read only information_schema (about 10 ms at 1M samples), and"
    " content hashes (one scan of each source table, about 2 s at 1M) decide whether anything really"
    " changed. Never starts a run while an earlier"
    " refresh is still going. Running by default wherever a daemon runs (a stop in the UI is kept);"
    " its first tick starts nothing when the tables already match the sources.",
)
def lab_source_change_sensor(context: SensorEvaluationContext, mysql: MySQLResource):
    with explaining():  # a server error of the tick names its setting (a connection limit, a grant)
        return _evaluated(context, mysql)


def _evaluated(context: SensorEvaluationContext, mysql: MySQLResource):
    running = context.instance.get_run_records(RunsFilter(statuses=IN_PROGRESS, tags=SENSOR_RUN_TAGS), limit=1)
    if running:
        return SkipReason(f"refresh run {running[0].dagster_run.run_id} is still in progress; waiting for it")

    cursor = SensorCursor.parse(context.cursor)
    update_times, server_now = _update_times(mysql)
    now = time.time()
    reason = needs_fingerprint(cursor, update_times, now)
    if reason is None:
        return SkipReason(f"no change: source tables last written {update_times}")

    live, recorded = _totals(mysql)
    retry_due = now - cursor.last_full_check >= FULL_CHECK_INTERVAL_SECONDS
    written_since_last_reading = update_times != cursor.update_times
    cursor.update_times = update_times
    cursor.unsettled = is_unsettled(update_times, server_now)
    cursor.last_full_check = now
    decision = refresh_decision(cursor, live, recorded, written_since_last_reading, retry_due)
    if decision is not None:
        return SensorResult(skip_reason=f"checked ({reason}): {decision}", cursor=cursor.serialize())
    cursor.fingerprint = live
    cursor.changes_seen += 1
    if recorded is None:
        context.log.info(f"{EXPERIMENT_MEASUREMENTS} or the tables it is built from do not exist yet; building them")
    else:
        context.log.info(f"sources differ from what the tables were built from ({reason}); refreshing")
    return SensorResult(
        run_requests=[RunRequest(run_key=run_key(cursor.changes_seen, live), tags=SENSOR_RUN_TAGS)],
        cursor=cursor.serialize(),
    )
