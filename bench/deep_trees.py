"""Deep trees vs flat trees, on fresh and on stale optimizer statistics.

What: wall seconds of a full materialization of ``LAB_ASSETS`` and of the refresh after one
re-parent, on a database of ``--base`` generated samples plus D extra samples shaped either as
one chain (each the child of the previous, D levels deep) or flat (the same D samples, all
children of one root), for each depth D in ``--depths``.

Why: InnoDB keeps the statistics it took while a table was empty when they are persistent and
never recalculated (``STATS_PERSISTENT=1 STATS_AUTO_RECALC=0``, a restore, a DBA's setting). On
such tables MariaDB can plan a recursive walk (lineage build, lineage refresh, checks) as a scan
of every sample per tree level, so a deep chain costs depth x samples row reads; every walk
therefore steps parent -> children through the index on samples.parent_id (STRAIGHT_JOIN ...
FORCE INDEX). This script shows what depth and stale statistics cost a checkout's code: run it
with ``--repo`` at two checkouts to compare them on the same data. A flat tree has the same
samples with depth 1, so chain vs flat isolates the cost of depth. Results in bench/RESULTS.md
("Deep trees and stale statistics").

How, for each depth D, statistics mode and shape:

1. create ``deep_<mode>_<shape>_<D>`` with the source schema (lab_assets.local_lab's
   source_schema_statements without the seed INSERTs);
   - ``fresh``: the tables as created; statistics recomputed (ANALYZE TABLE) after the inserts;
   - ``stale``: ``ALTER TABLE ... STATS_PERSISTENT=1 STATS_AUTO_RECALC=0`` and ``ANALYZE TABLE``
     while the tables are empty, then the inserts (the statistics keep saying 0 rows);
2. insert ``generate(base, first_id=1)`` (lab_assets_tests.lab_data: ids 1..base in the seed
   generator's distribution, so sample 5 exists and every parent is present) and the D extra
   samples, ids from 100000, experiment 3: ``chain`` = 100000 a root, each next id the child of
   the previous; ``flat`` = 100000 a root, the other D-1 its children. The last one gets one
   ``vol`` measurement;
3. in a subprocess run by ``<repo>/.venv/bin/python`` (so that checkout's code is what runs;
   the subprocess checks lab_assets is imported from ``<repo>``): time ``dagster.materialize(
   LAB_ASSETS)`` with MySQLResource + MySQLIOManager (full refresh: no output tables yet), then
   ``UPDATE samples SET parent_id = 5 WHERE id = 100000`` (the chain's head / the flat root
   moves under root 5's tree; not timed), then time the second materialization (the refresh) and
   read the sample_lineage materialization's metadata ``refresh`` (incremental / full) and
   ``build_seconds`` (the lineage write);
4. a build that runs longer than ``--timeout`` seconds is recorded as "> timeout": the
   subprocess is killed and its server-side statements on that database are KILLed, then the
   next case runs;
5. the database is dropped (``--keep`` keeps it) and, at the end, a Markdown table is printed:
   depth | stats | shape | full refresh s | refresh s | lineage refresh mode | lineage write s.

Asset checks are not part of the timed materializations (LAB_ASSETS only).

Usage (from the checkout holding this file, with its venv)::

    .venv/bin/python bench/deep_trees.py --repo /work/main
    .venv/bin/python bench/deep_trees.py --repo /path/to/other-checkout --depths 1500,3000

Needs the local server (LAB_BENCH_SERVER_URL, default mysql+pymysql://root@127.0.0.1:3306);
only databases named ``deep_*`` are created, replaced and dropped. The data is generated with
this checkout's lab_assets_tests.lab_data and source schema, whichever checkout ``--repo`` names.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def _one(cursor) -> tuple:
    """The row of a query that always gives one (COUNT, @@version)."""
    row = cursor.fetchone()
    assert row is not None, "the query gave no row"
    return row


def _connect(database: str | None = None):
    sys.path.insert(0, str(ROOT))
    from lab_assets_tests.lab_data import server_connection

    return server_connection(_server(), database)


def extra_samples(depth: int, shape: str) -> list[tuple[int, int | None, int]]:
    ids = range(FIRST_EXTRA_ID, FIRST_EXTRA_ID + depth)
    if shape == "chain":
        return [(n, None if n == FIRST_EXTRA_ID else n - 1, EXTRA_EXPERIMENT) for n in ids]
    return [(n, None if n == FIRST_EXTRA_ID else FIRST_EXTRA_ID, EXTRA_EXPERIMENT) for n in ids]


def prepare(database: str, base: int, depth: int, mode: str, shape: str) -> str:
    """Creates ``database``; returns what the persistent statistics say about samples."""
    sys.path.insert(0, str(ROOT))
    from lab_assets.local_lab import source_schema_statements
    from lab_assets_tests.lab_data import generate, insert

    assert database.startswith("deep_")
    with _connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cursor.execute(f"CREATE DATABASE `{database}`")
    with _connect(database) as connection:
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
            (count,) = _one(cursor)
    return f"{count} samples, statistics say {row[0] if row else '?'}"


def kill_server_statements(database: str) -> None:
    """KILLs every connection on ``database`` (a killed client's statement would run on)."""
    with _connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (database,))
        for (thread_id,) in cursor.fetchall():
            try:
                cursor.execute(f"KILL CONNECTION {int(thread_id)}")
            except Exception:  # noqa: BLE001, PERF203 - already gone, whatever the error says
                pass


