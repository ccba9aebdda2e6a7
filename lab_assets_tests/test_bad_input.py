"""Bad input against real MariaDB: every run ends, good rows stay exact (whole table compared with
the independent recomputation in lab_data), the checks name the offenders, the source tables
are untouched."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest
from dagster import materialize

from lab_assets.defs.assets import experiment_measurements, lab_source_derivations, sample_measurements, samples
from lab_assets.flat_table.sql import MAX_MEASUREMENT_COLUMNS
from lab_assets.sql.statements import no_pad_binary_collation
from lab_assets_tests.lab_data import (
    actual_flat_table,
    column_for_types,
    documented_column_name,
    expected_flat_table,
    generate,
    insert,
    read_sources,
    source_snapshot,
)
from lab_assets_tests.runs import all_checks_passed_except

pytestmark = pytest.mark.timeout(120)


def evaluations(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def offenders(evaluation) -> list:
    return evaluation.metadata["offenders"].value


def offender_count(evaluation) -> int:
    return evaluation.metadata["offender_count"].value


def assert_exact(db, case_insensitive: bool = True) -> dict:
    """The whole flat table equals the recomputation; returns the rows."""
    with db.connect() as connection:
        source_samples, source_measurements = read_sources(connection)
        names, actual = actual_flat_table(connection)
    column_for = column_for_types([m[1] for m in source_measurements], case_insensitive)
    columns, expected = expected_flat_table(source_samples, source_measurements, column_for)
    assert names == ["experiment_id", "top_parent_id", "sample_id", *columns]
    assert actual == expected
    return actual


def snapshot(db):
    with db.connect() as connection:
        return source_snapshot(connection)


def flat_table(db):
    with db.connect() as connection:
        return actual_flat_table(connection)


def helper_tables(db) -> list[str]:
    return [
        r[0]
        for r in db.query(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = DATABASE() AND table_name LIKE '%%\\_\\_%%'"
        )
    ]


def test_parent_cycle_gets_null_root_and_is_named(lab_db):
    # 21 <-> 22 is a cycle, 23 and 24 hang below it, 25 is its own parent; 26 is a good child of 1.
    with lab_db.connect() as connection:
        insert(
            connection,
            [(21, 22, 3), (22, 21, 3), (23, 22, 3), (24, 23, 3), (25, 25, 3), (26, 1, 1)],
            [(23, "vol", Decimal("1.5")), (24, "ph", Decimal("7")), (26, "vol", Decimal("2"))],
        )
    before = snapshot(lab_db)
    result = lab_db.materialize_all()
    rows = assert_exact(lab_db)
    assert {s for s, row in rows.items() if row["top_parent_id"] is None} == {21, 22, 23, 24, 25}
    assert rows[26]["top_parent_id"] == 1
    cycles = evaluations(result)["no_parent_cycles"]
    assert offenders(cycles) == [21, 22, 23, 24, 25] and offender_count(cycles) == 5
    assert cycles.severity.value == "ERROR"
    all_checks_passed_except(result, "no_parent_cycles")
    assert snapshot(lab_db) == before


def test_missing_parent_gets_null_root_and_is_named_apart_from_cycles(lab_db):
    # 21 names parent 999 (no such sample), 22 hangs below 21; 23 <-> 24 is a cycle.
    with lab_db.connect() as connection:
        insert(connection, [(21, 999, 4), (22, 21, 4), (23, 24, 4), (24, 23, 4)], [(22, "ph", Decimal("3.25"))])
    before = snapshot(lab_db)
    result = lab_db.materialize_all()
    rows = assert_exact(lab_db)
    assert {s for s, row in rows.items() if row["top_parent_id"] is None} == {21, 22, 23, 24}
    by_name = evaluations(result)
    missing = by_name["no_missing_parents"]
    assert offenders(missing) == [21, 22] and missing.metadata["missing_parent_ids"].value == [999]
    assert offenders(by_name["no_parent_cycles"]) == [23, 24]
    all_checks_passed_except(result, "no_missing_parents", "no_parent_cycles")
    assert snapshot(lab_db) == before


NON_IDENTIFIER_TYPES = ["pH-1", "temp C", "o2%", "a`b", "x'y", 'q"z', "';DROP T--", "abcdefghij", "Xyz_12345Q", "%s"]


def test_non_identifier_types_get_safe_unique_stable_columns(lab_db):
    with lab_db.connect() as connection:
        insert(
            connection, [], [(n % 20 + 1, t, Decimal(n) + Decimal("0.5")) for n, t in enumerate(NON_IDENTIFIER_TYPES)]
        )
    before = snapshot(lab_db)
    result = lab_db.materialize_all()
    all_checks_passed_except(result)
    rows = assert_exact(lab_db)
    assert len(rows) == 20
    catalog = dict(lab_db.query("SELECT measurement_type, column_name FROM measurement_types"))
    column_for = column_for_types(list(catalog))
    assert catalog == {t: column_for(t) for t in catalog} and set(NON_IDENTIFIER_TYPES) <= set(catalog)
    names = list(catalog.values())
    assert all(re.fullmatch(r"[a-z0-9_]{1,64}", n) for n in names)
    assert len({n.lower() for n in names}) == len(names)
    first = flat_table(lab_db)
    lab_db.materialize_all()
    assert (
        flat_table(lab_db) == first
        and dict(lab_db.query("SELECT measurement_type, column_name FROM measurement_types")) == catalog
    )
    assert snapshot(lab_db) == before


def _case_inputs(db):
    with db.connect() as connection:
        insert(
            connection,
            [],
            [(2, "VOL", Decimal("900")), (3, "VOL", Decimal("1")), (4, "VOL", Decimal("4")), (5, "Ph", Decimal("1"))],
        )


def test_types_differing_by_case_are_one_type_under_a_case_insensitive_collation(lab_db):
    _case_inputs(lab_db)
    assert lab_db.query(
        "SELECT collation_name FROM information_schema.columns WHERE table_schema = DATABASE()"
        " AND table_name = 'sample_measurements' AND column_name = 'measurement_type'"
    )[0][0].endswith("_ci")
    before = snapshot(lab_db)
    result = lab_db.materialize_all()
    rows = assert_exact(lab_db, case_insensitive=True)
    assert rows[2]["measurement_vol"] == Decimal("900") and rows[3]["measurement_vol"] == Decimal("400")
    assert sorted(lab_db.query("SELECT measurement_type, column_name FROM measurement_types")) == [
        ("ph", "measurement_ph"),
        ("vol", "measurement_vol"),
    ]
    duplicates = evaluations(result)["no_duplicate_measurements"]
    assert offenders(duplicates) == ["sample_id=2 type='vol' measurements=2", "sample_id=3 type='vol' measurements=2"]
    spellings = evaluations(result)["one_spelling_per_column"]
    assert offenders(spellings) == ['measurement_ph: "Ph", "ph"', 'measurement_vol: "VOL", "vol"']
    all_checks_passed_except(result, "no_duplicate_measurements", "one_spelling_per_column")
    assert snapshot(lab_db) == before


def test_types_differing_by_case_are_two_columns_under_a_binary_collation(lab_db):
    lab_db.execute(
        "ALTER TABLE sample_measurements MODIFY measurement_type VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    )
    _case_inputs(lab_db)
    with lab_db.connect() as connection:
        insert(connection, [], [(7, "µg/L", Decimal("2")), (8, "Ångström", Decimal("3"))])
    before = snapshot(lab_db)
    result = lab_db.materialize_all()
    all_checks_passed_except(result)
    rows = assert_exact(lab_db, case_insensitive=False)
    assert rows[2]["measurement_vol"] == Decimal("500")
    names = [r[0] for r in lab_db.query("SELECT column_name FROM measurement_types")]
    assert len(names) == 6 and len({n.lower() for n in names}) == 6
    assert snapshot(lab_db) == before


def test_same_sample_and_type_twice_keeps_max_and_is_named(lab_db):
    with lab_db.connect() as connection:
        insert(
            connection,
            [],
            [(2, "vol", Decimal("499")), (2, "vol", Decimal("501")), (3, "ph", None), (6, "ph", Decimal("5.1"))],
        )
    before = snapshot(lab_db)
    result = lab_db.materialize_all()
    rows = assert_exact(lab_db)
    assert rows[2]["measurement_vol"] == Decimal("501") and rows[3]["measurement_ph"] == Decimal("7")
    duplicates = evaluations(result)["no_duplicate_measurements"]
    assert offenders(duplicates) == [
        "sample_id=2 type='vol' measurements=3",
        "sample_id=3 type='ph' measurements=2",
        "sample_id=6 type='ph' measurements=2",
    ]
    assert duplicates.severity.value == "WARN"
    all_checks_passed_except(result, "no_duplicate_measurements")
    assert snapshot(lab_db) == before


def test_null_sample_type_and_value(lab_db):
    with lab_db.connect() as connection:
        insert(
            connection,
            [(21, 1, 1)],
            [(None, "vol", Decimal("1")), (5, None, Decimal("2")), (21, "ph", None), (99999, "vol", Decimal("3"))],
        )
    before = snapshot(lab_db)
    result = lab_db.materialize_all()
    rows = assert_exact(lab_db)
    assert rows[21]["measurement_ph"] is None and rows[5]["measurement_vol"] is None
    by_name = evaluations(result)
    assert offenders(by_name["measurements_have_samples"]) == [
        "sample_id=NULL type='vol' value='1.000000'",
        "sample_id='99999' type='vol' value='3.000000'",
    ]
    assert offenders(by_name["measurement_types_not_null"]) == ["sample_id='5' value='2.000000'"]
    all_checks_passed_except(result, "measurements_have_samples", "measurement_types_not_null")
    assert snapshot(lab_db) == before


def _add_types(db, count: int, first: int = 0) -> None:
    with db.connect() as connection:
        insert(connection, [], [(1 + n % 20, f"t{n:04d}", Decimal(n)) for n in range(first, first + count)])


def test_exactly_the_column_limit_builds(lab_db):
    _add_types(lab_db, MAX_MEASUREMENT_COLUMNS - 2)  # + ph and vol
    result = lab_db.materialize_all()
    all_checks_passed_except(result)
    assert len(assert_exact(lab_db)[1]) == 3 + MAX_MEASUREMENT_COLUMNS


def test_one_type_over_the_column_limit_fails_naming_limit_and_count_and_keeps_the_table(lab_db):
    lab_db.materialize_all()
    good = flat_table(lab_db)
    _add_types(lab_db, MAX_MEASUREMENT_COLUMNS - 1)
    before = snapshot(lab_db)
    result = lab_db.materialize_all(raise_on_error=False)
    assert not result.success
    limit = evaluations(result)["catalog_within_column_limit"]
    assert not limit.passed and limit.severity.value == "ERROR"
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(failures) == 1
    message = failures[0].event_specific_data.error.message
    assert str(MAX_MEASUREMENT_COLUMNS) in message and str(MAX_MEASUREMENT_COLUMNS + 1) in message
    assert experiment_measurements.key not in {e.asset_key for e in result.get_asset_materialization_events()}
    assert flat_table(lab_db) == good and helper_tables(lab_db) == []
    # Without the checks, the asset itself refuses before any DDL.
    result = materialize(
        [samples, sample_measurements, lab_source_derivations, experiment_measurements],
        resources=lab_db.resources(),
        raise_on_error=False,
    )
    assert not result.success
    error = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE").step_failure_data.error
    assert error is not None
    assert str(MAX_MEASUREMENT_COLUMNS) in error.message and str(MAX_MEASUREMENT_COLUMNS + 1) in error.message
    assert flat_table(lab_db) == good and helper_tables(lab_db) == []
    assert snapshot(lab_db) == before


def test_colliding_column_names_block_the_flat_table(lab_db):
    # Different types (not equal under the default collation) whose documented names collide:
    # same slug and the same first 8 hex digits of SHA-1.
    lab_db.materialize_all()
    good = flat_table(lab_db)
    with lab_db.connect() as connection:
        insert(connection, [], [(2, "a-B/c,d+E", Decimal("1")), (3, "A.b.c-D-E", Decimal("2"))])
    before = snapshot(lab_db)
    result = lab_db.materialize_all(raise_on_error=False)
    assert not result.success
    unique = evaluations(result)["catalog_column_names_unique"]
    assert not unique.passed and offenders(unique) == ["measurement_a_b_c_d_e__1b4fb2e1 x2: 'A.b.c-D-E', 'a-B/c,d+E'"]
    assert flat_table(lab_db) == good and snapshot(lab_db) == before


# --- the database going away, the run killed --------------------------------------------------

BIG = 10_000


def _good_table_then_more_data(db) -> tuple:
    with db.connect() as connection:
        insert(connection, *generate(2_000))
    db.materialize_all()
    good = flat_table(db)
    with db.connect() as connection:
        insert(connection, *generate(BIG, first_id=5_000, seed=99))
    return good, snapshot(db)


def _wait_for_flat_insert(db, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    with db.connect() as connection, connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT id FROM information_schema.processlist WHERE db = %s AND command = 'Query'"
                " AND info LIKE 'INSERT INTO %%experiment\\_measurements\\_\\_new%%'",
                (db.name,),
            )
            row = cursor.fetchone()
            if row:
                return row[0]
            time.sleep(0.01)
    raise AssertionError("the flat table's INSERT never showed up")


def test_connection_killed_mid_build_keeps_last_good_table(lab_db):
    good, before = _good_table_then_more_data(lab_db)
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(result=lab_db.materialize_all(raise_on_error=False)))
    runner.start()
    connection_id = _wait_for_flat_insert(lab_db)
    lab_db.execute(f"KILL CONNECTION {int(connection_id)}")
    runner.join(timeout=90)
    assert not runner.is_alive() and not outcome["result"].success
    assert flat_table(lab_db) == good
    lab_db.materialize_all()
    assert_exact(lab_db)
    assert helper_tables(lab_db) == [] and snapshot(lab_db) == before


def test_run_killed_with_sigkill_mid_build_keeps_last_good_table(lab_db, tmp_path):
    good, before = _good_table_then_more_data(lab_db)
    env = {**os.environ, "LAB_DB_URL": lab_db.url, "DAGSTER_HOME": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "lab_assets.definitions", "--select", "*"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_flat_insert(lab_db)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
    assert flat_table(lab_db) == good
    lab_db.materialize_all()
    assert_exact(lab_db)
    assert helper_tables(lab_db) == [] and snapshot(lab_db) == before


# --- empty first installs ---------------------------------------------------------------------


def test_a_first_build_without_measurements_does_not_break_the_next_builds(lab_db):
    lab_db.execute("DELETE FROM sample_measurements")
    lab_db.materialize_all()
    assert_exact(lab_db)
    lab_db.execute("INSERT INTO sample_measurements VALUES (2, 'vol', 500), (3, 'ph', 7.0)")
    lab_db.materialize_all()
    assert_exact(lab_db)


def test_a_catalog_table_left_with_wrong_column_types_is_replaced(lab_db):
    # As an earlier version left it after an empty first build: DOUBLE columns, no primary key.
    lab_db.execute(
        "CREATE TABLE measurement_types (measurement_type DOUBLE, column_name DOUBLE,"
        " sample_count BIGINT, measurement_count BIGINT)"
    )
    lab_db.materialize_all()
    assert_exact(lab_db)
    types = dict(
        lab_db.query(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = DATABASE() AND table_name = 'measurement_types'"
        )
    )
    assert types["measurement_type"] != "double" and types["column_name"] != "double"


def test_emoji_types_merged_by_the_collation_are_named_with_their_column(lab_db):
    # utf8mb4_general_ci compares every 4-byte character equal: two different types, one column,
    # named after the greatest spelling byte-wise (the documented rule).
    test_tube, fire = "\U0001f9ea", "\U0001f525"
    with lab_db.connect() as connection:
        insert(connection, [], [(13, test_tube, Decimal("1.5")), (14, fire, Decimal("2.5"))])
    result = lab_db.materialize_all()
    column = documented_column_name(max(test_tube, fire, key=lambda t: t.encode("utf-8")))
    with lab_db.connect() as connection:
        source_samples, source_measurements = read_sources(connection)
        names, actual = actual_flat_table(connection)
    columns, expected = expected_flat_table(
        source_samples, source_measurements, lambda t: column if t in (test_tube, fire) else documented_column_name(t)
    )
    assert names == ["experiment_id", "top_parent_id", "sample_id", *columns] and actual == expected
    spellings = evaluations(result)["one_spelling_per_column"]
    assert not spellings.passed and spellings.severity.value == "WARN"
    assert offenders(spellings) == [f'{column}: "{fire}", "{test_tube}"']
    all_checks_passed_except(result, "one_spelling_per_column")


# --- column names are a published interface ----------------------------------------------------


def test_a_new_spelling_of_a_type_keeps_its_published_column(lab_db):
    lab_db.execute("INSERT INTO sample_measurements VALUES (1, 'Temp', 20), (5, 'Temp', 22)")
    lab_db.materialize_all()
    published = documented_column_name("Temp")  # the first spelling seen names the column
    assert published in flat_table(lab_db)[0]

    def expected_with(column_of_temp):
        with lab_db.connect() as connection:
            source_samples, source_measurements = read_sources(connection)
        return expected_flat_table(
            source_samples,
            source_measurements,
            lambda t: column_of_temp if t.lower() == "temp" else documented_column_name(t),
        )

    # 'temp' now sorts first byte-wise and names the type, but the column keeps its name, and
    # the flat table is refreshed, not rebuilt under another column set.
    lab_db.execute("INSERT INTO sample_measurements VALUES (4, 'temp', 21)")
    result = lab_db.materialize_all()
    names, rows = flat_table(lab_db)
    columns, expected = expected_with(published)
    assert names == ["experiment_id", "top_parent_id", "sample_id", *columns] and rows == expected
    flat = result.asset_materializations_for_node("experiment_measurements")[0].metadata
    assert flat["refresh"].value == "incremental" and flat["measurement_columns_added"].value == "none"

    # Gone, then back under a third spelling: the same column again.
    lab_db.execute("DELETE FROM sample_measurements WHERE measurement_type = 'temp'")
    lab_db.materialize_all()
    assert published not in flat_table(lab_db)[0]
    lab_db.execute("INSERT INTO sample_measurements VALUES (7, 'TEMP', 19)")
    lab_db.materialize_all()
    names, rows = flat_table(lab_db)
    columns, expected = expected_with(published)
    assert names == ["experiment_id", "top_parent_id", "sample_id", *columns] and rows == expected


# --- NO PAD collations (MySQL 8's default utf8mb4_0900_ai_ci): trailing spaces make another type -

NO_PAD_CI = "utf8mb4_general_nopad_ci"  # MariaDB's NO PAD case-insensitive collation


def _no_pad_source(db) -> None:
    db.execute(
        f"ALTER TABLE sample_measurements MODIFY measurement_type VARCHAR(10) CHARACTER SET utf8mb4 COLLATE {NO_PAD_CI}"
    )


def test_types_differing_by_a_trailing_space_are_two_columns_under_a_no_pad_collation(lab_db):
    # Equal counts: the catalog's outer grouping once merged the two into one row (utf8mb4_bin
    # ignores trailing spaces), leaving 'Ab ' without a column and its value out of the table.
    _no_pad_source(lab_db)
    lab_db.execute("INSERT INTO sample_measurements VALUES (4, 'Ab', 1.5), (5, 'Ab ', 2.5)")
    result = lab_db.materialize_all()
    all_checks_passed_except(result)
    rows = assert_exact(lab_db, case_insensitive=True)  # Python's lower(): trailing spaces count
    assert rows[5][documented_column_name("Ab ")] == Decimal("2.5")


def test_a_type_differing_from_a_recorded_one_by_a_trailing_space_keeps_its_published_column(lab_db):
    # 'QQ ' is recorded beside 'QQ' (a PAD SPACE key once made them one and dropped the name of
    # 'QQ '), so when 'qq ' becomes the type's spelling the column keeps the name 'QQ ' gave it.
    _no_pad_source(lab_db)
    lab_db.execute("INSERT INTO sample_measurements VALUES (4, 'QQ', 1), (5, 'QQ ', 2), (6, 'QQ ', 3)")
    lab_db.materialize_all()
    recorded = lab_db.query("SELECT measurement_type FROM lab_measurement_columns WHERE measurement_type LIKE 'QQ%%'")
    assert sorted(recorded) == [("QQ",), ("QQ ",)]
    published = documented_column_name("QQ ")
    lab_db.execute("INSERT INTO sample_measurements VALUES (7, 'qq ', 4)")
    lab_db.materialize_all()
    with lab_db.connect() as connection:
        source_samples, source_measurements = read_sources(connection)
    columns, expected = expected_flat_table(
        source_samples,
        source_measurements,
        lambda t: published if t.lower() == "qq " else documented_column_name(t),
    )
    names, rows = flat_table(lab_db)
    assert published in names and names == ["experiment_id", "top_parent_id", "sample_id", *columns]
    assert rows == expected


def test_a_recorded_column_names_table_of_the_earlier_collation_is_converted(lab_db):
    lab_db.materialize_all()
    lab_db.execute(  # as made before 2026-11-30: trailing spaces ignored in its key
        "ALTER TABLE lab_measurement_columns"
        " MODIFY measurement_type VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"
    )
    lab_db.materialize_all()
    assert lab_db.query(
        "SELECT collation_name FROM information_schema.columns WHERE table_schema = DATABASE()"
        " AND table_name = 'lab_measurement_columns' AND column_name = 'measurement_type'"
    ) == [(no_pad_binary_collation(is_mariadb=True),)]
