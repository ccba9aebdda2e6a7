"""What a user sees when LAB_DB_URL is wrong, and the exit codes cron and CI read, on real servers.

* a URL naming a database that does not exist stops ``create-if-missing`` (make run's first step)
  with one sentence naming the database and the server, and creates nothing; ``--demo``
  (``make run DEMO=1``) creates it;
* a wrong port, an unknown host, a wrong password or a mistyped scheme ends any command in at most
  a few lines naming LAB_DB_URL, what failed, never the password, without a traceback unless
  ``VERBOSE=1``; Dagster's own step failure starts with the same sentence; the sensor skips with it;
* ``local_lab materialize`` exits non-zero naming a failed check of ERROR severity or a failed step,
  0 on a good lab; ``local_lab audit`` says "N checks failed" on one line and exits non-zero."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, SkipReason, build_sensor_context

from lab_assets.defs.sensors import lab_source_change_sensor
from lab_assets.mysql.resource import MySQLResource
from lab_assets_tests.databases import SERVER_URL, SESSION_PREFIX, server_connection
from lab_assets_tests.lab_data import CORRUPTIONS

pytestmark = pytest.mark.integration

# In every URL below: it must never be shown.
PASSWORD = "Zq8xDistinctPw"
HOST, PORT = SERVER_URL.host or "127.0.0.1", SERVER_URL.port or 3306
MAX_LINES = 5


def _local_lab(url: str, *args: str, home: Path, **env: str) -> tuple[int, str]:
    """``python -m lab_assets.local_lab <args>`` with LAB_DB_URL and DAGSTER_HOME only (and
    ``env``): its exit code and stdout + stderr."""
    environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    environment.update(LAB_DB_URL=url, DAGSTER_HOME=str(home), **env)
    run = subprocess.run(
        [sys.executable, "-m", "lab_assets.local_lab", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return run.returncode, run.stdout + run.stderr


def _databases() -> set[str]:
    """This session's databases (the server is shared: other sessions create theirs meanwhile)."""
    with server_connection() as connection, connection.cursor() as cursor:
        cursor.execute("SHOW DATABASES")
        return {name for (name,) in cursor.fetchall() if name.startswith(SESSION_PREFIX)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _assert_one_sentence(code: int, output: str, *naming: str) -> None:
    assert code == 1, output
    assert len(output.strip().splitlines()) <= MAX_LINES, output
    assert "Traceback" not in output and PASSWORD not in output, output
    assert output.startswith("LAB_DB_URL ("), output
    for text in naming:
        assert text in output, (text, output)


def test_a_typo_in_the_database_name_stops_and_creates_nothing_unless_the_demo_is_asked_for(tmp_path):
    typo = f"{SESSION_PREFIX}_lba"
    url = SERVER_URL.set(database=typo).render_as_string(hide_password=False)
    before = _databases()
    code, output = _local_lab(url, "create-if-missing", home=tmp_path)
    _assert_one_sentence(code, output, f"{HOST}:{PORT} has no database {typo}", "DEMO=1")
    assert len(output.strip().splitlines()) == 1, output
    assert _databases() == before and typo not in before, "nothing created"
    code, output = _local_lab(url, "create-if-missing", "--demo", home=tmp_path)
    try:
        assert code == 0 and f"created demo lab database '{typo}'" in output, output
        with server_connection(typo) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM samples")
            assert cursor.fetchone() == (20,)
    finally:
        with server_connection() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{typo}`")


@pytest.fixture
def throwaway_account():
    """An account that may connect, with a password other than :data:`PASSWORD`; dropped after."""
    user = f"err_{secrets.token_hex(4)}"
    with server_connection() as connection, connection.cursor() as cursor:
        cursor.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, "the-right-one"))
    yield user
    with server_connection() as connection, connection.cursor() as cursor:
        cursor.execute("DROP USER %s@'%%'", (user,))


def _bad_urls(user: str) -> dict[str, tuple[str, str]]:
    """name -> (URL, what the sentence must say)."""
    port = _free_port()
    return {
        "wrong port": (
            f"mysql+pymysql://root:{PASSWORD}@127.0.0.1:{port}/lab",
            f"nothing accepts connections on 127.0.0.1:{port} (connection refused)",
        ),
        "unknown host": (
            f"mysql+pymysql://root:{PASSWORD}@lab-db.invalid:3306/lab",
            "the host name lab-db.invalid is unknown",
        ),
        "wrong password": (
            f"mysql+pymysql://{user}:{PASSWORD}@{HOST}:{PORT}/lab",
            f"{HOST}:{PORT} refused the account (Access denied for user '{user}'",
        ),
        "mistyped driver": (
            f"mysql+pymsql://root:{PASSWORD}@{HOST}:{PORT}/lab",
            "starts with mysql+pymsql://, a driver lab_assets cannot use: check the scheme, which must be mysql+pymysql://",
        ),
        "no driver": (
            f"mysql://root:{PASSWORD}@{HOST}:{PORT}/lab",
            "starts with mysql://, a driver lab_assets cannot use",
        ),
    }


@pytest.mark.parametrize("case", ["wrong port", "unknown host", "wrong password", "mistyped driver", "no driver"])
def test_each_connection_error_is_a_few_lines_naming_lab_db_url_without_the_password(case, throwaway_account, tmp_path):
    url, says = _bad_urls(throwaway_account)[case]
    for command in ("show", "materialize", "create-if-missing"):
        code, output = _local_lab(url, command, home=tmp_path)
        _assert_one_sentence(code, output, says, "check")
    # The sensor skips every tick with the same sentence instead of failing with a traceback.
    with DagsterInstance.ephemeral() as instance:
        tick = lab_source_change_sensor(
            build_sensor_context(instance=instance, resources={"mysql": MySQLResource(url=url)})
        )
    assert isinstance(tick, SkipReason), tick
    message = tick.skip_message or ""
    assert message.startswith("LAB_DB_URL (") and says in message and PASSWORD not in message, message


def test_verbose_shows_the_traceback(tmp_path):
    url = f"mysql+pymysql://root:{PASSWORD}@127.0.0.1:{_free_port()}/lab"
    code, output = _local_lab(url, "show", home=tmp_path, VERBOSE="1")
    assert code != 0 and "Traceback" in output and "connection refused" in output, output
    assert PASSWORD not in output, output


def test_dagsters_own_step_failure_starts_with_the_sentence(throwaway_account, tmp_path):
    url, says = _bad_urls(throwaway_account)["wrong password"]
    environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    environment.update(LAB_DB_URL=url, DAGSTER_HOME=str(tmp_path))
    dagster = str(Path(sys.executable).with_name("dagster"))
    run = subprocess.run(
        [dagster, "asset", "materialize", "-m", "lab_assets.definitions", "--select", "*"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0 and PASSWORD not in output, output[-3000:]
    lines = output.splitlines()
    failure = next(i for i, line in enumerate(lines) if "STEP_FAILURE" in line)
    first = next(line for line in lines[failure + 1 :] if line.strip())
    assert first.startswith("dagster._core.definitions.events.Failure: LAB_DB_URL (") and says in first, first


def test_materialize_and_audit_exit_non_zero_naming_a_failed_error_check(lab_db, tmp_path):
    code, output = _local_lab(lab_db.url, "materialize", home=tmp_path)
    assert code == 0, output
    assert "0 checks failed; 10 passed" in output, output
    _, statements, offenders = CORRUPTIONS["no_parent_cycles"]
    lab_db.execute(*statements)
    code, output = _local_lab(lab_db.url, "materialize", home=tmp_path)
    count = len(offenders)
    named = f"no_parent_cycles on sample_lineage ({count} offender{'' if count == 1 else 's'}, ERROR)"
    assert code == 1 and f"1 check failed: {named}; 9 passed" in output, output
    assert f"1 check of ERROR severity failed: {named}" in output, output
    code, output = _local_lab(lab_db.url, "audit", home=tmp_path)
    assert code == 1, output
    summary = [line.strip() for line in output.splitlines() if " failed" in line and "check" in line]
    assert summary[0] == f"1 check failed: {named}; 9 passed", output


def test_materialize_exits_non_zero_naming_the_failed_step_not_zero_checks_passed(lab_db, tmp_path):
    lab_db.execute("ALTER TABLE sample_measurements RENAME COLUMN value TO result")
    code, output = _local_lab(lab_db.url, "materialize", home=tmp_path)
    assert code == 1, output
    # make run's job observes the sources first: their steps are the first to fail, naming it.
    failed = [line for line in output.splitlines() if " failed: " in line and "no column value" in line]
    assert failed and failed[0].split(" failed: ")[0].strip() in ("samples", "sample_measurements"), output
    assert "no check was evaluated (a step failed)" in output and "0 passed" not in output, output
