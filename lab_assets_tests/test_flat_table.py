"""Integration: materialize everything against real MariaDB and compare the whole flat table with
the independent Python recomputation."""

from __future__ import annotations

import csv
import re
import threading
import time
from decimal import Decimal
from pathlib import Path

import pymysql
import pytest

from lab_assets.names import FULL_REFRESH_TAG as REFRESH_TAG
from lab_assets_tests.lab_data import (
    actual_flat_table,
    assert_flat_table_is_exact,
    expected_flat_table,
    generate,
    insert,
    read_sources,
)

GOLDEN_TSV = Path(__file__).with_name("expected-seed-table.tsv")


def _golden_rows() -> dict[int, dict[str, object]]:
    with GOLDEN_TSV.open(newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        return {
            int(row["sample_id"]): {
                name: (None if cell == "" else (Decimal(cell) if name.startswith("measurement_") else int(cell)))
                for name, cell in row.items()
            }
            for row in reader
        }


def test_seed_table_matches_golden_file_cell_by_cell(lab_db):
    lab_db.materialize_all()
    with lab_db.connect() as connection:
        names, actual = actual_flat_table(connection)
    golden = _golden_rows()
    assert names == ["experiment_id", "top_parent_id", "sample_id", "measurement_ph", "measurement_vol"]
    assert actual == golden


def test_flat_table_schema(lab_db):
    lab_db.materialize_all()
    columns = lab_db.query(
        "SELECT column_name, column_type, is_nullable, column_key FROM information_schema.columns"
        " WHERE table_schema = DATABASE() AND table_name = 'experiment_measurements' ORDER BY ordinal_position"
    )
    # MySQL 8.0.19+ reports `int`, MariaDB `int(11)`: the display width is not part of the type.
    columns = [(name, re.sub(r"^int\(11\)", "int", column_type), *rest) for name, column_type, *rest in columns]
    assert columns == [
        ("experiment_id", "int", "YES", "MUL"),
        ("top_parent_id", "int", "YES", "MUL"),
        ("sample_id", "int", "NO", "PRI"),
        ("measurement_ph", "decimal(16,6)", "YES", ""),
        ("measurement_vol", "decimal(16,6)", "YES", ""),
    ]


@pytest.mark.parametrize("sample_count", [1_000, 10_000, 100_000])
def test_generated_data_whole_table_equals_independent_recomputation(lab_db, sample_count):
    generated_samples, generated_measurements = generate(sample_count)
    with lab_db.connect() as connection:
        insert(connection, generated_samples, generated_measurements)
    lab_db.materialize_all()
    with lab_db.connect() as connection:
        source_samples, source_measurements = read_sources(connection)
        names, actual = actual_flat_table(connection)
    measurement_columns, expected = expected_flat_table(source_samples, source_measurements)
    assert len(source_samples) == sample_count + 20
    assert names == ["experiment_id", "top_parent_id", "sample_id", *measurement_columns]
    assert actual == expected


def test_second_run_on_unchanged_data_gives_the_same_table(lab_db):
    with lab_db.connect() as connection:
        insert(connection, *generate(2_000))
    lab_db.materialize_all()
    with lab_db.connect() as connection:
        first = actual_flat_table(connection)
    lab_db.materialize_all()
    with lab_db.connect() as connection:
        assert actual_flat_table(connection) == first


def test_five_thousand_deep_chain_gets_its_root(empty_lab_db):
    depth = 5_000
    chain = [(1, None, 1)] + [(n, n - 1, 1) for n in range(2, depth + 1)]
    with empty_lab_db.connect() as connection:
        insert(connection, chain, [(depth, "ph", Decimal("7.5"))])
    empty_lab_db.materialize_all()
    lineage = empty_lab_db.query("SELECT sample_id, top_parent_id, depth FROM sample_lineage ORDER BY sample_id")
    assert lineage == [(n, 1, n - 1) for n in range(1, depth + 1)]
    with empty_lab_db.connect() as connection:
        assert_flat_table_is_exact(connection)


def test_empty_source_tables_give_an_empty_table_with_identifying_columns(empty_lab_db):
    empty_lab_db.materialize_all()
    with empty_lab_db.connect() as connection:
        names, rows = actual_flat_table(connection)
    assert names == ["experiment_id", "top_parent_id", "sample_id"] and rows == {}


def _wait_for(condition, what: str, while_running: threading.Thread, timeout: float = 60.0, poll: float = 0.05):
    """Polls ``condition`` until it returns something truthy (returned). Gives up as soon as the
    thread ``while_running`` has ended (what was awaited can no longer happen), or after
    ``timeout`` seconds, so a test that goes wrong fails instead of hanging."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if not while_running.is_alive():
            raise AssertionError(f"{while_running.name} ended before {what}")
        time.sleep(poll)
    raise AssertionError(f"gave up waiting for {what}")


def _in_thread(target, name: str) -> tuple[threading.Thread, dict]:
    """``target()`` started in a daemon thread; its result or error lands in the returned dict."""
    box: dict = {}

    def run():
        try:
            box["result"] = target()
        except BaseException as error:  # noqa: BLE001 - reported by the test after join
            box["error"] = error

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread, box


@pytest.mark.timeout(120)
def test_readers_never_see_the_flat_table_missing_or_empty_during_a_full_refresh(lab_db):
    """A full refresh's swap, made to wait on metadata locks so the order is fixed: a reader in
    a transaction holds the table; the rebuild queues its swap behind it; a second reader queues
    behind the swap; when the first reader commits, the swap and then the second reader run, and
    the second reader must find the whole new table, not a missing or empty one."""
    with lab_db.connect() as connection:
        insert(connection, *generate(3_000))
    lab_db.materialize_all()
    ((full_count,),) = lab_db.query("SELECT COUNT(*) FROM samples")
    assert lab_db.query("SELECT COUNT(*) FROM experiment_measurements") == [(full_count,)]

    def waiting_for_lock(statement_like: str):
        return lab_db.query(
            "SELECT id, info FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()"
            " AND state = 'Waiting for table metadata lock' AND info LIKE %s",
            (lab_db.name, statement_like),
        )

    # Readers give up after 60 s instead of waiting on a lock forever.
    first_reader = lab_db.connect()
    second_reader = lab_db.connect()
    poller = lab_db.connect()
    for connection in (first_reader, second_reader, poller):
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION lock_wait_timeout = 60")

    def count(connection) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM experiment_measurements")
            return cursor.fetchone()[0]

    build_done = threading.Event()
    polled: list[object] = []

    def poll_until_built():
        while not build_done.is_set():
            try:
                polled.append(count(poller))
            except pymysql.MySQLError as error:  # noqa: PERF203 - each poll's error is what the test reads
                polled.append(error)

    threads = []
    first_reader_open = True
    try:
        with first_reader.cursor() as cursor:
            cursor.execute("START TRANSACTION")
            cursor.execute("SELECT COUNT(*) FROM experiment_measurements")  # shared metadata lock until COMMIT
            assert cursor.fetchone()[0] == full_count
        threads.append(_in_thread(poll_until_built, "poller"))

        def rebuild():
            try:
                return lab_db.materialize_all(tags={REFRESH_TAG: "full"})
            finally:
                build_done.set()

        build, build_box = _in_thread(rebuild, "full-rebuild")
        threads.append((build, build_box))
        # The swap (any DDL statement naming the table) queues behind the first reader.
        swap = _wait_for(
            lambda: [
                r
                for r in waiting_for_lock("%experiment_measurements%")
                if not r[1].lstrip().upper().startswith("SELECT")
            ],
            "the rebuild's swap waited for the table's metadata lock",
            while_running=build,
        )
        assert len(swap) == 1, swap
        second, second_box = _in_thread(lambda: count(second_reader), "second-reader")
        threads.append((second, second_box))
        _wait_for(
            lambda: [
                r
                for r in waiting_for_lock("SELECT COUNT(*) FROM experiment_measurements")
                if r[0] == second_reader.thread_id()
            ],
            "the second reader queued behind the swap",
            while_running=second,
        )
        assert build.is_alive() and second.is_alive()
        with first_reader.cursor() as cursor:
            cursor.execute("COMMIT")
        first_reader_open = False
        second.join(60)
        build.join(60)
    finally:
        if first_reader_open:
            with first_reader.cursor() as cursor:
                cursor.execute("COMMIT")
        build_done.set()
        for thread, _ in threads:
            thread.join(60)
        for connection in (first_reader, second_reader, poller):
            connection.close()
    assert not [t.name for t, _ in threads if t.is_alive()]
    # The reader that queued behind the swap opens the table the swap left: the new, whole one.
    assert second_box == {"result": full_count}
    assert "error" not in build_box, build_box
    assert build_box["result"].success
    build_modes = {
        e.asset_key.to_user_string(): e.materialization.metadata["refresh"].value
        for e in build_box["result"].get_asset_materialization_events()
        if "refresh" in e.materialization.metadata
    }
    assert build_modes["experiment_measurements"] == "full (full refresh requested)"
    assert polled and all(answer == full_count for answer in polled), [a for a in polled if a != full_count][:3]
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection)
