"""Sensor that starts a refresh when the lab's source tables change."""

import time

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
from lab_assets.lib.change_detection import SensorCursor, is_unsettled, needs_fingerprint, run_key
from lab_assets.lib.names import (
    EXPERIMENT_MEASUREMENTS,
    SAMPLE_MEASUREMENTS,
    SAMPLES,
    SENSOR_NAME,
    SENSOR_RUN_TAGS,
)
from lab_assets.lib.sources import MEASUREMENTS_COLUMNS, SAMPLES_COLUMNS, fingerprint_select
from lab_assets.mysql import MySQLResource, is_mariadb

SOURCE_TABLES = {SAMPLES: SAMPLES_COLUMNS, SAMPLE_MEASUREMENTS: MEASUREMENTS_COLUMNS}
IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def _update_times(mysql: MySQLResource) -> tuple[dict[str, str | None], str]:
    with mysql.connect() as connection:
        if not is_mariadb(connection):
            # MySQL 8 caches information_schema table statistics for a day by default.
            connection.exec_driver_sql("SET SESSION information_schema_stats_expiry = 0")
        rows = connection.exec_driver_sql(
            "SELECT table_name, DATE_FORMAT(update_time, '%%Y-%%m-%%d %%H:%%i:%%s'),"
            " DATE_FORMAT(NOW(), '%%Y-%%m-%%d %%H:%%i:%%s') FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name IN (%s, %s)",
            (mysql.tables.source_database, *SOURCE_TABLES),
        ).fetchall()
    if len(rows) != 2:
        raise RuntimeError(f"{mysql.tables.source_database} must hold the tables {' and '.join(SOURCE_TABLES)}")
    return {name: updated for name, updated, _ in rows}, rows[0][2]


def _fingerprint(mysql: MySQLResource) -> str:
    parts = []
    for table, columns in SOURCE_TABLES.items():
        count, hash_a, hash_b = mysql.fetch_one(fingerprint_select(mysql.tables, table, columns))
        parts.append(f"{table}:{count}:{hash_a}:{hash_b}")
    return "|".join(parts)


@sensor(
    name=SENSOR_NAME,
    job=lab_refresh_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="Starts a refresh of experiment_measurements (and the tables it is built from) when"
    " samples or sample_measurements change: new, deleted or updated rows. Quiet ticks read only"
    " information_schema; content hashes decide whether anything really changed. Never starts a run"
    " while an earlier refresh is still going.",
)
def lab_source_change_sensor(context: SensorEvaluationContext, mysql: MySQLResource):
    running = context.instance.get_run_records(RunsFilter(statuses=IN_PROGRESS, tags=SENSOR_RUN_TAGS), limit=1)
    if running:
        return SkipReason(f"refresh run {running[0].dagster_run.run_id} is still in progress; waiting for it")

    cursor = SensorCursor.parse(context.cursor)
    update_times, server_now = _update_times(mysql)
    now = time.time()
    reason = needs_fingerprint(cursor, update_times, now)
    if reason is None:
        return SkipReason(f"no change: source tables last written {update_times}")

    fingerprint = _fingerprint(mysql)
    cursor.update_times = update_times
    cursor.unsettled = is_unsettled(update_times, server_now)
    cursor.last_full_check = now
    if fingerprint == cursor.fingerprint:
        return SensorResult(skip_reason=f"checked ({reason}): content unchanged", cursor=cursor.serialize())
    cursor.fingerprint = fingerprint
    cursor.changes_seen += 1
    context.log.info(f"source change seen ({reason}): {fingerprint}; refreshing {EXPERIMENT_MEASUREMENTS}")
    return SensorResult(
        run_requests=[RunRequest(run_key=run_key(cursor.changes_seen, fingerprint), tags=SENSOR_RUN_TAGS)],
        cursor=cursor.serialize(),
    )
