"""The multi-asset ``lab_source_derivations``: its three tables can be materialized one at a time,
and one failing computation neither stops nor loses the other two (against real MariaDB)."""

from __future__ import annotations

import time

import pytest
from dagster import materialize

import lab_assets.derivations.step as derivations
from lab_assets.defs.assets import lab_source_derivations, sample_measurements, samples
from lab_assets_tests.lab_data import assert_flat_table_is_exact


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


COMPUTATIONS = {
    "measurement_types": "compute_measurement_type_catalog",
    "sample_lineage": "compute_sample_lineage",
    "sample_measurement_digests": "compute_sample_measurement_digests",
}


@pytest.mark.parametrize("failing", ["measurement_types", "sample_lineage"])  # last and first written
def test_a_failing_computation_fails_the_step_and_the_others_are_still_written(lab_db, monkeypatch, failing):
    def fails(*args, **kwargs):
        raise RuntimeError(f"{failing} query failed")

    monkeypatch.setattr(derivations, COMPUTATIONS[failing], fails)
    result = lab_db.materialize_all(raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "lab_source_derivations" and f"{failing} query failed" in str(
        failure.event_specific_data.error
    )
    assert _materialized(result) == set(COMPUTATIONS) - {failing}
    assert "experiment_measurements" not in _tables(lab_db) and failing not in _tables(lab_db)


def test_a_table_is_written_while_the_other_computations_still_run(lab_db, monkeypatch):
    """The lineage (first in derivations.WRITE_ORDER) is filled as soon as it is computed, beside
    the catalog's scan, not after every computation has finished."""
    compute_catalog = derivations.compute_measurement_type_catalog
    lineage_was_written: list[bool] = []

    def catalog_waiting_for_the_lineage(log, mysql, keep=False, ids_table=None, keep_counts=False):
        deadline = time.monotonic() + 20
        while "sample_lineage" not in _tables(lab_db) and time.monotonic() < deadline:
            time.sleep(0.05)
        lineage_was_written.append("sample_lineage" in _tables(lab_db))
        return compute_catalog(log, mysql, keep, ids_table, keep_counts)

    monkeypatch.setattr(derivations, "compute_measurement_type_catalog", catalog_waiting_for_the_lineage)
    result = lab_db.materialize_all()
    assert result.success and lineage_was_written == [True]
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection)
