"""How far ``experiment_measurements`` is behind a source, reported by each observation of the
source (``experiment_measurements_behind``, ``experiment_measurements_behind_seconds``).

Dagster records with every materialization the data version it consumed of each source (the
content fingerprint of the observation before the build, lab_assets.defs.jobs). An observation
whose fingerprint equals the one the latest build of the flat table consumed means the table is
current for this source; otherwise the table is behind since the first observation after that
build that saw another version. A time-window freshness policy would not say this: a table
that is current needs no rebuild however old its materialization is, as long as the lab wrote
nothing."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance
from dagster._core.definitions.data_version import (
    DATA_VERSION_TAG,
    get_input_data_version_tag,
)

from lab_assets.names import EXPERIMENT_MEASUREMENTS

# Observations read back to find when a change was first seen (a change is seen on the first
# observation after it, so the first few after the build suffice).
OBSERVATIONS_READ = 100


def behind_sources(instance: DagsterInstance, source: AssetKey, version: str) -> dict[str, str | float]:
    """The observation's metadata saying whether (and for how long) the latest build of
    experiment_measurements is behind ``source``, now at data version ``version``."""
    now = time.time()
    built = instance.fetch_materializations(AssetKey(EXPERIMENT_MEASUREMENTS), limit=1, ascending=False).records
    materialization = built[0].asset_materialization if built else None
    if materialization is None:
        return {"experiment_measurements_behind": "not built yet"}
    consumed = (materialization.tags or {}).get(get_input_data_version_tag(source))
    if consumed == version:
        return {
            "experiment_measurements_behind": "in sync: built from this version",
            "experiment_measurements_behind_seconds": 0.0,
        }
    later = instance.fetch_observations(
        AssetRecordsFilter(asset_key=source, after_storage_id=built[0].storage_id), limit=OBSERVATIONS_READ
    ).records
    changed = [
        r.timestamp
        for r in later
        if r.asset_observation is not None and (r.asset_observation.tags or {}).get(DATA_VERSION_TAG) != consumed
    ]
    since = min(changed, default=now)
    seen = datetime.fromtimestamp(since, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return {
        "experiment_measurements_behind": f"behind: {source.to_user_string()} changed after the table was built"
        f" (first observed {seen})",
        "experiment_measurements_behind_seconds": round(now - since, 1),
    }
