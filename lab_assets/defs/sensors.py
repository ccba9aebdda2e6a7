"""Sensor that starts a refresh when the lab's source tables change."""

import time

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    define_asset_job,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from lab_assets.defs.assets import FLAT_TABLE, SOURCE_DERIVED_TABLES, experiment_measurements
from lab_assets.defs.checks import BLOCKING_CHECKS
from lab_assets.defs.resources import MySQLResource
from lab_assets.lib.change_detection import SensorCursor, is_unsettled, needs_fingerprint, run_key
from lab_assets.lib.sources import MEASUREMENTS_COLUMNS, SAMPLES_COLUMNS, fingerprint_select

TRIGGER_TAG = "lab_assets/trigger"
SENSOR_NAME = "lab_source_change_sensor"
SOURCE_TABLES = {"samples": SAMPLES_COLUMNS, "sample_measurements": MEASUREMENTS_COLUMNS}
IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
# The sensor's refresh builds the tables and runs the blocking checks that guard the flat table;
# the whole-table integrity checks (each a full scan) run with every full materialization
# (`--select '*'`, the UI) and with the nightly `lab_integrity_audit` schedule instead.
REFRESH_SELECTION = AssetSelection.assets(*SOURCE_DERIVED_TABLES, experiment_measurements).without_checks() | AssetSelection.checks(*BLOCKING_CHECKS)
lab_refresh_job = define_asset_job(
    "lab_refresh",
    selection=REFRESH_SELECTION,
    description="Refresh the lab tables (incremental where possible) with the blocking catalog checks.",
)
lab_integrity_audit_job = define_asset_job(
    "lab_integrity_audit",
    selection=AssetSelection.all_asset_checks(),
    description="Every integrity check over the whole tables, without rebuilding anything.",
)
lab_integrity_audit_schedule = ScheduleDefinition(
    name="lab_integrity_audit_nightly",
    job=lab_integrity_audit_job,
    cron_schedule="0 3 * * *",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Runs every integrity check at 03:00; sensor-driven refreshes run only the blocking ones.",
)


def _update_times(mysql: MySQLResource) -> tuple[dict[str, str | None], str]:
    with mysql.connect() as connection:
        if not connection.dialect.is_mariadb:
            # MySQL 8 caches information_schema table statistics for a day by default.
            connection.exec_driver_sql("SET SESSION information_schema_stats_expiry = 0")
        rows = connection.exec_driver_sql(
            "SELECT table_name, DATE_FORMAT(update_time, '%%Y-%%m-%%d %%H:%%i:%%s'),"
            " DATE_FORMAT(NOW(), '%%Y-%%m-%%d %%H:%%i:%%s') FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name IN ('samples', 'sample_measurements')",
            (mysql.database,),
        ).fetchall()
    if len(rows) != 2:
        raise RuntimeError(f"{mysql.database} must hold the tables samples and sample_measurements")
    return {name: updated for name, updated, _ in rows}, rows[0][2]


def _fingerprint(mysql: MySQLResource) -> str:
    parts = []
    for table, columns in SOURCE_TABLES.items():
        count, hash_a, hash_b = mysql.fetch_one(fingerprint_select(mysql.database, table, columns))
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
    running = context.instance.get_run_records(
        RunsFilter(statuses=IN_PROGRESS, tags={TRIGGER_TAG: SENSOR_NAME}), limit=1
    )
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
        return SensorResult(
            skip_reason=f"checked ({reason}): content unchanged", cursor=cursor.serialize()
        )
    cursor.fingerprint = fingerprint
    cursor.changes_seen += 1
    context.log.info(f"source change seen ({reason}): {fingerprint}; refreshing {FLAT_TABLE}")
    return SensorResult(
        run_requests=[RunRequest(run_key=run_key(cursor.changes_seen, fingerprint), tags={TRIGGER_TAG: SENSOR_NAME})],
        cursor=cursor.serialize(),
    )
