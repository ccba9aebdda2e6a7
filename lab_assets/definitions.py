"""Entry point: ``dagster ... -m lab_assets.definitions`` loads ``defs``."""

import atexit
import gc

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

# A process that loaded these definitions (`dagster job execute`, a sensor's run worker, `dagster
# asset materialize`) ends holding about a quarter of a million objects of Dagster, pandas and
# SQLAlchemy that the cyclic garbage collector walks again and again while the interpreter tears its
# modules down: most of a second of a cold refresh run (bench/RESULTS.md), to free memory the OS
# takes back anyway. Freezing them as the exit starts skips those walks. Every atexit handler still
# runs (those registered before this import run after this one), objects are still freed by
# reference count, and the cycles a refresh run leaves hold no file, socket or connection.
atexit.register(gc.freeze)
