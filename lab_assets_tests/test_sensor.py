"""The source-change sensor, called directly with build_sensor_context against the real
database, carrying the cursor from tick to tick."""

from __future__ import annotations

import datetime
import json
import time

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.test_utils import create_run_for_test

from lab_assets.defs.sensors import lab_source_change_sensor
from lab_assets.mysql.resource import MySQLResource
from lab_assets.names import SENSOR_NAME
from lab_assets.names import SENSOR_TRIGGER_TAG as TRIGGER_TAG
from lab_assets.sensor.decisions import (
    FULL_CHECK_INTERVAL_SECONDS,
    SensorCursor,
    is_unsettled,
    needs_fingerprint,
    refresh_skip_reason,
)
from lab_assets.sensor.readings import source_update_times
from lab_assets_tests.lab_data import CHANGES, generate, insert
from lab_assets_tests.runs import Ticker


@pytest.fixture
def ticker(lab_db):
    with lab_db.connect() as connection:
        insert(connection, *generate(3_000))
    ticker = Ticker(lab_db, DagsterInstance.ephemeral())
    requests, _ = ticker.tick()
    assert len(requests) == 1, "the first tick starts the initial build"
    lab_db.materialize_all()  # the run it starts
    ticker.settle()
    return ticker


def test_a_first_tick_on_tables_built_from_these_sources_starts_no_run(ticker, lab_db):
    requests, message = Ticker(lab_db, DagsterInstance.ephemeral()).tick()
    assert requests == [] and "the tables match the sources" in message
    lab_db.execute("UPDATE sample_measurements SET value = value + 1 WHERE sample_id = 2 AND measurement_type = 'ph'")
    requests, _ = Ticker(lab_db, DagsterInstance.ephemeral()).tick()
    assert len(requests) == 1


def test_quiet_tick_starts_no_run_and_says_what_it_saw(ticker):
    requests, message = ticker.tick()
    assert requests == [] and message.startswith("no change")


@pytest.mark.parametrize(
    "change",
    [
        *CHANGES,
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


# Every status of a run that has not finished yet (written out here, not imported from the sensor).
UNFINISHED_RUN_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def _sensor_run_with_status(instance, status):
    """A run the sensor started, in ``status``. Dagster creates a QUEUED run only with the code
    location it came from (the queue's daemon launches it from there), so every run gets one."""
    origin = RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=RegisteredCodeLocationOrigin("lab_assets"), repository_name="__repository__"
        ),
        job_name="lab_refresh",
    )
    return create_run_for_test(
        instance, job_name="lab_refresh", status=status, tags={TRIGGER_TAG: SENSOR_NAME}, remote_job_origin=origin
    )


@pytest.mark.parametrize("status", UNFINISHED_RUN_STATUSES, ids=lambda s: s.value)
def test_no_tick_while_a_refresh_is_running(ticker, lab_db, status):
    run = _sensor_run_with_status(ticker.instance, status)
    assert ticker.instance.get_run_by_id(run.run_id).status == status
    lab_db.execute("DELETE FROM sample_measurements WHERE sample_id = 2")
    requests, message = ticker.tick()
    assert requests == [] and "still in progress" in message and run.run_id in message


def test_touched_but_unchanged_tables_start_no_run(ticker, lab_db):
    lab_db.execute(
        "UPDATE sample_measurements SET value = value + 1 WHERE sample_id = 2",
        "UPDATE sample_measurements SET value = value - 1 WHERE sample_id = 2",
    )
    requests, message = ticker.tick()
    assert requests == [] and "the tables match the sources" in message