def run_case(repo: Path, database: str, timeout: float, log_path: Path) -> dict:
    """Runs the subprocess; returns {'full': ..., 'refresh': ...} events or timeout/error markers."""
    python = repo / ".venv" / "bin" / "python"
    url = _server().set(database=database).render_as_string(hide_password=False)
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "PYTHONPATH")}
    outcome: dict = {}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(python), str(Path(__file__).resolve()), "--child", "--repo", str(repo), "--url", url],
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", default="1500,3000,6000,20000", help="comma-separated D values")
    parser.add_argument("--base", type=int, default=30_000, help="generated samples besides the D extra ones")
    parser.add_argument("--repo", type=Path, default=ROOT, help="checkout whose code runs (uses its .venv)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per build before '> timeout'")
    parser.add_argument("--modes", default=",".join(MODES), help="statistics modes: fresh,stale")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="shapes: chain,flat")
    parser.add_argument("--keep", action="store_true", help="keep the deep_* databases")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    repo = args.repo.resolve()
    if args.child:
        child(repo, args.url)
        return
    if not (repo / ".venv" / "bin" / "python").exists():
        raise SystemExit(
            f"{repo}/.venv/bin/python missing: python3 -m venv .venv && .venv/bin/pip install -e '.[test]'"
        )
    depths = [int(d.replace("_", "")) for d in args.depths.split(",") if d]
    modes = [m for m in args.modes.split(",") if m]
    shapes = [s for s in args.shapes.split(",") if s]
    assert set(modes) <= set(MODES) and set(shapes) <= set(SHAPES), (modes, shapes)
    commit = subprocess.run(
        ["git", "-C", str(repo), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
    ).stdout.strip()
    log_dir = Path(tempfile.mkdtemp(prefix="deep_trees_logs_"))
    with _connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT @@version")
        (version,) = _one(cursor)
    print(f"repo {repo} ({commit[:100]}); server {version}; base {args.base}; logs in {log_dir}", flush=True)

    started_all = time.monotonic()
    rows = []
    for depth in depths:
        for mode in modes:
            for shape in shapes:
                database = f"deep_{mode}_{shape}_{depth}"
                made = time.monotonic()
                facts = prepare(database, args.base, depth, mode, shape)
                load1 = os.getloadavg()[0]
                print(
                    f"[{database}] prepared in {time.monotonic() - made:.1f} s ({facts}); load1 {load1:.2f}", flush=True
                )
                outcome = run_case(repo, database, args.timeout, log_dir / f"{database}.log")
                full, refresh = outcome.get("full"), outcome.get("refresh")
                lineage = (refresh or {}).get("lineage", {})
                row = {
                    "depth": depth,
                    "stats": mode,
                    "shape": shape,
                    "full": fmt_build(full, args.timeout),
                    "refresh": fmt_build(refresh, args.timeout),
                    "mode": lineage.get("refresh", "n/a"),
                    "write": "n/a" if "build_seconds" not in lineage else f"{lineage['build_seconds']:.3f}",
                }
                rows.append(row)
                print(
                    f"[{database}] full {row['full']} s (lineage {(full or {}).get('lineage')}), refresh"
                    f" {row['refresh']} s (lineage {lineage or None})"
                    + "".join(
                        f"; {e['event']}: {e.get('message', '')}"
                        for e in (full, refresh)
                        if e and e["event"] == "error"
                    ),
                    flush=True,
                )
                if not args.keep:
                    with _connect() as connection, connection.cursor() as cursor:
                        cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")

    header = "| depth | stats | shape | full refresh s | refresh s | lineage refresh mode | lineage write s |"
    lines = [header, "|" + "---|" * 7]
    for r in rows:
        cells = [f"{r['depth']:,}", r["stats"], r["shape"], r["full"], r["refresh"], r["mode"], r["write"]]
        lines.append("| " + " | ".join(cells) + " |")
    print()
    print(f"{repo} ({commit[:60]}), base {args.base:,} samples + D, timeout {args.timeout:g} s per build")
    print()
    print("\n".join(lines))
    print()
    print(f"total {time.monotonic() - started_all:.0f} s")


if __name__ == "__main__":
    main()
