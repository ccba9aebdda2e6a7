"""The extra-server helper: a private MariaDB with its own settings, gone after use, and the shared
test server left as it was."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
import sqlalchemy as sa

from lab_assets_tests import lab_data
from lab_assets_tests.extra_server import ExtraServer, extra_server, start_extra_server

# The shared server the other tests use (see conftest.py); only read here, never changed.
MAIN_SERVER_URL = sa.make_url(os.environ.get("LAB_TEST_SERVER_URL", "mysql+pymysql://root@127.0.0.1:3306"))
MAIN_SETTINGS_SQL = (
    "SELECT @@innodb_force_primary_key, @@global.wait_timeout, @@port, @@datadir,"
    " (SELECT CAST(variable_value AS UNSIGNED) FROM information_schema.global_status WHERE variable_name = 'UPTIME')"
)

OPTIONS = {"innodb_force_primary_key": "ON", "wait_timeout": "2"}
ER_TABLE_MUST_HAVE_PK = 1173
CR_SERVER_GONE_ERROR = 2006
CR_SERVER_LOST = 2013


def assert_process_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # signal 0: only checks that the process exists


def query_main(sql: str) -> tuple:
    with lab_data.server_connection(MAIN_SERVER_URL) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
        assert row is not None
        return tuple(row)


def main_settings() -> tuple:
    with lab_data.server_connection(MAIN_SERVER_URL) as connection, connection.cursor() as cursor:
        cursor.execute(MAIN_SETTINGS_SQL)
        row = cursor.fetchone()
        assert row is not None  # a SELECT of variables answers one row
        return tuple(row)


@pytest.fixture(scope="module")
def main_before() -> tuple:
    """The shared server's settings before this module starts its extra server."""
    return main_settings()


@pytest.fixture(scope="module")
def server(main_before: tuple, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExtraServer]:
    """One extra server for the module; after the module its process must be gone."""
    with extra_server(tmp_path_factory.mktemp("extra_server"), OPTIONS) as started:
        yield started
    assert_process_gone(started.pid)


def query(server: ExtraServer, sql: str) -> list[tuple]:
    with server.connect() as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]


@pytest.mark.integration
def test_runs_with_the_options(server: ExtraServer) -> None:
    assert query(server, "SELECT @@innodb_force_primary_key, @@global.wait_timeout, @@port") == [(1, 2, server.port)]
    assert server.url == f"mysql+pymysql://root@127.0.0.1:{server.port}"
    assert server.options == OPTIONS
    assert server.pid > 0 and server.port != 3306


@pytest.mark.integration
def test_sqlalchemy_url_works(server: ExtraServer) -> None:
    engine = sa.create_engine(server.url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT @@global.wait_timeout")).scalar() == 2
    finally:
        engine.dispose()


@pytest.mark.integration
def test_table_without_primary_key_is_refused(server: ExtraServer) -> None:
    with server.connect() as connection, connection.cursor() as cursor:
        cursor.execute("CREATE DATABASE pk_test")
        with pytest.raises(pymysql.err.OperationalError) as refused:
            cursor.execute("CREATE TABLE pk_test.no_pk (a INT) ENGINE=InnoDB")
        assert refused.value.args[0] == ER_TABLE_MUST_HAVE_PK
        cursor.execute("CREATE TABLE pk_test.with_pk (a INT PRIMARY KEY) ENGINE=InnoDB")


@pytest.mark.integration
def test_idle_connection_is_closed_after_wait_timeout(server: ExtraServer) -> None:
    connection = server.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@session.wait_timeout")
            assert cursor.fetchone() == (2,)
        time.sleep(3.5)
        with pytest.raises(pymysql.err.OperationalError) as gone, connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert gone.value.args[0] in (CR_SERVER_GONE_ERROR, CR_SERVER_LOST)
    finally:
        connection.close()  # only marks the connection closed when the server already dropped it


@pytest.mark.integration
def test_main_server_untouched(server: ExtraServer, main_before: tuple) -> None:
    force_pk, wait_timeout, port, datadir, uptime = main_settings()
    assert (force_pk, wait_timeout, port, datadir) == main_before[:4]
    assert uptime >= main_before[4]  # not restarted
    assert port != server.port
    assert Path(datadir).resolve() != server.datadir.resolve()


@pytest.mark.integration
def test_starting_leaves_the_shared_servers_temporary_files_alone(tmp_path: Path) -> None:
    # A server deletes every "#sql*" file in its tmpdir when it starts: in the shared server's
    # tmpdir those are its temporary tables in use (a test starting a private server beside
    # another test's statement would fail that statement).
    (shared_tmpdir,) = query_main("SELECT @@tmpdir")
    in_use = Path(shared_tmpdir) / f"#sql-temptable-extra-server-test-{os.getpid()}.MAI"
    in_use.write_bytes(b"")
    try:
        with extra_server(tmp_path / "own", {}) as started:
            assert query(started, "SELECT @@tmpdir") == [(str(tmp_path.resolve() / "own" / "tmp"),)]
        assert in_use.exists()
    finally:
        in_use.unlink(missing_ok=True)


@pytest.mark.integration
def test_stop_leaves_no_process_and_can_repeat(tmp_path: Path) -> None:
    with extra_server(tmp_path, {}) as server:
        assert query(server, "SELECT 1") == [(1,)]
    assert_process_gone(server.pid)
    with pytest.raises(pymysql.err.OperationalError):
        server.connect()


@pytest.mark.integration
def test_bad_option_raises_with_the_log_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no_such_variable") as failed:
        start_extra_server(tmp_path, {"no_such_variable": "1"})
    assert "mariadbd exited" in str(failed.value)
    assert not any(f"--datadir={tmp_path}" in line for line in _mariadbd_command_lines())


def _mariadbd_command_lines() -> list[str]:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return [line for line in lines if "mariadbd" in line]
