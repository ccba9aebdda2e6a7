"""Jobs and the schedule: the sensor's refresh job and the nightly integrity audit."""

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from lab_assets.defs.assets import experiment_measurements
from lab_assets.names import SOURCE_DERIVED_TABLES

# The sensor's refresh builds the tables and reports every check (each computed by the step that
# built its table, over what that step wrote: lab_assets.checks.source_checks, flat_table_checks); the nightly
# `lab_integrity_audit` recomputes every check over the whole live tables.
REFRESH_SELECTION = AssetSelection.assets(*SOURCE_DERIVED_TABLES, experiment_measurements)
lab_refresh_job = define_asset_job(
    "lab_refresh",
    selection=REFRESH_SELECTION,
    description="Refresh the lab tables (incremental where possible), with every check reported from the"
    " steps that build them.",
)
lab_integrity_audit_job = define_asset_job(
    "lab_integrity_audit",
    selection=AssetSelection.all_asset_checks(),
    description="Every integrity check recomputed over the whole live tables, without rebuilding anything.",
)
lab_integrity_audit_schedule = ScheduleDefinition(
    name="lab_integrity_audit_nightly",
    job=lab_integrity_audit_job,
    cron_schedule="0 3 * * *",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Recomputes every integrity check over the whole live tables at 03:00 (builds and"
    " refreshes report them over what they wrote).",
)
