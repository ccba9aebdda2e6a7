"""How much a full lab_assets build holds up the lab system's own writes.

What it measures: while one lab_assets build runs (the CLI contract ``dagster asset materialize -m
lab_assets.definitions --select '*'``, a cold process with a fresh temporary DAGSTER_HOME, as
bench/bench.py runs it), a "lab writer" thread plays the laboratory system: on its own autocommit
PyMySQL connection (the server's default isolation, ``innodb_lock_wait_timeout = 50``), every
``--interval`` seconds it updates one random existing sample's row in each source table with a
no-op that still takes the row's exclusive lock:

* ``UPDATE sample_measurements SET value = value + 0 WHERE sample_id = %s AND measurement_type = 'vol'``
* ``UPDATE samples SET ts = ts WHERE id = %s``

and times each statement (``time.perf_counter``). The writer starts 2 s before the build and
stops 2 s after it ends. Reported: the build's wall seconds, the number of lab UPDATEs, their max,
p99 and p50 latency (ms, every statement of the writer's window, failed ones included), how many
took over 100 ms and over 1 s, and errors (1205 lock wait timeout, 1213 deadlock, ...), as a
Markdown table row and a JSON line. The exit code is 0 whatever delays the lab saw (it is a
measurement); it is 1 only when the build itself fails.

Why: under REPEATABLE READ (the server default), InnoDB share-locks (next-key S locks) every
source row an ``INSERT ... SELECT`` / ``CREATE TABLE ... SELECT`` reads, for the whole statement,
so a lab UPDATE of any of those rows waits until the statement ends: a full refresh reads both
source tables whole in such statements, each holding up the lab's writes for as long as it runs
(past ``innodb_lock_wait_timeout``: error 1205). lab_assets reads at READ COMMITTED on every
connection it opens (lab_assets.mysql.sessions): consistent snapshot reads, no row locks on the sources,
so the lab's latency should stay at its idle level during the build. Results in bench/RESULTS.md
("Lab writes during a full refresh").

``--open-transaction`` adds what a production lab always has: another lab session whose transaction
stays open for the whole measurement, holding the exclusive row locks of a few samples' rows in
both source tables (the first, middle and last sample ids, where a full refresh's chunks start and
end), as an UPDATE left uncommitted would. The lab writer leaves those samples alone. A build that
read the sources with locks would wait on them and fail after ``innodb_lock_wait_timeout``.

Before/after: run it once against each checkout, on the same data. ``--repo`` names the checkout
whose CLI is run: its own ``.venv/bin/dagster`` with that checkout as working directory (so an
older commit in another worktree, with its own venv, is measured the same way); the data and this
script come from this checkout. For example, with the older commit in /work/wt-before::

    git worktree add /work/wt-before <old-commit>   # and `make install` there
    .venv/bin/python bench/lab_writer_delay.py --size 1000000 --full --repo /work/wt-before
    .venv/bin/python bench/lab_writer_delay.py --size 1000000 --full --reuse   # this checkout

(--full on both, so both run the same command and both are whole rebuilds, see below.)

The first run generates ``bench_<size>`` (as bench/bench.py does, not timed); ``--reuse`` keeps it
when its sample count is right. A database without lab_assets' tables gets a first (full) build;
when the tables are there, a plain build is incremental and, on unchanged sources, reads little,
so pass ``--full`` to rebuild every table whole: ``dagster asset materialize`` has no ``--tags``
option (Dagster 1.13), so ``--full`` runs the same selection as the implicit asset job,
``dagster job execute -m lab_assets.definitions -j __ASSET_JOB --tags '{"lab_assets/refresh":
"full"}'`` (Dagster refuses an op selection on an asset job), which also observes the two source
assets (one non-locking scan of each, listed in the JSON's build steps): compare --full refreshes
with --full refreshes. The lab writer's no-op UPDATEs leave the data unchanged.

Needs the local server (LAB_BENCH_SERVER_URL, default mysql+pymysql://root@127.0.0.1:3306); only
the database ``bench_<size>`` is created or replaced. The build's log goes to
``bench/out/bench_<size>_lab_writer_delay_<checkout folder>.log``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pymysql

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, Python puts bench/ first on sys.path, where ``bench`` would be bench.py;
# from the checkout's root, ``bench`` is this folder and ``bench.lib`` the benchmarks' library.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from bench.lib.data import prepare_database  # noqa: E402
from bench.lib.runs import FINISHED_STEP, MATERIALIZE_ALL  # noqa: E402
from bench.lib.server import connect, database_url  # noqa: E402

# The lab's writes: no-op updates of one sample's rows that still take each row's X lock.
LAB_UPDATES = (
    (
        "sample_measurements",
        "UPDATE sample_measurements SET value = value + 0 WHERE sample_id = %s AND measurement_type = 'vol'",
    ),
    ("samples", "UPDATE samples SET ts = ts WHERE id = %s"),
)
LAB_LOCK_WAIT_TIMEOUT_SECONDS = 50
WRITER_LEAD_SECONDS = 2.0  # the writer runs this long before the build starts and after it ends
FULL_REFRESH_TAGS = {"lab_assets/refresh": "full"}
# `dagster asset materialize` takes no --tags: the implicit asset job has the same selection ('*').
FULL_REFRESH = ("job", "execute", "-m", "lab_assets.definitions", "-j", "__ASSET_JOB")
LOST_CONNECTION = {2006, 2013, 2014}
SOURCE_TABLES = ("samples", "sample_measurements")


@dataclass
class Statement:
    table: str
    at: float  # perf_counter() when it started
    seconds: float
    error: str | None = None


class OpenTransaction:
    """Another lab session's open transaction: X locks on a few samples' rows in both source
    tables, held until :meth:`close` rolls it back."""

    def __init__(self, database: str, first_id: int, last_id: int) -> None:
        self.samples = sorted({first_id, (first_id + last_id) // 2, last_id})
        self.connection = connect(database)
        ids = ", ".join(map(str, self.samples))
        with self.connection.cursor() as cursor:
            cursor.execute("SET SESSION wait_timeout = 86400")
            cursor.execute("START TRANSACTION")
            cursor.execute(f"UPDATE samples SET ts = ts WHERE id IN ({ids})")
            cursor.execute(f"UPDATE sample_measurements SET value = value + 0 WHERE sample_id IN ({ids})")

    def close(self) -> None:
        self.connection.rollback()
        self.connection.close()


class LabWriter(threading.Thread):
    """The lab system: a pair of no-op row UPDATEs every ``interval`` seconds, each timed; the
    samples in ``avoid`` (held by an open transaction) are left alone."""

    def __init__(self, database: str, interval: float, seed: int, avoid: frozenset[int] = frozenset()) -> None:
        super().__init__(name="lab-writer", daemon=True)
        self.database = database
        self.interval = interval
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.avoid = avoid
        self.statements: list[Statement] = []
        self.connection = self._connect()
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT MIN(id), MAX(id) FROM samples")
            row = cursor.fetchone()
            assert row is not None and row[0] is not None, f"{database}.samples is empty"
            self.first_id, self.last_id = int(row[0]), int(row[1])
            try:
                cursor.execute("SELECT @@session.transaction_isolation")
            except pymysql.MySQLError:  # MariaDB before 11.1 has only tx_isolation
                cursor.execute("SELECT @@session.tx_isolation")
            isolation = cursor.fetchone()
            self.isolation = str(isolation[0]) if isolation else "?"

    def _connect(self) -> pymysql.connections.Connection:
        connection = connect(self.database)  # autocommit
        with connection.cursor() as cursor:
            cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {LAB_LOCK_WAIT_TIMEOUT_SECONDS}")
        return connection

    def run(self) -> None:
        next_at = time.perf_counter()
        try:
            while not self.stop.is_set():
                sample_id = self.random.randint(self.first_id, self.last_id)
                if sample_id in self.avoid:
                    continue
                for table, sql in LAB_UPDATES:
                    self._timed(table, sql, sample_id)
                next_at += self.interval
                now = time.perf_counter()
                if next_at < now:  # a held-up pair: carry on from now, no burst of catch-up writes
                    next_at = now
                self.stop.wait(next_at - now)
        finally:
            self.connection.close()

    def _timed(self, table: str, sql: str, sample_id: int) -> None:
        started = time.perf_counter()
        error = None
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(sql, (sample_id,))
        except pymysql.MySQLError as exc:
            code = exc.args[0] if exc.args else None
            error = f"{code} {exc.args[1] if len(exc.args) > 1 else exc}"
            if code in LOST_CONNECTION or not self.connection.open:
                if self.connection.open:
                    self.connection.close()
                self.connection = self._connect()
        self.statements.append(Statement(table, started, time.perf_counter() - started, error))


@dataclass
class Build:
    command: list[str]
    started: float  # perf_counter()
    seconds: float
    exit_code: int
    log_path: Path
    steps: dict[str, float]


def checkout_dagster(repo: Path) -> Path:
    """The checkout's own console script, refused when it would run another venv's interpreter
    (a venv copied from another worktree keeps that worktree's shebang and editable install)."""
    dagster = repo / ".venv" / "bin" / "dagster"
    if not dagster.exists():
        raise SystemExit(f"{dagster} does not exist: create the checkout's venv (make install in {repo})")
    shebang = dagster.read_text().splitlines()[0]
    interpreter = Path(shebang[2:].strip())
    if interpreter.parent.resolve() != dagster.parent.resolve():
        raise SystemExit(f"{dagster} starts {shebang!r}, not {dagster.parent}/python; recreate that venv")
    return dagster


def revision(repo: Path) -> str:
    """Short commit of the checkout, ``+dirty`` when its tracked files differ from it."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return commit + ("+dirty" if dirty else "")


def output_tables(database: str) -> list[str]:
    """Tables of ``database`` other than the two sources (lab_assets' own, from earlier builds)."""
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            " AND table_name NOT IN (%s, %s) ORDER BY table_name",
            (database, *SOURCE_TABLES),
        )
        return [str(row[0]) for row in cursor.fetchall()]


def run_build(repo: Path, database: str, full: bool, log_path: Path) -> Build:
    """One lab_assets build: the checkout's CLI as a cold process, cwd the checkout."""
    dagster = checkout_dagster(repo)
    arguments = [*FULL_REFRESH, "--tags", json.dumps(FULL_REFRESH_TAGS)] if full else list(MATERIALIZE_ALL)
    command = [str(dagster), *arguments]
    with tempfile.TemporaryDirectory(prefix="lab_writer_delay_dagster_home_") as home:
        env = {**os.environ, "LAB_DB_URL": database_url(database), "DAGSTER_HOME": home}
        # Outputs go to bench_<size> itself, and only the checkout's own code is imported.
        for name in ("LAB_OUTPUT_DATABASE", "PYTHONPATH"):
            env.pop(name, None)
        with log_path.open("w") as log:
            started = time.perf_counter()
            exit_code = subprocess.run(
                command, env=env, cwd=repo, stdout=log, stderr=subprocess.STDOUT, check=False
            ).returncode
            seconds = time.perf_counter() - started
    steps: dict[str, float] = {}
    for line in log_path.read_text().splitlines():
        finished = FINISHED_STEP.search(line)
        if finished:
            value = float(finished.group("value")) / (1000 if finished.group("unit") == "ms" else 1)
            steps[finished.group("step")] = round(value, 2)
    return Build(command, started, seconds, exit_code, log_path, steps)


def percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for none)."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency_summary(statements: list[Statement]) -> dict[str, float | int]:
    ordered = sorted(s.seconds * 1000 for s in statements)
    return {
        "updates": len(ordered),
        "max_ms": round(ordered[-1], 1) if ordered else 0.0,
        "p99_ms": round(percentile(ordered, 0.99), 1),
        "p50_ms": round(percentile(ordered, 0.50), 1),
        "over_100ms": sum(1 for ms in ordered if ms > 100),
        "over_1s": sum(1 for ms in ordered if ms > 1000),
        "errors": sum(1 for s in statements if s.error),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=lambda s: int(s.replace("_", "")), default=1_000_000, help="samples")
    parser.add_argument("--reuse", action="store_true", help="keep bench_<size> source data from an earlier run")
    parser.add_argument(
        "--repo", type=Path, default=ROOT, help="the lab_assets checkout whose CLI is run (default: this one)"
    )
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between the lab's pairs of UPDATEs")
    parser.add_argument(
        "--full", action="store_true", help='tag the run {"lab_assets/refresh": "full"}: rebuild every table whole'
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the lab writer's sample choice")
    parser.add_argument(
        "--open-transaction",
        action="store_true",
        help="another lab session holds row locks on both source tables in a transaction left open throughout",
    )
    args = parser.parse_args()
    repo = args.repo.resolve()
    checkout_dagster(repo)  # refuse a bad checkout before generating any data

    database = prepare_database(args.size, args.reuse)
    existing = output_tables(database)
    if existing and not args.full:
        print(
            f"note: {database} already holds lab_assets tables ({', '.join(existing)}): without --full this"
            " build is incremental, not a full refresh",
            flush=True,
        )
    log_dir = ROOT / "bench" / "out"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{database}_lab_writer_delay_{repo.name}.log"
    load1 = os.getloadavg()[0]

    writer = LabWriter(database, args.interval, args.seed)
    holder = OpenTransaction(database, writer.first_id, writer.last_id) if args.open_transaction else None
    writer.avoid = frozenset(holder.samples if holder else ())
    print(
        f"lab writer on {database} (samples {writer.first_id}..{writer.last_id}, {writer.isolation},"
        f" every {args.interval} s); building with {repo} ({revision(repo)}){' --full' if args.full else ''}"
        + (f"; a lab transaction holds samples {holder.samples}" if holder else ""),
        flush=True,
    )
    try:
        writer.start()
        time.sleep(WRITER_LEAD_SECONDS)
        build = run_build(repo, database, args.full, log_path)
        time.sleep(WRITER_LEAD_SECONDS)
        writer.stop.set()
        writer.join()  # a statement still waiting on a lock ends within innodb_lock_wait_timeout
    finally:
        if holder is not None:
            holder.close()

    statements = writer.statements
    summary = latency_summary(statements)
    errors = Counter(s.error for s in statements if s.error)
    during = [s for s in statements if build.started <= s.at <= build.started + build.seconds]
    worst = sorted(statements, key=lambda s: s.seconds, reverse=True)[:5]
    result = {
        "checkout": str(repo),
        "revision": revision(repo),
        "samples": args.size,
        "database": database,
        "full": args.full,
        "open_transaction_samples": holder.samples if holder else [],
        "outputs_before": existing,
        "command": " ".join(build.command[1:]),
        "build_s": round(build.seconds, 2),
        "build_exit": build.exit_code,
        "build_steps_s": build.steps,
        **summary,
        "error_messages": dict(errors),
        "per_table": {table: latency_summary([s for s in statements if s.table == table]) for table, _ in LAB_UPDATES},
        "during_build": latency_summary(during),
        # the slowest statements, started this many seconds after the build started
        "slowest": [
            {
                "table": s.table,
                "ms": round(s.seconds * 1000, 1),
                "at_s": round(s.at - build.started, 2),
                "error": s.error,
            }
            for s in worst
        ],
        "interval_s": args.interval,
        "writer_isolation": writer.isolation,
        "lock_wait_timeout_s": LAB_LOCK_WAIT_TIMEOUT_SECONDS,
        "load1_before": round(load1, 2),
        "log": str(build.log_path),
    }
    header = (
        "| checkout | samples | build | build s | lab UPDATEs | max ms | p99 ms | p50 ms | > 100 ms | > 1 s | errors |"
    )
    error_text = "; ".join(f"{count}x {message}" for message, count in errors.items()) or "0"
    row = (
        f"| {repo.name} {result['revision']} | {args.size:,} | {'full (tagged)' if args.full else 'plain'}"
        f"{', lab transaction open' if holder else ''}"
        f"{'' if build.exit_code == 0 else f' FAILED (exit {build.exit_code})'} | {build.seconds:.2f}"
        f" | {summary['updates']} | {summary['max_ms']:.1f} | {summary['p99_ms']:.1f} | {summary['p50_ms']:.1f}"
        f" | {summary['over_100ms']} | {summary['over_1s']} | {error_text} |"
    )
    print()
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    print(row)
    print()
    print(json.dumps(result))
    if build.exit_code != 0:
        print(f"the lab_assets build failed (exit {build.exit_code}); see {build.log_path}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
