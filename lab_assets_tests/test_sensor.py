"""The source-change sensor, called directly with build_sensor_context against the real
database, carrying the cursor from tick to tick."""

from __future__ import annotations

import time

import pytest
from dagster import DagsterInstance, DagsterRunStatus, SkipReason, build_sensor_context
from dagster._core.test_utils import create_run_for_test

from lab_assets.defs.sensors import lab_source_change_sensor
from lab_assets.lib.change_detection import FULL_CHECK_INTERVAL_SECONDS, SensorCursor, needs_fingerprint
from lab_assets.lib.names import SENSOR_NAME
from lab_assets.lib.names import SENSOR_TRIGGER_TAG as TRIGGER_TAG
from lab_assets.mysql import MySQLResource
from lab_assets_tests.lab_data import generate, insert
from lab_assets_tests.test_refresh import CHANGES


class Ticker:
    """Ticks the sensor like the daemon does, keeping the cursor."""

    def __init__(self, db, instance):
        self.mysql = MySQLResource(url=db.url)
        self.instance = instance
        self.cursor = None

    def tick(self):
        context = build_sensor_context(cursor=self.cursor, instance=self.instance, resources={"mysql": self.mysql})
        result = lab_source_change_sensor(context)
        if isinstance(result, SkipReason):
            return [], result.skip_message
        if result.cursor is not None:
            self.cursor = result.cursor
        return result.run_requests or [], result.skip_reason.skip_message if result.skip_reason else None

    def settle(self):
        """Ticks until quiet (a change in the same second as a reading takes one more tick)."""
        time.sleep(1.05)
        for _ in range(3):
            requests, _ = self.tick()
            if not requests:
                return
        raise AssertionError("sensor kept requesting runs on unchanged data")


@pytest.fixture
def ticker(lab_db):
    with lab_db.connect() as connection:
        insert(connection, *generate(3_000))
    ticker = Ticker(lab_db, DagsterInstance.ephemeral())
    requests, _ = ticker.tick()
    assert len(requests) == 1, "the first tick starts the initial build"
    ticker.settle()
    return ticker


def test_quiet_tick_starts_no_run_and_says_what_it_saw(ticker):
    requests, message = ticker.tick()
    assert requests == [] and message.startswith("no change")


@pytest.mark.parametrize(
    "change",
    CHANGES
    + [
        lambda db: db.execute(
            "UPDATE sample_measurements SET value = 6.5 WHERE sample_id = 2 AND measurement_type = 'ph'"
        ),
        lambda db: db.execute("UPDATE samples SET parent_id = 5 WHERE id = 4"),
    ],
    ids=[f.__name__ for f in CHANGES] + ["corrected_ph_same_counts", "sample_moved_same_counts"],
)
def test_each_change_kind_starts_exactly_one_run(ticker, lab_db, change):
    change(lab_db)
    requests, _ = ticker.tick()
    assert len(requests) == 1
    assert requests[0].tags[TRIGGER_TAG] == SENSOR_NAME
    again, _ = ticker.tick()
    assert again == [], "the same change seen twice starts no second run"
    ticker.settle()


def test_run_keys_are_deterministic_and_new_for_each_change(lab_db):
    first, second = Ticker(lab_db, DagsterInstance.ephemeral()), Ticker(lab_db, DagsterInstance.ephemeral())
    key_a = first.tick()[0][0].run_key
    assert second.tick()[0][0].run_key == key_a, "same data and cursor give the same run key"
    lab_db.execute("UPDATE sample_measurements SET value = value + 1 WHERE sample_id = 2")
    time.sleep(1.05)
    key_b = first.tick()[0][0].run_key
    lab_db.execute("UPDATE sample_measurements SET value = value - 1 WHERE sample_id = 2")
    time.sleep(1.05)
    key_c = first.tick()[0][0].run_key
    assert len({key_a, key_b, key_c}) == 3, "content that returns to an earlier state still refreshes"


def test_no_tick_while_a_refresh_is_running(ticker, lab_db):
    create_run_for_test(
        ticker.instance, job_name="__ASSET_JOB", status=DagsterRunStatus.STARTED, tags={TRIGGER_TAG: SENSOR_NAME}
    )
    lab_db.execute("DELETE FROM sample_measurements WHERE sample_id = 2")
    requests, message = ticker.tick()
    assert requests == [] and "still in progress" in message


def test_touched_but_unchanged_tables_start_no_run(ticker, lab_db):
    lab_db.execute(
        "UPDATE sample_measurements SET value = value + 1 WHERE sample_id = 2",
        "UPDATE sample_measurements SET value = value - 1 WHERE sample_id = 2",
    )
    requests, message = ticker.tick()
    assert requests == [] and "content unchanged" in message


def test_fingerprint_decision_rules():
    settled = SensorCursor(update_times={"samples": "t1"}, fingerprint="f", unsettled=False, last_full_check=1000.0)
    assert needs_fingerprint(settled, {"samples": "t1"}, 1001.0) is None
    assert needs_fingerprint(settled, {"samples": "t2"}, 1001.0) == "a source table was written"
    assert needs_fingerprint(settled, {"samples": "t1"}, 1000.0 + FULL_CHECK_INTERVAL_SECONDS) == "periodic full check"
    assert needs_fingerprint(SensorCursor(), {}, 0.0) == "no earlier reading"
    unsettled = SensorCursor(update_times={"samples": "t1"}, fingerprint="f", unsettled=True, last_full_check=1000.0)
    assert needs_fingerprint(unsettled, {"samples": "t1"}, 1001.0) is not None


def test_refresh_job_runs_the_tables_and_only_the_blocking_checks():
    from dagster import AssetsDefinition

    from lab_assets.definitions import defs
    from lab_assets.defs.assets import LAB_ASSETS
    from lab_assets.defs.checks import ALL_CHECKS, BLOCKING_CHECKS

    assert lab_source_change_sensor.job_name == "lab_refresh"
    refresh = {node.name for node in defs.resolve_job_def("lab_refresh").graph.nodes}
    tables = {a.node_def.name for a in LAB_ASSETS if isinstance(a, AssetsDefinition) and a.is_materializable}
    assert refresh == tables | {c.node_def.name for c in BLOCKING_CHECKS}
    audit = {node.name for node in defs.resolve_job_def("lab_integrity_audit").graph.nodes}
    assert audit == {c.node_def.name for c in ALL_CHECKS}
