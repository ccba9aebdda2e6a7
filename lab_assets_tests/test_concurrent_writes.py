"""Changes that land while a refresh runs: each is in the flat table after that refresh or the
next, also when it is put back after the refresh ends (issue 14, case 6).

The races are made reproducible with a hook: the source is edited from a second connection at a
chosen point of the flat table's step (after the digests and the lineage were recorded, before or
after the flat rows are written). Then a writer thread edits the sources at random while
refreshes run back to back, and once it stops one more refresh must give the exact table."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from dagster import DagsterInstance

import lab_assets.flat_table.step as flat_table_module
import lab_assets.lineage.step as lineage_module
from lab_assets_tests.lab_data import assert_flat_table_is_exact, generate, insert
from lab_assets_tests.runs import Ticker, assert_refresh_state_is_exact

BASE_SAMPLES = 2_000


@pytest.fixture
def built_db(lab_db):
    with lab_db.connect() as connection:
        insert(connection, *generate(BASE_SAMPLES))
    lab_db.materialize_all()
    return lab_db


def _refresh_and_check(db) -> None:
    db.materialize_all()
    with db.connect() as connection:
        assert_flat_table_is_exact(connection)
    assert_refresh_state_is_exact(db)


def _set_value(sample_id: int, value: object, measurement_type: str = "vol") -> str:
    return (
        f"UPDATE sample_measurements SET value = {value}"
        f" WHERE sample_id = {sample_id} AND measurement_type = '{measurement_type}'"
    )


def _edit_first(monkeypatch, module, function_name: str, db, *statements: str) -> list[bool]:
    """Runs ``statements`` (committed, another connection) once, when the step calls
    ``module.function_name``; the returned list holds True once they ran."""
    original = getattr(module, function_name)
    done: list[bool] = []

    def after_an_edit(*args, **kwargs):
        if not done:
            db.execute(*statements)
            done.append(True)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, function_name, after_an_edit)
    return done


def _edit_before_flat_write(monkeypatch, db, *statements: str) -> list[bool]:
    """The edit lands when the flat table's step plans its write: the state tables are recorded
    by then, the flat rows not yet built."""
    return _edit_first(monkeypatch, flat_table_module, "plan_flat_table", db, *statements)


def _edit_after_flat_write(monkeypatch, db, *statements: str) -> list[bool]:
    """The edit lands after the flat rows are written, before they are verified."""
    return _edit_first(monkeypatch, flat_table_module, "verify_written_rows", db, *statements)


def _edit_during_descendants_walk(monkeypatch, db, *statements: str) -> list[bool]:
    """The edit lands after the lineage's refresh found the changed samples, before it walks down
    from the moved ones to their subtrees (a second statement, another snapshot)."""
    return _edit_first(monkeypatch, lineage_module, "descendants_select", db, *statements)


@dataclass(frozen=True)
class Race:
    """A change that makes a refresh rewrite some rows (``before``), an edit that lands at one point
    of the flat table's step (``during``, ``at``: it returns a list that holds True once the edit
    ran), and what the lab does once the run ended (``after``); one more refresh must then give the
    exact table and refresh state."""

    name: str
    before: tuple[str, ...]
    during: str
    after: tuple[str, ...] = ()
    at: Callable[..., list[bool]] = _edit_before_flat_write


NEW_TYPE = "INSERT INTO sample_measurements VALUES (4, 'temp', 20)"  # the next build is a whole one
RACES = [
    # The row is written with the in-between value; the first value comes back after the run.
    Race("value put back", (_set_value(2, 111),), _set_value(2, 222), (_set_value(2, 111),)),
    Race("value kept", (_set_value(2, 111),), _set_value(2, 222)),
    Race(
        "measurement deleted, put back",
        (_set_value(3, 111),),
        "DELETE FROM sample_measurements WHERE sample_id = 3 AND measurement_type = 'vol'",
        ("INSERT INTO sample_measurements VALUES (3, 'vol', 111)",),
    ),
    # The lineage recorded the experiment before the edit.
    Race(
        "experiment put back",
        (_set_value(2, 111),),
        "UPDATE samples SET experiment_id = 77 WHERE id = 2",
        ("UPDATE samples SET experiment_id = 1 WHERE id = 2",),
    ),
    Race("full refresh, value put back", (NEW_TYPE,), _set_value(2, 222), (_set_value(2, 500),)),
    # The row equals its recorded digest, so it is not checked against the sources; the edit
    # differs from that record and the next refresh finds it.
    Race("edit after a matching write", (_set_value(2, 111),), _set_value(2, 222), at=_edit_after_flat_write),
    # The sample (and its measurements) goes while its row is rewritten and comes back as the
    # refresh recorded it: its row must come back.
    Race(
        "sample deleted, put back",
        (_set_value(20, 111),),
        "DELETE FROM samples WHERE id = 20",
        (
            "INSERT INTO samples (id, parent_id, experiment_id) VALUES (20, 11, 1)",
            "INSERT INTO sample_measurements VALUES (20, 'vol', 111), (20, 'ph', 7.34)",
        ),
    ),
    Race(
        "full refresh, sample deleted after",
        (NEW_TYPE,),
        "DELETE FROM samples WHERE id = 20",
        at=_edit_after_flat_write,
    ),
    # After the lineage was read, before the flat rows: a sample without measurements is added
    # (it gets a row, no lineage record) and deleted once the run ended.
    Race(
        "full refresh, sample added, deleted after",
        (NEW_TYPE,),
        "INSERT INTO samples (id, parent_id, experiment_id) VALUES (9001, NULL, 9)",
        ("DELETE FROM samples WHERE id = 9001",),
    ),
    # After the lineage was read, before the flat rows: a sample without measurements is deleted
    # (the lineage keeps its record, it gets no row) and put back as it was once the run ended:
    # nothing then differs from the recorded state but its missing row.
    Race(
        "full refresh, sample deleted, put back",
        (NEW_TYPE, "INSERT INTO samples (id, parent_id, experiment_id) VALUES (9002, 5, 9)"),
        "DELETE FROM samples WHERE id = 9002",
        ("INSERT INTO samples (id, parent_id, experiment_id) VALUES (9002, 5, 9)",),
    ),
    # 9 moves to root 13; before the walk down from 9, its child 10 moves away (to 5), and it is
    # back under 9 once the run ended: 10 and its subtree must get root 13 all the same.
    Race(
        "child moved away during the walk down, put back",
        ("UPDATE samples SET parent_id = 13 WHERE id = 9",),
        "UPDATE samples SET parent_id = 5 WHERE id = 10",
        ("UPDATE samples SET parent_id = 9 WHERE id = 10",),
        at=_edit_during_descendants_walk,
    ),
    # The same with the child deleted (its subtree goes with it) and put back as it was.
    Race(
        "child deleted during the walk down, put back",
        ("UPDATE samples SET parent_id = 13 WHERE id = 9",),
        "DELETE FROM samples WHERE id = 12",
        (
            "INSERT INTO samples (id, parent_id, experiment_id) VALUES (12, 9, 1)",
            "INSERT INTO sample_measurements VALUES (12, 'vol', 40.3), (12, 'ph', 7.4)",
        ),
        at=_edit_during_descendants_walk,
    ),
]


@pytest.mark.parametrize("race", RACES, ids=lambda race: race.name)
def test_an_edit_during_a_refresh_is_in_the_table_after_the_next_one(built_db, monkeypatch, race):
    built_db.execute(*race.before)
    edited = race.at(monkeypatch, built_db, race.during)
    built_db.materialize_all()
    monkeypatch.undo()
    # Else the step no longer calls the hooked function there and the race was never run.
    assert edited == [True], f"the edit never landed: the refresh did not call {race.at.__name__}'s hook"
    if race.after:
        built_db.execute(*race.after)
    _refresh_and_check(built_db)


def test_a_value_edited_after_the_write_is_refreshed(built_db, monkeypatch):
    # The row differs from the recorded digest (an edit before the write), and while it is checked
    # against the sources the value changes once more and stays: the recorded digest then equals
    # the source, so only the pending mark brings the row in.
    built_db.execute(_set_value(2, 111))
    before = _edit_before_flat_write(monkeypatch, built_db, _set_value(2, 222))
    after = _edit_after_flat_write(monkeypatch, built_db, _set_value(2, 333))
    built_db.materialize_all()
    monkeypatch.undo()
    assert (before, after) == ([True], [True]), "both edits landed"
    assert built_db.query("SELECT sample_id FROM lab_pending_samples") == [(2,)]
    _refresh_and_check(built_db)
    assert built_db.query("SELECT COUNT(*) FROM lab_pending_samples") == [(0,)]


def test_the_sensor_starts_a_refresh_for_a_change_the_last_one_saw_half_way(built_db, monkeypatch):
    # The sensor starts a refresh for content A; during it the value passes through B and is back
    # to A when the refresh ends, its row written with B. The sources hold A again, the content
    # the sensor last started a refresh for, yet the table is behind them: the next tick refreshes.
    ticker = Ticker(built_db, DagsterInstance.ephemeral())
    ticker.settle()
    built_db.execute(_set_value(2, 111))
    time.sleep(1.05)
    assert len(ticker.tick()[0]) == 1
    _edit_before_flat_write(monkeypatch, built_db, _set_value(2, 222))
    built_db.materialize_all()
    monkeypatch.undo()
    built_db.execute(_set_value(2, 111))
    time.sleep(1.05)
    requests, message = ticker.tick()
    assert len(requests) == 1, message
    _refresh_and_check(built_db)
    ticker.settle()


class LabWriter(threading.Thread):
    """Edits the sources from its own connection, each edit committed on its own, until stopped:
    values toggled on a few hot samples and put back a moment later, values changed, late and
    deleted measurements, experiments toggled, subtrees moved under roots (never into a cycle),
    new samples."""

    HOT_SAMPLES = (2, 3, 6, 9, 10, 12, 17, 19, 20, 25, 30, 41, 57, 63, 88)

    def __init__(self, db, seed: int):
        super().__init__(name="lab writer", daemon=True)
        self.db = db
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.put_backs: list[tuple[float, str]] = []  # (when, statement)
        self.edits = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.db.connect() as connection, connection.cursor() as cursor:
                cursor.execute("SELECT id FROM samples WHERE parent_id IS NULL")
                self.roots = [r[0] for r in cursor.fetchall()]
                cursor.execute("SELECT MAX(id) FROM samples")
                self.max_id = cursor.fetchone()[0]
                while not self.stop.is_set():
                    self._put_back_due(cursor, time.monotonic())
                    self._edit(cursor)
                    self.edits += 1
                    time.sleep(self.rng.uniform(0.005, 0.05))
                self._put_back_due(cursor, float("inf"))
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error

    def _put_back_due(self, cursor, now: float) -> None:
        due = [statement for when, statement in self.put_backs if when <= now]
        self.put_backs = [(when, statement) for when, statement in self.put_backs if when > now]
        for statement in due:
            cursor.execute(statement)

    def _edit(self, cursor) -> None:
        rng = self.rng
        sample = rng.choice(self.HOT_SAMPLES) if rng.random() < 0.6 else rng.randrange(21, self.max_id + 1)
        kind = rng.randrange(7)
        if kind == 0:  # a value toggled, put back 0.2-3 s later
            cursor.execute(
                "SELECT value FROM sample_measurements WHERE sample_id = %s AND measurement_type = 'vol'", (sample,)
            )
            row = cursor.fetchone()
            if row is not None:
                cursor.execute(_set_value(sample, rng.randrange(1000)))
                restore = _set_value(sample, row[0])
                self.put_backs.append((time.monotonic() + rng.uniform(0.2, 3.0), restore))
        elif kind == 1:  # a value changed
            cursor.execute(_set_value(sample, rng.randrange(1000), rng.choice(("vol", "ph"))))
        elif kind == 2:  # a late measurement
            cursor.execute(
                "DELETE FROM sample_measurements WHERE sample_id = %s AND measurement_type = 'len'", (sample,)
            )
            cursor.execute(
                "INSERT INTO sample_measurements VALUES (%s, 'len', %s)",
                (sample, Decimal(rng.randrange(10**6)).scaleb(-3)),
            )
        elif kind == 3:  # a deleted measurement
            cursor.execute(
                "DELETE FROM sample_measurements WHERE sample_id = %s AND measurement_type = %s",
                (sample, rng.choice(("vol", "ph", "len"))),
            )
        elif kind == 4:  # an experiment toggled, put back 0.2-3 s later
            cursor.execute("SELECT experiment_id FROM samples WHERE id = %s", (sample,))
            row = cursor.fetchone()
            if row is not None:
                cursor.execute("UPDATE samples SET experiment_id = 999 WHERE id = %s", (sample,))
                restore = f"UPDATE samples SET experiment_id = {row[0]} WHERE id = {sample}"
                self.put_backs.append((time.monotonic() + rng.uniform(0.2, 3.0), restore))
        elif kind == 5:  # a subtree moved under a root (roots never move, so no cycle forms)
            if sample not in self.roots:
                cursor.execute("UPDATE samples SET parent_id = %s WHERE id = %s", (rng.choice(self.roots), sample))
        else:  # a new sample with a measurement
            cursor.execute("INSERT INTO samples (parent_id, experiment_id) VALUES (%s, 3)", (sample,))
            self.max_id = cursor.lastrowid
            cursor.execute("INSERT INTO sample_measurements VALUES (%s, 'vol', 1.5)", (self.max_id,))


def test_refreshes_back_to_back_while_the_lab_writes_end_exact(built_db):
    writer = LabWriter(built_db, seed=14)
    writer.start()
    refreshes, deadline = 0, time.monotonic() + 25
    try:
        while time.monotonic() < deadline:
            built_db.materialize_all()
            refreshes += 1
    finally:
        writer.stop.set()
        writer.join(timeout=60)
    assert writer.error is None, writer.error
    assert refreshes >= 5 and writer.edits >= 200, (refreshes, writer.edits)
    _refresh_and_check(built_db)


def test_a_sample_moved_while_the_lineage_is_refreshed_gets_its_subtree_refreshed(built_db, monkeypatch):
    # Sample 9 (children 10 and 12, and their subtrees) changes experiment, so the lineage refresh
    # takes it as changed but not moved; after that decision and before its new row is written,
    # the lab moves it under root 13. Its subtree's roots must follow, at the latest with the
    # next refresh (found by the concurrent-writer test: the lineage recorded the new parent, read
    # after the decision, so no later refresh saw the move).
    import lab_assets.lineage.step as lineage_module

    built_db.execute("UPDATE samples SET experiment_id = 5 WHERE id = 9")
    done = _edit_first(
        monkeypatch, lineage_module, "descendants_select", built_db, "UPDATE samples SET parent_id = 13 WHERE id = 9"
    )
    built_db.materialize_all()
    monkeypatch.undo()
    assert done
    _refresh_and_check(built_db)


def test_a_whole_table_build_that_dies_before_its_verification_is_built_again(built_db, monkeypatch):
    # A new type makes the build a whole-table one; while it writes, sample 2's vol changes, and the
    # run dies (killed, say) after the swap and before the verification, the value put back meanwhile.
    built_db.execute(NEW_TYPE)
    _edit_before_flat_write(monkeypatch, built_db, _set_value(2, 222))

    def killed(*args, **kwargs):
        built_db.execute(_set_value(2, 500))
        raise RuntimeError("run killed before the verification")

    monkeypatch.setattr(flat_table_module, "verify_written_rows", killed)
    assert not built_db.materialize_all(raise_on_error=False).success
    monkeypatch.undo()
    assert (-2147483648,) in built_db.query("SELECT sample_id FROM lab_pending_samples"), "a verification is owed"
    _refresh_and_check(built_db)


def test_a_type_recorded_after_the_catalog_was_read_starts_the_next_refresh(built_db, monkeypatch):
    # Sample 3's vol changes; during the refresh, after the catalog was read and before the digests
    # are, the lab records a new type for it. The row is written without that type's column, its
    # digest recorded with it: the row must stay pending so the sensor starts the build that adds it.
    import lab_assets.digests.step as digests_module

    ticker = Ticker(built_db, DagsterInstance.ephemeral())
    ticker.settle()
    built_db.execute(_set_value(3, 111))
    done = _edit_first(
        monkeypatch,
        digests_module,
        "fill_live_digests",
        built_db,
        "INSERT INTO sample_measurements VALUES (3, 'temp', 21)",
    )
    built_db.materialize_all()
    monkeypatch.undo()
    assert done
    assert built_db.query("SELECT sample_id FROM lab_pending_samples") == [(3,)]
    time.sleep(1.05)
    requests, message = ticker.tick()
    assert len(requests) == 1, message
    _refresh_and_check(built_db)