def test_a_refresh_that_did_not_bring_the_tables_up_to_date_is_retried_once_per_periodic_check(ticker, lab_db):
    lab_db.execute("DELETE FROM sample_measurements WHERE sample_id = 2")
    assert len(ticker.tick()[0]) == 1
    # Its run failed (never ran here): a re-check of the same content before the periodic check
    # starts nothing...
    ticker.cursor = SensorCursor(**{**json.loads(ticker.cursor), "unsettled": True}).serialize()
    requests, message = ticker.tick()
    assert requests == [] and "did not bring them up to date" in message
    # ...the periodic check starts it again once (a fixed grant or a killed run is picked up)...
    ticker.cursor = SensorCursor(**{**json.loads(ticker.cursor), "last_full_check": 0.0}).serialize()
    requests, message = ticker.tick()
    assert len(requests) == 1, message
    # ...and so does a new write.
    time.sleep(1.05)
    lab_db.execute("DELETE FROM sample_measurements WHERE sample_id = 3")
    assert len(ticker.tick()[0]) == 1


def test_a_missing_flat_table_is_built_again(ticker, lab_db):
    lab_db.execute("DROP TABLE experiment_measurements")
    ticker.cursor = SensorCursor(**{**json.loads(ticker.cursor), "last_full_check": 0.0}).serialize()
    assert len(ticker.tick()[0]) == 1


def test_refresh_decision_rules():
    def decide(cursor, live, recorded, written=False, retry=False):
        return refresh_skip_reason(cursor, live, recorded, written_since_last_reading=written, retry_due=retry)

    assert decide(SensorCursor(fingerprint="f1"), "f1", "f1", written=True) == "the tables match the sources"
    assert decide(SensorCursor(), "f1", None) is None
    assert decide(SensorCursor(fingerprint="f1"), "f2", "f1") is None
    # The content the last refresh was started for, the tables still behind it:
    assert decide(SensorCursor(fingerprint="f2"), "f2", "f1") is not None
    assert decide(SensorCursor(fingerprint="f2"), "f2", "f1", written=True) is None
    assert decide(SensorCursor(fingerprint="f2"), "f2", "f1", retry=True) is None
    assert decide(SensorCursor(fingerprint="f2"), "f2", "f2|3 pending", written=True) is None


def test_fingerprint_decision_rules():
    settled = SensorCursor(update_times={"samples": "t1"}, fingerprint="f", unsettled=False, last_full_check=1000.0)
    assert needs_fingerprint(settled, {"samples": "t1"}, 1001.0) is None
    assert needs_fingerprint(settled, {"samples": "t2"}, 1001.0) == "a source table was written"
    assert needs_fingerprint(settled, {"samples": "t1"}, 1000.0 + FULL_CHECK_INTERVAL_SECONDS) == "periodic full check"
    assert needs_fingerprint(SensorCursor(), {}, 0.0) == "no earlier reading"
    unsettled = SensorCursor(update_times={"samples": "t1"}, fingerprint="f", unsettled=True, last_full_check=1000.0)
    assert needs_fingerprint(unsettled, {"samples": "t1"}, 1001.0) is not None


SERVER_SECOND_FORMAT = "%Y-%m-%d %H:%M:%S"  # how the sensor reads UPDATE_TIME and NOW() (DATE_FORMAT)


@pytest.mark.parametrize("now", ["2024-05-01 10:00:00", "2024-12-31 23:59:59", "2025-01-01 00:00:00"])
def test_a_write_in_the_current_second_is_unsettled(now):
    second = datetime.datetime.strptime(now, SERVER_SECOND_FORMAT)
    earlier = (second - datetime.timedelta(seconds=1)).strftime(SERVER_SECOND_FORMAT)
    later = (second + datetime.timedelta(seconds=1)).strftime(SERVER_SECOND_FORMAT)
    much_earlier = (second - datetime.timedelta(days=400)).strftime(SERVER_SECOND_FORMAT)
    # A table written in the current second: another write can follow within it unseen.
    assert is_unsettled({"samples": now, "sample_measurements": much_earlier}, now) is True
    assert is_unsettled({"samples": None, "sample_measurements": now}, now) is True
    # A clock that went back (UPDATE_TIME ahead of NOW()) is not taken as settled either.
    assert is_unsettled({"samples": later, "sample_measurements": earlier}, now) is True
    # Written a second or more before: nothing more can land in that second.
    assert is_unsettled({"samples": earlier, "sample_measurements": much_earlier}, now) is False
    # No update time (server restart, table evicted from the cache): nothing to wait for.
    assert is_unsettled({"samples": None, "sample_measurements": None}, now) is False
    assert is_unsettled({}, now) is False


