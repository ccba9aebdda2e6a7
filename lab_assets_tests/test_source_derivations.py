"""The multi-asset ``lab_source_derivations``: its three tables can be materialized one at a time,
and one failing computation neither stops nor loses the other two (against real MariaDB)."""

from __future__ import annotations

from dagster import materialize

from lab_assets.defs.assets import lab_source_derivations, sample_measurements, samples
from lab_assets.refresh import derivations


def _tables(db) -> set[str]:
    return {r[0] for r in db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")}


def _materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_one_derived_table_can_be_materialized_alone(lab_db):
    result = materialize(
        [samples, sample_measurements, lab_source_derivations],
        selection=["sample_lineage"],
        resources=lab_db.resources(),
    )
    assert _materialized(result) == {"sample_lineage"}
    assert "sample_lineage" in _tables(lab_db) and not {"measurement_types", "sample_measurement_digests"} & _tables(
        lab_db
    )
    assert lab_db.query("SELECT COUNT(*) FROM sample_lineage") == [(20,)]


def test_a_failing_computation_fails_the_step_and_the_others_are_still_written(lab_db, monkeypatch):
    def catalog_fails(log, mysql):
        raise RuntimeError("catalog query failed")

    monkeypatch.setattr(derivations, "compute_measurement_type_catalog", catalog_fails)
    result = lab_db.materialize_all(raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "lab_source_derivations" and "catalog query failed" in str(
        failure.event_specific_data.error
    )
    assert _materialized(result) == {"sample_lineage", "sample_measurement_digests"}
    assert "experiment_measurements" not in _tables(lab_db)
    assert lab_db.query("SELECT COUNT(*) FROM sample_lineage") == [(20,)]
