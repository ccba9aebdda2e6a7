"""A busy production lab: other sessions hold open transactions on the source tables, the DBA gave
the server defaults meant for interactive sessions, and accounts have connection limits. Every
connection lab_assets opens (the step's, its threads', the parallel fill's workers, the sensor's)
carries lab_assets' session settings; builds, refreshes and sensor ticks never wait on a lab
transaction's locks and end exact; side-by-side work stays within the account's connection limit.

The server defaults are set on a private server (extra_server.py); the connection limits on
accounts of the shared test server, dropped afterwards."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time

import pymysql
import pytest
from dagster import DagsterInstance, ExecuteInProcessResult, SkipReason, build_sensor_context, materialize
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from lab_assets.defs.assets import LAB_ASSETS
from lab_assets.defs.sensors import lab_source_change_sensor
from lab_assets.io_manager import MySQLIOManager
from lab_assets.local_lab import source_schema_statements
from lab_assets.mysql.errors import explained
from lab_assets.mysql.grants import OUTPUT_PRIVILEGES
from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.sessions import engine_for
from lab_assets_tests.databases import SERVER_URL, SESSION_PREFIX, create_lab_database, server_connection
from lab_assets_tests.extra_server import HOST, extra_server
from lab_assets_tests.lab_data import assert_flat_table_is_exact, generate, insert
from lab_assets_tests.runs import requested_runs

pytestmark = pytest.mark.integration

# Defaults a DBA may give a server for interactive sessions: each breaks a session of lab_assets
# that does not set its own (SERIALIZABLE share-locks every row a statement reads, so it waits on
# a lab transaction; the others refuse or cut short lab_assets' statements, or end its session).
HOSTILE_GLOBALS = (
    "SET GLOBAL tx_isolation = 'SERIALIZABLE'",
    "SET GLOBAL tx_read_only = 1",
    "SET GLOBAL sql_safe_updates = 1",
    "SET GLOBAL sql_select_limit = 3",
    "SET GLOBAL max_join_size = 1000",
    "SET GLOBAL completion_type = 'RELEASE'",
    "SET GLOBAL autocommit = 0",
    "SET GLOBAL max_statement_time = 20",
    "SET GLOBAL wait_timeout = 10",
)
# What the test's own sessions (the lab's writers, the independent recomputation) set instead.
PLAIN_SESSION = (
    "SET SESSION tx_isolation = 'READ-COMMITTED', tx_read_only = 0, sql_safe_updates = 0,"
    " sql_select_limit = 18446744073709551615, sql_big_selects = 1, completion_type = 'NO_CHAIN',"
    " autocommit = 1, max_statement_time = 0, wait_timeout = 28800"
)
# What every lab_assets session reads back (lab_assets.mysql.resource.session_settings).
LAB_ASSETS_SESSION = "SELECT @@tx_isolation, @@tx_read_only, @@sql_safe_updates, @@sql_select_limit, @@sql_big_selects,"
LAB_ASSETS_SESSION += " @@completion_type, @@autocommit, @@max_statement_time, @@wait_timeout >= 28800"
EXPECTED_SESSION = ("READ-COMMITTED", 0, 0, 18446744073709551615, 1, "NO_CHAIN", 1, 0.0, 1)


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """A private server whose every new session starts SERIALIZABLE, read-only, with safe updates,
    a 3-row select limit, a join size limit, RELEASE at COMMIT, no autocommit, a statement time
    limit and a 10 s wait_timeout; a lock wait fails after 2 s."""
    options = {"innodb_lock_wait_timeout": "2", "innodb_buffer_pool_size": "256M"}
    with extra_server(tmp_path_factory.mktemp("hostile"), options) as server:
        with server.connect() as connection, connection.cursor() as cursor:
            for statement in HOSTILE_GLOBALS:
                cursor.execute(statement)
        yield server


def _plain(server, database: str | None = None) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=HOST, port=server.port, user="root", database=database, autocommit=True, init_command=PLAIN_SESSION
    )


def _lab_database(server, name: str, samples: int, far_id: int | None = None) -> str:
    """A lab database on ``server`` with ``samples`` generated samples (and one sample of id
    ``far_id``, so that the sample ids span several chunks of a full refresh's parallel fill)."""
    with _plain(server) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
        cursor.execute(f"USE `{name}`")
        for statement in source_schema_statements():
            cursor.execute(statement)
        insert(connection, *generate(samples))
        if far_id is not None:
            cursor.execute("INSERT INTO samples (id, parent_id, experiment_id) VALUES (%s, 3, 1)", (far_id,))
            cursor.execute("INSERT INTO sample_measurements VALUES (%s, 'vol', 1.5)", (far_id,))
    return f"{server.url}/{name}"


def _resources(url: str) -> dict[str, object]:
    mysql = MySQLResource(url=url)
    return {"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql)}


def _failures(result: ExecuteInProcessResult) -> list[str]:
    return [str(e.step_failure_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE"]


class _Sessions:
    """Reads the settings back from every connection the resource's engine opens, right after
    lab_assets' own settings (listeners run in the order registered), with the thread that opened it."""

    def __init__(self, mysql: MySQLResource):
        self.seen: list[tuple[str, tuple]] = []
        event.listen(engine_for(mysql.url, mysql.temp_table_memory_mb), "connect", self._read_back)

    def _read_back(self, dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(LAB_ASSETS_SESSION)
            self.seen.append((threading.current_thread().name, tuple(cursor.fetchone())))


def test_every_kind_of_connection_carries_the_session_settings(hostile_server):
    url = _lab_database(hostile_server, "lab_sessions", samples=3_000, far_id=120_000)
    resources = _resources(url)
    mysql = resources["mysql"]
    assert isinstance(mysql, MySQLResource)
    sessions = _Sessions(mysql)
    build = materialize(LAB_ASSETS, resources=resources, raise_on_error=False)
    assert build.success, _failures(build)
    with _plain(hostile_server, "lab_sessions") as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE sample_measurements SET value = value + 1 WHERE sample_id % 7 = 0")
        cursor.execute("UPDATE samples SET parent_id = 5 WHERE id = 40")
    instance = DagsterInstance.ephemeral()
    tick = lab_source_change_sensor(build_sensor_context(instance=instance, resources={"mysql": resources["mysql"]}))
    assert len(requested_runs(tick)) == 1
    refresh = materialize(LAB_ASSETS, resources=resources, raise_on_error=False)
    assert refresh.success, _failures(refresh)
    with _plain(hostile_server, "lab_sessions") as connection:
        assert_flat_table_is_exact(connection)

    kinds = {name.split("_")[0].split(":")[0] for name, _ in sessions.seen}
    # The step's own thread, the derivations' and the refresh's threads, the parallel fill's workers.
    assert {"MainThread", "lab", "bulk-insert"} <= kinds, sessions.seen
    assert {settings for _, settings in sessions.seen} == {EXPECTED_SESSION}, sessions.seen


def test_a_lab_transaction_holding_locks_never_holds_up_a_build_refresh_or_sensor(hostile_server):
    url = _lab_database(hostile_server, "lab_busy", samples=150_000)
    resources = _resources(url)
    mysql = resources["mysql"]
    # The lab's open transaction: row locks on both source tables, across the chunks of the fill.
    held = (25, 60_000, 140_000)
    holder = _plain(hostile_server, "lab_busy")
    stop, writes, writer_errors = threading.Event(), [], []

    def lab_writer() -> None:
        """The lab's own committed UPDATEs meanwhile, each allowed 1 s of lock wait."""
        rng = random.Random(7)
        with _plain(hostile_server, "lab_busy") as connection, connection.cursor() as cursor:
            cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
            while not stop.is_set():
                sample = rng.randrange(1000, 150_000)
                if sample in held:
                    continue
                try:
                    cursor.execute("UPDATE sample_measurements SET value = value + 1 WHERE sample_id = %s", (sample,))
                    writes.append(sample)
                except pymysql.MySQLError as error:
                    writer_errors.append(error)
                time.sleep(0.02)

    try:
        with holder.cursor() as cursor:
            cursor.execute("START TRANSACTION")
            cursor.execute(f"UPDATE samples SET experiment_id = experiment_id + 1000 WHERE id IN {held}")
            cursor.execute(f"UPDATE sample_measurements SET value = value + 1000 WHERE sample_id IN {held}")
        writer = threading.Thread(target=lab_writer)
        writer.start()
        try:
            build = materialize(LAB_ASSETS, resources=resources, raise_on_error=False)
            assert build.success, _failures(build)
            with _plain(hostile_server, "lab_busy") as connection, connection.cursor() as cursor:
                cursor.execute("UPDATE sample_measurements SET value = value * 2 WHERE sample_id % 101 = 0")
                cursor.execute("DELETE FROM samples WHERE id = 90000")
            tick = lab_source_change_sensor(
                build_sensor_context(instance=DagsterInstance.ephemeral(), resources={"mysql": mysql})
            )
            assert len(requested_runs(tick)) == 1
            refresh = materialize(LAB_ASSETS, resources=resources, raise_on_error=False)
            assert refresh.success, _failures(refresh)
            flat = refresh.asset_materializations_for_node("experiment_measurements")[0].metadata
            assert flat["refresh"].value == "incremental"
        finally:
            stop.set()
            writer.join()
        # The lab's writes during the refresh are the next refresh's (the sensor would start it).
        last = materialize(LAB_ASSETS, resources=resources, raise_on_error=False)
        assert last.success, _failures(last)
        with _plain(hostile_server, "lab_busy") as connection:
            assert_flat_table_is_exact(connection)  # the committed state: the open transaction's rows unseen
    finally:
        holder.rollback()
        holder.close()
    assert writes and not writer_errors, writer_errors[:3]


# --- connection limits, on accounts of the shared server ------------------------------------------


@pytest.fixture
def limited_account():
    """make(limit) -> (lab database, URL of an account with MAX_USER_CONNECTIONS = limit): SELECT on
    the lab tables, README's privileges on its own output database; dropped afterwards."""
    users: list[str] = []

    def make(limit: int):
        lab_db = create_lab_database()
        with lab_db.connect() as connection:
            insert(connection, *generate(2_000))
            lab_db.execute("INSERT INTO samples (id, parent_id, experiment_id) VALUES (120000, 3, 1)")
        user = f"{SESSION_PREFIX[-6:]}c{limit}{lab_db.name.rsplit('_', 1)[-1]}"
        users.append(user)
        with server_connection() as connection, connection.cursor() as cursor:
            cursor.execute(
                "CREATE USER %s@'%%' IDENTIFIED BY 'pw' WITH MAX_USER_CONNECTIONS %s", (user, limit)
            )  # 0: none
            for table in ("samples", "sample_measurements"):
                cursor.execute(f"GRANT SELECT ON `{lab_db.name}`.`{table}` TO %s@'%%'", (user,))
            cursor.execute(f"GRANT {', '.join(OUTPUT_PRIVILEGES)} ON `{lab_db.name}_out`.* TO %s@'%%'", (user,))
            cursor.execute(f"CREATE DATABASE `{lab_db.name}_out`")
        host, port = SERVER_URL.host or "127.0.0.1", SERVER_URL.port or 3306
        return lab_db, f"mysql+pymysql://{user}:pw@{host}:{port}/{lab_db.name}"

    yield make
    with server_connection() as connection, connection.cursor() as cursor:
        for user in users:
            cursor.execute("DROP USER IF EXISTS %s@'%%'", (user,))


@pytest.mark.parametrize("limit", [2, 3])
def test_side_by_side_work_stays_within_the_accounts_connection_limit(limited_account, limit):
    lab_db, url = limited_account(limit)
    mysql = MySQLResource(url=url, output_database=f"{lab_db.name}_out")
    resources = {"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql)}
    build = materialize(LAB_ASSETS, resources=resources, raise_on_error=False)
    assert build.success, _failures(build)
    lab_db.execute(
        "UPDATE sample_measurements SET value = value + 1 WHERE sample_id % 13 = 0",
        "INSERT INTO samples (id, parent_id, experiment_id) VALUES (130000, 120000, 4)",
    )
    tick = lab_source_change_sensor(
        build_sensor_context(instance=DagsterInstance.ephemeral(), resources={"mysql": mysql})
    )
    assert len(requested_runs(tick)) == 1
    refresh = materialize(LAB_ASSETS, resources=resources, raise_on_error=False)
    assert refresh.success, _failures(refresh)
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection, output_database=f"{lab_db.name}_out")


def test_a_lock_wait_names_read_committed_and_the_sessions_isolation(lab_db):
    lab_db.materialize_all()
    holder = lab_db.connect()  # another writer of the output database, its transaction open
    try:
        with holder.cursor() as cursor:
            cursor.execute("START TRANSACTION")
            cursor.execute("UPDATE experiment_measurements SET experiment_id = 7 WHERE sample_id = 1")
        with MySQLResource(url=lab_db.url).connect() as connection:
            connection.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")
            with pytest.raises(OperationalError) as raised:
                connection.exec_driver_sql("UPDATE experiment_measurements SET experiment_id = 8 WHERE sample_id = 1")
            message = str(explained(raised.value, connection))
    finally:
        holder.rollback()
        holder.close()
    assert message.startswith("MySQL error 1205: a lock wait timed out (innodb_lock_wait_timeout)"), message
    assert "one of lab_assets' own tables (another writer of the output database)" in message
    assert "a wait on samples or sample_measurements means a session without READ COMMITTED" in message
    assert "(this session reads at READ-COMMITTED)" in message


def test_a_process_ends_its_pooled_connections_without_an_aborted_client(hostile_server):
    # A socket dropped at exit is an aborted client to the server and, at MariaDB's default
    # log_warnings, a warning line in its error log: one per refresh run. The pools are disposed at
    # exit, each connection ending with COM_QUIT.
    url = _lab_database(hostile_server, "lab_exit", samples=10)

    def aborted_clients() -> int:
        with _plain(hostile_server) as connection, connection.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Aborted_clients'")
            row = cursor.fetchone()
            assert row is not None
            return int(row[1])

    before = aborted_clients()
    probe = f"from lab_assets.mysql.resource import MySQLResource; MySQLResource(url={url!r}).fetch_one('SELECT 1')"
    subprocess.run([sys.executable, "-c", probe], check=True)
    assert aborted_clients() == before


def test_create_if_missing_runs_with_the_session_settings(hostile_server):
    # make run's first step on a server whose sessions start read-only and end at COMMIT.
    from lab_assets import local_lab

    local_lab.create_if_missing(f"{hostile_server.url}/lab_demo", demo=True)
    with _plain(hostile_server, "lab_demo") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM samples")
        assert cursor.fetchone() == (20,)


def test_an_hourly_limit_is_named_as_such_by_the_build_and_the_sensor(limited_account):
    lab_db, url = limited_account(0)
    user = url.split("//", 1)[1].split(":", 1)[0]
    with server_connection() as connection, connection.cursor() as cursor:
        cursor.execute("ALTER USER %s@'%%' WITH MAX_QUERIES_PER_HOUR 25", (user,))
    mysql = MySQLResource(url=url, output_database=f"{lab_db.name}_out")
    build = materialize(
        LAB_ASSETS, resources={"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql)}, raise_on_error=False
    )
    assert "the account reached an hourly limit a DBA set on it (MAX_QUERIES_PER_HOUR" in "\n".join(_failures(build))
    # The sensor skips with the sentence (the limit is met opening a connection) instead of failing every tick.
    tick = lab_source_change_sensor(
        build_sensor_context(instance=DagsterInstance.ephemeral(), resources={"mysql": mysql})
    )
    assert isinstance(tick, SkipReason), tick
    assert "MySQL error 1226: the account reached an hourly limit" in (tick.skip_message or ""), tick
