"""bench/deep_trees.py's cases: a database with a deep chain or the same samples hung flat, on fresh
or stale statistics, and the subprocess that times a checkout's full refresh and refresh on it.

Nothing of lab_assets (or lab_assets_tests) is imported at module level: the subprocess runs
under ``<repo>/.venv/bin/python`` and imports this module before :func:`child` puts ``<repo>``
first on sys.path, and the lab_assets it times must be that checkout's."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

SERVER_URL_DEFAULT = "mysql+pymysql://root@127.0.0.1:3306"
FIRST_EXTRA_ID = 100_000
EXTRA_EXPERIMENT = 3
MOVE_UNDER = 5  # the re-parent puts sample 100000 (chain head / flat root) under sample 5
IMPORT_TIMEOUT = 300  # seconds the subprocess may take to import dagster and lab_assets (not timed)
MODES = ("fresh", "stale")
SHAPES = ("chain", "flat")


# --------------------------------------------------------------------------------------------
# the subprocess: runs under <repo>/.venv/bin/python, imports that checkout's lab_assets


def child(repo: Path, url: str) -> None:
    """Full refresh, re-parent, refresh; one JSON line on stdout per event."""
    sys.path.insert(0, str(repo))

    def emit(**event) -> None:
        print(json.dumps(event), flush=True)

    import pymysql
    from dagster import materialize

    import lab_assets
    from lab_assets.defs.assets import LAB_ASSETS
    from lab_assets.io_manager import MySQLIOManager
    from lab_assets.mysql.resource import MySQLResource

    imported_from = Path(lab_assets.__file__).resolve()
    if repo.resolve() not in imported_from.parents:
        emit(event="error", message=f"lab_assets imported from {imported_from}, not from {repo}")
        return
    mysql = MySQLResource(url=url)
    resources = {"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql)}

    def lineage_metadata(result) -> dict:
        for m in result.asset_materializations_for_node("lab_source_derivations"):
            if m.asset_key.to_user_string() == "sample_lineage":
                return {k: getattr(v, "value", v) for k, v in m.metadata.items() if k in ("refresh", "build_seconds")}
        return {}

    emit(event="ready", lab_assets=str(imported_from.parent))
    started = time.monotonic()
    result = materialize(LAB_ASSETS, resources=resources)
    emit(event="full", seconds=time.monotonic() - started, success=result.success, lineage=lineage_metadata(result))

    from sqlalchemy import make_url

    parsed = make_url(url)
    connection = pymysql.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 3306,
        user=parsed.username or "root",
        password=parsed.password or "",
        database=parsed.database,
        autocommit=True,
    )
    with connection, connection.cursor() as cursor:
        cursor.execute("UPDATE samples SET parent_id = %s WHERE id = %s", (MOVE_UNDER, FIRST_EXTRA_ID))
    time.sleep(1.1)  # past the UPDATE_TIME second of the last write, as a sensor-driven refresh would be
    emit(event="moved")
    started = time.monotonic()
    result = materialize(LAB_ASSETS, resources=resources)
    emit(event="refresh", seconds=time.monotonic() - started, success=result.success, lineage=lineage_metadata(result))


# --------------------------------------------------------------------------------------------
# the parent: data, subprocess with per-build timeouts, table


def _server():
    import sqlalchemy as sa

    return sa.make_url(os.environ.get("LAB_BENCH_SERVER_URL", SERVER_URL_DEFAULT))


def one_row(cursor) -> tuple:
    """The row of a query that always gives one (COUNT, @@version)."""
    row = cursor.fetchone()
    assert row is not None, "the query gave no row"
    return row


def connect(database: str | None = None):
    from lab_assets_tests.lab_data import server_connection

    return server_connection(_server(), database)


def extra_samples(depth: int, shape: str) -> list[tuple[int, int | None, int]]:
    ids = range(FIRST_EXTRA_ID, FIRST_EXTRA_ID + depth)
    if shape == "chain":
        return [(n, None if n == FIRST_EXTRA_ID else n - 1, EXTRA_EXPERIMENT) for n in ids]
    return [(n, None if n == FIRST_EXTRA_ID else FIRST_EXTRA_ID, EXTRA_EXPERIMENT) for n in ids]


def prepare(database: str, base: int, depth: int, mode: str, shape: str) -> str:
    """Creates ``database``; returns what the persistent statistics say about samples."""
    from lab_assets.local_lab import source_schema_statements
    from lab_assets_tests.lab_data import generate, insert

    assert database.startswith("deep_")
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cursor.execute(f"CREATE DATABASE `{database}`")
    with connect(database) as connection:
        with connection.cursor() as cursor:
            for statement in source_schema_statements():
                if not statement.upper().startswith("INSERT"):
                    cursor.execute(statement)
            if mode == "stale":
                for table in ("samples", "sample_measurements"):
                    cursor.execute(f"ALTER TABLE {table} STATS_PERSISTENT=1 STATS_AUTO_RECALC=0")
                cursor.execute("ANALYZE TABLE samples, sample_measurements")  # statistics of empty tables, kept
                cursor.fetchall()
        samples, measurements = generate(base, first_id=1)
        extra = extra_samples(depth, shape)
        measurements.append((extra[-1][0], "vol", Decimal("1.5")))
        insert(connection, samples + extra, measurements)
        with connection.cursor() as cursor:
            if mode == "fresh":
                cursor.execute("ANALYZE TABLE samples, sample_measurements")
                cursor.fetchall()
            cursor.execute(
                "SELECT n_rows FROM mysql.innodb_table_stats WHERE database_name = %s AND table_name = 'samples'",
                (database,),
            )
            row = cursor.fetchone()
            cursor.execute("SELECT COUNT(*) FROM samples")
            (count,) = one_row(cursor)
    return f"{count} samples, statistics say {row[0] if row else '?'}"


def kill_server_statements(database: str) -> None:
    """KILLs every connection on ``database`` (a killed client's statement would run on)."""
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (database,))
        for (thread_id,) in cursor.fetchall():
            try:
                cursor.execute(f"KILL CONNECTION {int(thread_id)}")
            except Exception:  # noqa: BLE001, PERF203 - already gone, whatever the error says
                pass


