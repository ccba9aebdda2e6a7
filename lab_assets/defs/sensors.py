"""Sensor that starts a refresh when the lab's source tables change."""

import time

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    Failure,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from lab_assets.change_feed.tick import FeedTick, position_key, read_feed
from lab_assets.defs.jobs import lab_refresh_job
from lab_assets.mysql.errors import explaining
from lab_assets.mysql.resource import MySQLResource
from lab_assets.names import (
    CHANGE_FEED_SCAN,
    CHANGE_FEED_TAG,
    EXPERIMENT_MEASUREMENTS,
    SENSOR_NAME,
    SENSOR_RUN_TAGS,
)
from lab_assets.sensor.decisions import (
    FULL_CHECK_INTERVAL_SECONDS,
    SensorCursor,
    is_unsettled,
    needs_fingerprint,
    refresh_skip_reason,
    run_key,
)
from lab_assets.sensor.readings import source_update_times, totals

# Dagster's daemon evaluates sensors at most every 5 s (its sensor loop, MIN_INTERVAL_LOOP_TIME in
# dagster/_daemon/sensor.py, not configurable in 1.13). A minimum interval below that lets every
# loop tick this sensor, so a change is seen within 5 s of its commit; 5 s itself would let ticks
# fall 5 or 10 s apart, because the daemon compares the interval with the previous tick's recorded
# start, a few ms after its loop's start. What a tick costs: bench/RESULTS.md.
MINIMUM_INTERVAL_SECONDS = 2

IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def _from_the_binlog(
    context: SensorEvaluationContext,
    mysql: MySQLResource,
    cursor: SensorCursor,
    feed: FeedTick,
    now: float,
    periodic: bool,
) -> SensorResult:
    """A tick answered by the binlog: a run when it names changed samples. The periodic check
    still sums the sources (the audit of the feed): a difference the binlog did not name is a
    feed miss, repaired by a run that scans."""
    assert feed.position is not None and feed.since is not None
    cursor.binlog_read_up_to = position_key(feed.position)
    read = f"binlog read from {feed.since.describe()} to {feed.position.describe()}"
    if feed.changed:
        cursor.changes_seen += 1
        context.log.info(f"{feed.changed} sample ids changed ({read}); refreshing")
        key = f"binlog {cursor.changes_seen} {feed.position.binlog_file}:{feed.position.binlog_position}"
        return SensorResult(run_requests=[RunRequest(run_key=key, tags=SENSOR_RUN_TAGS)], cursor=cursor.serialize())
    if not periodic:
        return SensorResult(skip_reason=f"no change to the source tables ({read})", cursor=cursor.serialize())
    cursor.last_full_check = now
    live, recorded = totals(mysql)
    if live == recorded:
        return SensorResult(
            skip_reason=f"periodic full check: the tables match the sources ({read})", cursor=cursor.serialize()
        )
    cursor.changes_seen += 1
    context.log.warning(
        "feed miss: the sources differ from what the tables were built from, but the binlog names no change"
        f" ({read}); a refresh that scans repairs it"
    )
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"feed miss {cursor.changes_seen} {live}",
                tags={**SENSOR_RUN_TAGS, CHANGE_FEED_TAG: CHANGE_FEED_SCAN},
            )
        ],
        cursor=cursor.serialize(),
    )


@sensor(
    name=SENSOR_NAME,
    job=lab_refresh_job,
    minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Starts a refresh of experiment_measurements (and the tables it is built from) when"
    " samples or sample_measurements differ from what the tables were last built from: new, deleted or"
    " updated rows, also ones written during the last refresh. Ticks every 5 s: its minimum interval"
    f" is {MINIMUM_INTERVAL_SECONDS} s (the ~{MINIMUM_INTERVAL_SECONDS} sec Dagster shows), but the daemon"
    " evaluates sensors at most every 5 s; quiet ticks read only information_schema (about 10 ms at 1M samples), and"
    " content hashes (one scan of each source table, about 2 s at 1M) decide whether anything really"
    " changed. Never starts a run while an earlier"
    " refresh is still going. Running by default wherever a daemon runs (a stop in the UI is kept);"
    " its first tick starts nothing when the tables already match the sources.",
)
def lab_source_change_sensor(context: SensorEvaluationContext, mysql: MySQLResource):
    """A URL or connection problem (``Failure``: the sentence naming LAB_DB_URL and what to check)
    is the tick's skip reason, not a failed tick: the daemon ticks every 5 s, and a traceback each
    time would bury the one sentence that says how to fix it. The cursor is kept, so the first tick
    after the fix compares with what was seen before."""
    try:
        with explaining():  # a server error of the tick names its setting (a connection limit, a grant)
            return _evaluated(context, mysql)
    except Failure as failure:
        return SkipReason(failure.description or str(failure))


def _evaluated(context: SensorEvaluationContext, mysql: MySQLResource):
    running = context.instance.get_run_records(RunsFilter(statuses=IN_PROGRESS, tags=SENSOR_RUN_TAGS), limit=1)
    if running:
        return SkipReason(f"refresh run {running[0].dagster_run.run_id} is still in progress; waiting for it")

    cursor = SensorCursor.parse(context.cursor)
    now = time.time()
    periodic = now - cursor.last_full_check >= FULL_CHECK_INTERVAL_SECONDS
    feed = read_feed(mysql, cursor.binlog_read_up_to, from_stored=periodic)
    if feed is not None and feed.fallback is None:
        return _from_the_binlog(context, mysql, cursor, feed, now, periodic)
    update_times, server_now = source_update_times(mysql)
    reason = needs_fingerprint(cursor, update_times, now)
    if reason is None:
        return SkipReason(f"no change: source tables last written {update_times}")

    live, recorded = totals(mysql)
    retry_due = now - cursor.last_full_check >= FULL_CHECK_INTERVAL_SECONDS
    written_since_last_reading = update_times != cursor.update_times
    cursor.update_times = update_times
    cursor.unsettled = is_unsettled(update_times, server_now)
    cursor.last_full_check = now
    decision = refresh_skip_reason(cursor, live, recorded, written_since_last_reading, retry_due)
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
