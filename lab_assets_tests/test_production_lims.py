"""Pointed at a production lab system: a SELECT-only account on the sources with lab_assets' tables
in a database of their own, missing grants named, no waiting on a lab transaction's locks, one
build per output database across Dagster instances, servers that require primary keys and drop
idle connections, and passwords that never show (issue 13). Real MariaDB; the server settings on a
private server the tests start (extra_server.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from dagster import DagsterInstance, SensorResult, build_sensor_context, materialize

import lab_assets.lineage.step as lineage_module
from lab_assets.defs.assets import LAB_ASSETS
from lab_assets.defs.sensors import lab_source_change_sensor
from lab_assets.io_manager import MySQLIOManager
from lab_assets.local_lab import source_schema_statements
from lab_assets.mysql.grants import OUTPUT_PRIVILEGES
from lab_assets.mysql.resource import MySQLResource
from lab_assets.state.build_lock import build_lock_name
from lab_assets_tests.databases import (
    LAB_NAMES,
    RENAMED_SCHEMA,
    SERVER_URL,
    SESSION_PREFIX,
    create_lab_database,
    server_connection,
)
from lab_assets_tests.extra_server import extra_server
from lab_assets_tests.lab_data import assert_flat_table_is_exact, generate, insert

ROOT = Path(__file__).resolve().parent.parent
# A password with every character that must be URL-encoded, in pieces long enough to spot.
PASSWORD = "Kq7Vx@Pz4Lm/Tt8Nw:Hh2Jd%Rr5Gs"
PASSWORD_PIECES = ("Kq7Vx", "Pz4Lm", "Tt8Nw", "Hh2Jd", "Rr5Gs")


def _resources(url: str, output_database: str | None = None, **settings) -> dict[str, object]:
    mysql = MySQLResource(url=url, output_database=output_database, **settings)
    return {"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql)}


def _materialize(resources, raise_on_error=True, tags=None):
    return materialize(LAB_ASSETS, resources=resources, raise_on_error=raise_on_error, tags=tags)


def _tables(connection, database: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (database,))
        return {row[0] for row in cursor.fetchall()}


def _account_url(user: str, database: str, password: str = PASSWORD) -> str:
    host, port = SERVER_URL.host or "127.0.0.1", SERVER_URL.port or 3306
    return f"mysql+pymysql://{user}:{urllib.parse.quote(password, safe='')}@{host}:{port}/{database}"


@pytest.fixture
def lab_account(lab_db):
    """(lab database, output database, make_account): accounts are dropped afterwards."""
    output = f"{lab_db.name}_out"
    users: list[str] = []

    def make_account(source_tables=("samples", "sample_measurements"), output_privileges=OUTPUT_PRIVILEGES) -> str:
        user = f"{SESSION_PREFIX[-6:]}u{len(users)}{lab_db.name.rsplit('_', 1)[-1]}"
        users.append(user)
        with server_connection() as connection, connection.cursor() as cursor:
            cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, PASSWORD))
            for table in source_tables:
                cursor.execute(f"GRANT SELECT ON `{lab_db.name}`.`{table}` TO %s@'%%'", (user,))
            cursor.execute(f"GRANT {', '.join(output_privileges)} ON `{output}`.* TO %s@'%%'", (user,))
        return user

    with server_connection() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{output}`")  # made by the DBA, as README says
    with lab_db.connect() as connection:
        insert(connection, *generate(2_000))
    yield lab_db, output, make_account
    with server_connection() as connection, connection.cursor() as cursor:
        for user in users:
            cursor.execute("DROP USER IF EXISTS %s@'%%'", (user,))


def test_select_only_account_builds_and_refreshes_into_its_own_database(lab_account):
    lab_db, output, make_account = lab_account
    url = _account_url(make_account(), lab_db.name)
    resources = _resources(url, output)
    result = _materialize(resources)
    assert all(e.passed for e in result.get_asset_check_evaluations())
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection, output_database=output)
        assert _tables(connection, lab_db.name) == {"samples", "sample_measurements"}, "nothing in the source database"
        assert "experiment_measurements" in _tables(connection, output)

    # The sensor, on the same account, compares the sources (update times and sums read in the
    # source database) with what the tables in the output database were built from.
    mysql, instance = resources["mysql"], DagsterInstance.ephemeral()
    first = lab_source_change_sensor(build_sensor_context(instance=instance, resources={"mysql": mysql}))
    assert isinstance(first, SensorResult) and first.skip_reason is not None, first
    assert first.run_requests == [] and "the tables match the sources" in (first.skip_reason.skip_message or "")
    lab_db.execute(
        "UPDATE sample_measurements SET value = value + 1 WHERE sample_id IN (3, 700)",
        "INSERT INTO samples (id, parent_id, experiment_id) VALUES (5000, 3, 2)",
        "INSERT INTO sample_measurements VALUES (5000, 'ph', 4.5)",
    )
    second = lab_source_change_sensor(
        build_sensor_context(cursor=first.cursor, instance=instance, resources={"mysql": mysql})
    )
    assert isinstance(second, SensorResult) and second.run_requests is not None, second
    assert len(second.run_requests) == 1
    result = _materialize(resources)
    flat = result.asset_materializations_for_node("experiment_measurements")[0].metadata
    assert flat["refresh"].value == "incremental"
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection, output_database=output)
        assert _tables(connection, lab_db.name) == {"samples", "sample_measurements"}


def test_a_missing_grant_is_named_before_anything_is_written(lab_account):
    lab_db, output, make_account = lab_account
    user = make_account(source_tables=("samples",), output_privileges=("SELECT", "INSERT", "UPDATE", "DELETE"))
    result = _materialize(_resources(_account_url(user, lab_db.name), output), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.step_failure_data.error)
    for missing in (
        f"SELECT on {lab_db.name}.sample_measurements",
        f"CREATE on {output}.*",
        f"DROP on {output}.*",
        f"ALTER on {output}.*",
        f"INDEX on {output}.*",
    ):
        assert missing in message, (missing, message)
    assert f"SELECT on {lab_db.name}.samples" not in message
    assert "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON" in message
    assert "1142" not in message
    with lab_db.connect() as connection:
        assert _tables(connection, output) == set() and _tables(connection, lab_db.name) == {
            "samples",
            "sample_measurements",
        }


# README's production GRANT on the output database, written out here so that a privilege dropped
# from the code's list (OUTPUT_PRIVILEGES) is still tested.
DOCUMENTED_OUTPUT_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX")
SOURCE_TABLES = ("samples", "sample_measurements")


@pytest.mark.parametrize("revoked", [f"SELECT on {t}" for t in SOURCE_TABLES] + list(DOCUMENTED_OUTPUT_PRIVILEGES))
def test_each_required_privilege_missing_alone_stops_the_step_naming_it(lab_account, revoked):
    lab_db, output, make_account = lab_account
    user = make_account(
        source_tables=[t for t in SOURCE_TABLES if revoked != f"SELECT on {t}"],
        output_privileges=[p for p in DOCUMENTED_OUTPUT_PRIVILEGES if p != revoked],
    )
    result = _materialize(_resources(_account_url(user, lab_db.name), output), raise_on_error=False)
    message = _step_failure(result)
    table = revoked.removeprefix("SELECT on ")
    named = f"SELECT on {lab_db.name}.{table}" if table in SOURCE_TABLES else f"{revoked} on {output}.*"
    assert not result.success and f"lacks privileges lab_assets needs: {named}. A DBA can add them with:" in message
    with lab_db.connect() as connection:
        assert _tables(connection, output) == set(), "nothing written"


def test_a_select_only_account_on_a_lims_with_its_own_names(lab_account):
    """SELECT granted on the lab's tables by their own names is what the grant check, the drift
    check (information_schema shows the account only those) and the sensor look for."""
    lab_db, output, make_account = lab_account
    lab_db.execute(*RENAMED_SCHEMA)
    only_samples = make_account(source_tables=("lims_sample",))
    result = _materialize(_resources(_account_url(only_samples, lab_db.name), output, **LAB_NAMES), False)
    message = _step_failure(result)
    assert f"SELECT on {lab_db.name}.lims_result" in message and f"{lab_db.name}`.`lims_result` TO" in message
    assert f"SELECT on {lab_db.name}.lims_sample" not in message and "sample_measurements" not in message
    resources = _resources(_account_url(make_account(("lims_sample", "lims_result")), lab_db.name), output, **LAB_NAMES)
    result = _materialize(resources)
    assert all(e.passed for e in result.get_asset_check_evaluations())
    instance = DagsterInstance.ephemeral()
    first = lab_source_change_sensor(build_sensor_context(instance=instance, resources={"mysql": resources["mysql"]}))
    assert isinstance(first, SensorResult) and first.skip_reason is not None, first
    assert first.run_requests == [] and "the tables match the sources" in (first.skip_reason.skip_message or "")
    with lab_db.connect() as connection:
        assert _tables(connection, lab_db.name) == {"lims_sample", "lims_result"}, "nothing in the lab's database"


def test_the_grants_the_message_gives_are_the_ones_that_fix_it(lab_account):
    # The DBA runs the GRANTs the message names (the database's `_` escaped, so the grant covers
    # that database only), and the next run builds.
    lab_db, output, make_account = lab_account
    user = make_account(source_tables=("samples",), output_privileges=("SELECT",))
    resources = _resources(_account_url(user, lab_db.name), output)
    message = _step_failure(_materialize(resources, raise_on_error=False))
    grants = re.findall(r"GRANT [^;]+;", message)
    assert any(f"`{output.replace('_', chr(92) + '_')}`.*" in grant for grant in grants), grants
    with server_connection() as connection, connection.cursor() as cursor:
        for grant in grants:
            cursor.execute(grant)
    _materialize(resources)
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection, output_database=output)


def test_missing_output_grants_point_at_the_output_database_setting(lab_account):
    lab_db, output, make_account = lab_account
    user = make_account(output_privileges=("SELECT",))
    unset = _step_failure(_materialize(_resources(_account_url(user, lab_db.name)), raise_on_error=False))
    assert "Or set LAB_OUTPUT_DATABASE to a database of lab_assets' own" in unset
    typo = f"{output}x"
    mistyped = _step_failure(_materialize(_resources(_account_url(user, lab_db.name), typo), raise_on_error=False))
    assert f"Database {typo} does not exist: create it" in mistyped and "correct LAB_OUTPUT_DATABASE" in mistyped


def test_a_second_build_waits_for_the_first_then_stops_naming_it(lab_db):
    lab_db.materialize_all()
    with lab_db.connect() as holder, holder.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK(%s, 0)", (build_lock_name(lab_db.name),))
        assert cursor.fetchone() == (1,)
        cursor.execute("SELECT holder FROM lab_build_lock")
        (recorded,) = cursor.fetchone()
        lab_db.execute("UPDATE sample_measurements SET value = value + 1 WHERE sample_id = 3")
        before = lab_db.query("SELECT * FROM experiment_measurements ORDER BY sample_id")
        result = _materialize(_resources(lab_db.url, build_lock_timeout_seconds=1), raise_on_error=False)
    assert not result.success
    message = str(next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE").step_failure_data.error)
    assert f"another lab_assets build of database {lab_db.name} is running" in message
    assert recorded in message and "since" in message
    assert lab_db.query("SELECT * FROM experiment_measurements ORDER BY sample_id") == before, "nothing written"
    lab_db.materialize_all()  # the lock was released with the holder's session: the next run works
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection)


def _cli(url: str, home: str) -> subprocess.Popen:
    env = {**os.environ, "LAB_DB_URL": url, "DAGSTER_HOME": home}
    env.pop("LAB_OUTPUT_DATABASE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "lab_assets.definitions", "--select", "*"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_instances_building_one_database_at_once_both_end_exact(lab_db):
    with lab_db.connect() as connection:
        insert(connection, *generate(20_000))
    for round_number in range(2):  # the first build, then a refresh after a change
        with tempfile.TemporaryDirectory() as first_home, tempfile.TemporaryDirectory() as second_home:
            runs = [_cli(lab_db.url, home) for home in (first_home, second_home)]
            outputs = [run.communicate(timeout=240)[0] for run in runs]
        for run, output in zip(runs, outputs, strict=True):
            assert run.returncode == 0, output[-3000:]
            assert "doesn't exist" not in output
        with lab_db.connect() as connection:
            assert_flat_table_is_exact(connection)
            assert not {t for t in _tables(connection, lab_db.name) if "__" in t}, "no work or staging table left"
        if round_number == 0:
            lab_db.execute(
                "UPDATE sample_measurements SET value = value * 2 WHERE sample_id % 97 = 0",
                "DELETE FROM samples WHERE id = 9000",
            )


def test_an_unencoded_password_never_shows(lab_db, tmp_path):
    url = f"mysql+pymysql://someone:{PASSWORD}@127.0.0.1:3306/{lab_db.name}"
    result = _materialize(_resources(url), raise_on_error=False)
    assert not result.success
    errors = [getattr(e.event_specific_data, "error", None) for e in result.all_events]
    shown = "\n".join([e.message or "" for e in result.all_events] + [x.to_string() for x in errors if x])
    assert "URL-encode" in shown
    with tempfile.TemporaryDirectory() as home:
        run = _cli(url, home)
        output = run.communicate(timeout=120)[0]
    assert run.returncode != 0 and "URL-encode" in output
    for piece in PASSWORD_PIECES:
        assert piece not in shown and piece not in output, piece


# --- server settings a DBA may have chosen, on a private server --------------------------------

STRICT_SERVER = {
    "innodb_force_primary_key": "ON",  # MariaDB's sql_require_primary_key
    "wait_timeout": "2",  # idle connections dropped after 2 s
    "innodb_lock_wait_timeout": "2",  # a statement waiting on a lock fails after 2 s
}


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    with extra_server(tmp_path_factory.mktemp("strict"), STRICT_SERVER) as server:
        yield server


def _lab_database_on(server, name: str, samples: int = 2_000) -> str:
    """A lab database on ``server``: its sample_measurements has no primary key, as the lab
    system created it before the DBA turned innodb_force_primary_key on."""
    with server.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SET GLOBAL innodb_force_primary_key = OFF")
        cursor.execute(f"CREATE DATABASE `{name}`")
        cursor.execute(f"USE `{name}`")
        for statement in source_schema_statements():
            cursor.execute(statement)
        insert(connection, *generate(samples))
        cursor.execute("SET GLOBAL innodb_force_primary_key = ON")
    return f"{server.url}/{name}"


@pytest.mark.integration
def test_strict_server_build_refresh_with_an_open_lab_transaction_and_a_slow_step(strict_server, monkeypatch):
    url = _lab_database_on(strict_server, "lab_strict")
    resources = _resources(url)
    _materialize(resources)  # every table has a primary key (innodb_force_primary_key=ON)

    # A lab transaction left open, holding row locks on measurements the refresh must read.
    lab = strict_server.connect("lab_strict")
    with lab.cursor() as cursor:
        cursor.execute("SET SESSION wait_timeout = 600")  # the lab's session outlives the build
        cursor.execute("START TRANSACTION")
        cursor.execute("UPDATE sample_measurements SET value = value + 100 WHERE sample_id BETWEEN 1 AND 60")
    # Committed changes the refresh must pick up.
    with strict_server.connect("lab_strict") as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE sample_measurements SET value = value + 1 WHERE sample_id BETWEEN 500 AND 520")

    # One step's computation outlasts wait_timeout while its lock connection sits idle.
    original = lineage_module.compute_sample_lineage

    def slow_lineage(log, mysql, full_refresh, feed_ids_table=None):
        threading.Event().wait(3)
        return original(log, mysql, full_refresh, feed_ids_table)

    monkeypatch.setattr("lab_assets.derivations.step.compute_sample_lineage", slow_lineage)
    try:
        result = _materialize(resources, raise_on_error=False)
        assert result.success, [
            str(getattr(e.event_specific_data, "error", None)) for e in result.all_events if e.is_failure
        ]
        with strict_server.connect("lab_strict") as connection:
            # The committed state: the open transaction's rows are not visible, so not in the table.
            assert_flat_table_is_exact(connection)
    finally:
        lab.rollback()
        lab.close()


@pytest.mark.integration
def test_strict_server_lost_connection_names_the_setting(strict_server, monkeypatch):
    url = _lab_database_on(strict_server, "lab_lost", samples=200)

    def killed(log, mysql, full_refresh, feed_ids_table=None):
        with mysql.connect() as connection:
            (connection_id,) = connection.exec_driver_sql("SELECT CONNECTION_ID()").one()
            with strict_server.connect() as admin, admin.cursor() as cursor:
                cursor.execute(f"KILL {int(connection_id)}")
            connection.exec_driver_sql("SELECT 1")
        raise AssertionError("the killed connection answered")

    monkeypatch.setattr("lab_assets.derivations.step.compute_sample_lineage", killed)
    result = _materialize(_resources(url), raise_on_error=False)
    assert not result.success
    message = str(next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE").step_failure_data.error)
    assert "wait_timeout" in message or "max_execution_time" in message, message


def test_a_password_with_at_then_question_mark_never_shows(lab_db):
    url = f"mysql+pymysql://someone:Qw7Ee@Rt8Yy?Ui9Oo@127.0.0.1:3306/{lab_db.name}"
    result = _materialize(_resources(url), raise_on_error=False)
    errors = [getattr(e.event_specific_data, "error", None) for e in result.all_events]
    shown = "\n".join([e.message or "" for e in result.all_events] + [x.to_string() for x in errors if x])
    assert not result.success and "URL-encode" in shown
    for piece in ("Qw7Ee", "Rt8Yy", "Ui9Oo"):
        assert piece not in shown, piece


def test_an_output_database_name_with_percent_and_backtick(lab_db):
    output = f"{lab_db.name}_o%s`x"
    _materialize(_resources(lab_db.url, output))
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection, output_database=output.replace("`", "``"))
        assert "experiment_measurements" in _tables(connection, output)


def _step_failure(result) -> str:
    return str(next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE").step_failure_data.error)


def test_an_io_manager_schema_other_than_the_output_database_is_refused(lab_db):
    mysql = MySQLResource(url=lab_db.url)
    resources = {"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql, schema=f"{lab_db.name}_io")}
    result = _materialize(resources, raise_on_error=False)
    assert not result.success and "LAB_OUTPUT_DATABASE" in _step_failure(result)
    with lab_db.connect() as connection:
        assert _tables(connection, lab_db.name) == {"samples", "sample_measurements"}, "nothing written"


def test_a_build_from_another_source_database_into_the_same_output_is_refused(lab_db):
    output = f"{lab_db.name}_out"
    _materialize(_resources(lab_db.url, output))
    other = create_lab_database()
    result = _materialize(_resources(other.url, output), raise_on_error=False)
    message = _step_failure(result)
    assert not result.success and f"built from source database {lab_db.name}" in message
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection, output_database=output)  # the first source's, untouched


def test_a_lost_build_lock_stops_the_step_before_it_writes(lab_db, monkeypatch):
    original = lineage_module.compute_sample_lineage

    def lock_lost_meanwhile(log, mysql, full_refresh, feed_ids_table=None):
        with server_connection() as admin, admin.cursor() as cursor:
            cursor.execute("SELECT IS_USED_LOCK(%s)", (build_lock_name(lab_db.name),))
            row = cursor.fetchone()
            assert row is not None  # IS_USED_LOCK answers one row, NULL when the lock is free
            (holder,) = row
            cursor.execute(f"KILL {int(holder)}")  # as a DBA, a proxy or a failover would
        return original(log, mysql, full_refresh, feed_ids_table)

    monkeypatch.setattr("lab_assets.derivations.step.compute_sample_lineage", lock_lost_meanwhile)
    result = _materialize(_resources(lab_db.url), raise_on_error=False)
    assert not result.success and "build lock" in _step_failure(result) and "was lost" in _step_failure(result)
    with lab_db.connect() as connection:
        assert not {"sample_lineage", "experiment_measurements"} & _tables(connection, lab_db.name)


def test_a_swap_blocked_by_a_readers_open_transaction_fails_in_bounded_time_and_keeps_the_table(lab_db, monkeypatch):
    # A scientist's session opened a transaction, read the flat table and went to lunch: its
    # metadata lock blocks RENAME TABLE, and while the rename waits every new query queues behind it.
    import lab_assets.io_manager.swap as swap_module

    lab_db.materialize_all()
    monkeypatch.setattr(swap_module, "SWAP_LOCK_WAIT_SECONDS", 1)
    monkeypatch.setattr(swap_module, "SWAP_ATTEMPTS", 2)
    lab_db.execute("INSERT INTO sample_measurements VALUES (4, 'temp', 20)")  # the next build is whole
    reader = lab_db.connect()
    try:
        with reader.cursor() as cursor:
            cursor.execute("START TRANSACTION")
            cursor.execute("SELECT COUNT(*) FROM experiment_measurements")
            started = time.monotonic()
            result = lab_db.materialize_all(raise_on_error=False)
            assert time.monotonic() - started < 60
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert "open transactions held it" in str(failure.step_failure_data.error)
        names = [row[0] for row in lab_db.query("SHOW TABLES LIKE 'experiment_measurements%%'")]
        assert names == ["experiment_measurements"], "old table kept, the built one dropped"
    finally:
        reader.rollback()
        reader.close()
    lab_db.materialize_all()
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection)