def run_case(script: Path, repo: Path, database: str, timeout: float, log_path: Path) -> dict:
    """Runs the subprocess (``script --child``, bench/deep_trees.py); returns {'full': ...,
    'refresh': ...} events or timeout/error markers."""
    python = repo / ".venv" / "bin" / "python"
    url = _server().set(database=database).render_as_string(hide_password=False)
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "PYTHONPATH")}
    outcome: dict = {}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(python), str(script), "--child", "--repo", str(repo), "--url", url],
            cwd=repo,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        events: queue.Queue = queue.Queue()

        def reader() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                if line.startswith("{"):
                    events.put(json.loads(line))
            events.put(None)

        threading.Thread(target=reader, daemon=True).start()

        def wait_for(name: str, seconds: float) -> dict:
            deadline = time.monotonic() + seconds
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return {"event": "timeout"}
                try:
                    event = events.get(timeout=remaining)
                except queue.Empty:
                    return {"event": "timeout"}
                if event is None:
                    return {"event": "error", "message": f"subprocess ended before {name!r} (see {log_path})"}
                if event["event"] in (name, "error"):
                    return event

        try:
            # (event awaited, seconds allowed, build it belongs to): a missing "ready" counts
            # against the full refresh, a missing "moved" against the refresh.
            steps = [
                ("ready", IMPORT_TIMEOUT, "full"),
                ("full", timeout, "full"),
                ("moved", 60, "refresh"),
                ("refresh", timeout, "refresh"),
            ]
            for name, seconds, build in steps:
                event = wait_for(name, seconds)
                if event["event"] != name:
                    if name == "ready" and event["event"] == "timeout":  # not a build timeout
                        event = {"event": "error", "message": f"no import in {IMPORT_TIMEOUT} s (see {log_path})"}
                    outcome[build] = event
                    break
                if name == build:
                    outcome[build] = event
        finally:
            if process.poll() is None and outcome.get("refresh", {}).get("event") != "refresh":
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    kill_server_statements(database)
    return outcome


def fmt_build(event: dict | None, timeout: float) -> str:
    if event is None:
        return "n/a"
    if event["event"] == "timeout":
        return f"> {timeout:g}"
    if event["event"] == "error":
        return "error"
    return f"{event['seconds']:.2f}" + ("" if event.get("success", True) else " (failed)")
