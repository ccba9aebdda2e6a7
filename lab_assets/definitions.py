"""Entry point: ``dagster ... -m lab_assets.definitions`` loads ``defs``."""

from dagster import Definitions, in_process_executor

from lab_assets.defs.assets import LAB_ASSETS
from lab_assets.defs.jobs import (
    lab_full_refresh_job,
    lab_integrity_audit_job,
    lab_integrity_audit_schedule,
    lab_refresh_job,
)
from lab_assets.defs.resources import RESOURCES
from lab_assets.defs.sensors import lab_source_change_sensor

defs = Definitions(
    assets=LAB_ASSETS,
    jobs=[lab_refresh_job, lab_full_refresh_job, lab_integrity_audit_job],
    sensors=[lab_source_change_sensor],
    schedules=[lab_integrity_audit_schedule],
    resources=RESOURCES,
    # One process for the whole run: the steps are SQL statements, a process per step is overhead.
    executor=in_process_executor,
)