def test_the_servers_own_second_is_unsettled(lab_db):
    """The same rule on the strings the sensor reads from the server, so the format the tests
    assume is the one it compares."""
    update_times, server_now = source_update_times(MySQLResource(url=lab_db.url))
    assert set(update_times) == {"samples", "sample_measurements"}
    second = datetime.datetime.strptime(server_now, SERVER_SECOND_FORMAT)
    earlier = (second - datetime.timedelta(seconds=1)).strftime(SERVER_SECOND_FORMAT)
    assert is_unsettled({"samples": server_now, "sample_measurements": None}, server_now) is True
    assert is_unsettled({"samples": earlier, "sample_measurements": None}, server_now) is False


def test_an_unsettled_reading_is_fingerprinted_again_until_settled():
    times = {"samples": "2024-05-01 10:00:00", "sample_measurements": "2024-05-01 09:00:00"}
    unsettled = SensorCursor(update_times=dict(times), fingerprint="f", unsettled=True, last_full_check=1000.0)
    # Same update times, right after the last reading: only the unsettled flag asks for a hash.
    assert (
        needs_fingerprint(unsettled, dict(times), 1000.5)
        == "the last change was within the same second as the last reading"
    )
    settled = SensorCursor(update_times=dict(times), fingerprint="f", unsettled=False, last_full_check=1000.0)
    assert needs_fingerprint(settled, dict(times), 1000.5) is None
    # Changed update times still say so first.
    assert (
        needs_fingerprint(unsettled, {**times, "samples": "2024-05-01 10:00:01"}, 1000.5)
        == "a source table was written"
    )


def test_refresh_job_builds_the_tables_and_reports_every_check():
    from dagster import AssetCheckKey, AssetKey
    from dagster._core.definitions.dependency import NodeHandle

    from lab_assets.checks.specs import ALL_CHECKS
    from lab_assets.definitions import defs
    from lab_assets.names import EXPERIMENT_MEASUREMENTS, SOURCE_DERIVED_TABLES

    def selected(job_name: str) -> set:
        job = defs.resolve_job_def(job_name)
        return {
            key
            for node in job.graph.nodes
            for key in job.asset_layer.get_selected_entity_keys_for_node(NodeHandle(node.name, None))
        }

    every_check = {spec.key for spec in ALL_CHECKS}
    assert all(isinstance(k, AssetCheckKey) for k in every_check) and len(every_check) == 10
    assert lab_source_change_sensor.job_name == "lab_refresh"
    tables = {AssetKey(t) for t in (*SOURCE_DERIVED_TABLES, EXPERIMENT_MEASUREMENTS)}
    # The sources are observed in the same run, so the UI shows the tables in sync with them.
    sources = {AssetKey("samples"), AssetKey("sample_measurements")}
    assert selected("lab_refresh") == sources | tables | every_check
    assert selected("lab_full_refresh") == sources | tables | every_check
    assert selected("lab_integrity_audit") == every_check  # the audit rebuilds nothing


def test_the_sensor_is_ticked_at_every_loop_of_the_daemon():
    """Dagster's daemon evaluates sensors at most every MIN_INTERVAL_LOOP_TIME (5 s); a minimum
    interval below it lets every loop tick the sensor (at 5 s itself ticks fell 5 or 10 s apart,
    bench/write_to_table_latency.py). A Dagster upgrade that changes the loop fails here."""
    from dagster._daemon.sensor import MIN_INTERVAL_LOOP_TIME

    assert MIN_INTERVAL_LOOP_TIME == 5
    assert lab_source_change_sensor.minimum_interval_seconds == 2 < MIN_INTERVAL_LOOP_TIME
    # The sensor's page shows the minimum interval ("~2 sec") next to the description: the
    # description names both numbers, so the two do not contradict each other.
    description = lab_source_change_sensor.description or ""
    assert "Ticks every 5 s: its minimum interval is 2 s (the ~2 sec Dagster shows)" in description
