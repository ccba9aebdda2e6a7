"""Jobs and the schedule: the sensor's refresh job, the full refresh, and the nightly integrity audit."""

from dagster import AssetKey, AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from lab_assets.defs.assets import experiment_measurements
from lab_assets.names import (
    FULL_REFRESH_TAG,
    FULL_REFRESH_VALUE,
    SAMPLE_MEASUREMENTS,
    SAMPLES,
    SOURCE_DERIVED_TABLES,
)

# The sensor's refresh builds the tables and reports every check (each computed by the step that
# built its table, over what that step wrote: lab_assets.checks.source_checks, flat_table_checks); the nightly
# `lab_integrity_audit` recomputes every check over the whole live tables.
#
# Both refresh jobs observe the two sources first, in the same run. Dagster records, with each
# materialization, the data version of every upstream asset as its latest observation at the
# start of the building step, and shows a table "Unsynced" once a later observation reports
# another version. An observation in the run, just before the steps read the sources, makes the
# recorded version the content fingerprint of what they read: "Observe all" afterwards reports
# the same version until the sources really change (a change between the observation and the
# read shows the table "Unsynced" though it is current: never the reverse). It costs one scan of
# each source per run.
REFRESH_SELECTION = AssetSelection.assets(
    AssetKey(SAMPLES), AssetKey(SAMPLE_MEASUREMENTS), *SOURCE_DERIVED_TABLES, experiment_measurements
)
lab_refresh_job = define_asset_job(
    "lab_refresh",
    selection=REFRESH_SELECTION,
    description="Refresh the lab tables (incremental where possible), with every check reported from the"
    " steps that build them; the sources are observed first.",
)
# What the launchpad's tag did before, as a job of its own: every table rebuilt whole from the
# sources (lab_assets.state.guard.should_full_refresh reads the tag the job puts on its runs).
lab_full_refresh_job = define_asset_job(
    "lab_full_refresh",
    selection=REFRESH_SELECTION,
    tags={FULL_REFRESH_TAG: FULL_REFRESH_VALUE},
    description="Rebuild every lab table whole from the sources (a full refresh) and swap each in, with"
    " every check; for when a table is suspected wrong or after a change to lab_assets itself.",
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
