"""Jobs and the schedule: the sensor's refresh job and the nightly integrity audit."""

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from lab_assets.defs.assets import experiment_measurements
from lab_assets.defs.checks import BLOCKING_CHECKS
from lab_assets.lib.names import SOURCE_DERIVED_TABLES

# The sensor's refresh builds the tables and runs the blocking checks that guard the flat table;
# the whole-table integrity checks (each a full scan) run with every full materialization
# (`--select '*'`, the UI) and with the nightly `lab_integrity_audit` schedule instead.
REFRESH_SELECTION = AssetSelection.assets(
    *SOURCE_DERIVED_TABLES, experiment_measurements
).without_checks() | AssetSelection.checks(*BLOCKING_CHECKS)
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
