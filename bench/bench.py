"""Speed at scale: lab_assets' full refresh vs a plain-SQL reference build of the same table.

For each size (samples generated in the seed's distribution, see lab_assets_tests.lab_data):

1. generate the source rows into a throwaway database ``<prefix>_<size>`` (not timed; streamed in
   chunks of 100k samples, so 10M samples fit in a few hundred MiB);
2. time the plain-SQL reference build of ``experiment_measurements_reference``: one recursive CTE
   for the roots, one ``MAX(CASE ...)`` pivot, one ``INSERT ... SELECT`` (same columns and keys
   as experiment_measurements); a statement still running after ``--reference-timeout`` seconds
   is killed (``KILL QUERY`` from a second connection) and reported as "> N s (killed)";
3. time lab_assets through its CLI contract from a cold process (``dagster asset materialize -m
   lab_assets.definitions --select '*'`` with a fresh temporary DAGSTER_HOME): wall seconds, the
   peak PSS of the process tree (summed over the tree, polled from /proc) and the kernel's
   high-water RSS of the largest single process;
4. verify both tables whole against an independent recomputation in Python (lab_data's rules:
   roots by walking parent pointers, pivot with dictionaries), read in sample-id chunks so that
   10M rows verify in bounded memory; every row and cell, column names and order, row count;
5. time a quiet sensor tick, then as many rounds as builds of a 1% change followed by the
   sensor's refresh job (cold process); verify the refreshed table whole;
6. print median and spread (min-max) of the runs, time per million rows and the growth curve
   (and, with --markdown, a Markdown copy for bench/RESULTS.md; with --json, the raw runs).

Usage: ``make bench`` or ``.venv/bin/python bench/bench.py --sizes 100k,1M,3M,10M``.
Needs the local server (LAB_BENCH_SERVER_URL, default mysql+pymysql://root@127.0.0.1:3306); only
databases named ``<prefix>_<size>`` (default ``bench_<size>``) are created, replaced and (with
--drop) dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pymysql
import pymysql.cursors
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab_assets.local_lab import source_schema_statements  # noqa: E402
from lab_assets_tests.lab_data import (  # noqa: E402
    generate_chunks,
    insert,
    server_connection,
)

SERVER_URL = sa.make_url(os.environ.get("LAB_BENCH_SERVER_URL", "mysql+pymysql://root@127.0.0.1:3306"))
REFERENCE_TABLE = "experiment_measurements_reference"
SEED_ROWS = 20
# Server variables recorded with the results (SHOW VARIABLES).
RELEVANT_VARIABLES = (
    "version",
    "innodb_buffer_pool_size",
    "innodb_log_file_size",
    "innodb_log_buffer_size",
    "innodb_flush_log_at_trx_commit",
    "innodb_doublewrite",
    "innodb_flush_method",
    "innodb_io_capacity",
    "innodb_autoinc_lock_mode",
    "innodb_adaptive_hash_index",
    "innodb_change_buffering",
    "log_bin",
    "sync_binlog",
    "tmp_table_size",
    "max_heap_table_size",
    "tmp_memory_table_size",
    "sort_buffer_size",
    "join_buffer_size",
    "join_cache_level",
    "aria_pagecache_buffer_size",
    "max_recursive_iterations",
    "cte_max_recursion_depth",
)


def _one(cursor) -> tuple:
    """The next row of a query that always gives one (COUNT, MAX, @@version)."""
    row = cursor.fetchone()
    assert row is not None, "the query gave no row"
    return row


def connect(database: str | None = None) -> pymysql.connections.Connection:
    return server_connection(SERVER_URL, database)


def database_url(database: str) -> str:
    return SERVER_URL.set(database=database).render_as_string(hide_password=False)


# --------------------------------------------------------------------------------------------
# 1. data


def parse_size(text: str) -> int:
    """``100k``, ``1M``, ``2.5M``, ``1_000_000`` or ``300000`` -> sample count."""
    text = text.strip().replace("_", "")
    multiplier = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    number = text[:-1] if multiplier != 1 else text
    value = float(number) * multiplier
    if value != int(value) or value < 0:
        raise argparse.ArgumentTypeError(f"not a sample count: {text!r}")
    return int(value)


def peak_rss_mib() -> float:
    """High-water RSS of this (bench) process."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


GENERATE_CHUNK_SAMPLES = 100_000


def prepare_database(size: int, reuse: bool, prefix: str = "bench", database: str | None = None) -> str:
    """``database`` (default ``<prefix>_<size>``) holding the source schema, the 20 fixed samples
    and ``size`` generated samples (lab_data.generate's rows, produced and inserted in chunks).
    With ``reuse``, an existing database with the right sample count is kept."""
    database = database or f"{prefix}_{size}"
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (database,))
        if reuse and cursor.fetchone():
            cursor.execute(f"SELECT COUNT(*) FROM `{database}`.samples")
            if _one(cursor)[0] == size + SEED_ROWS:
                print(f"[{size}] reusing {database}", flush=True)
                return database
        started = time.monotonic()
        cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cursor.execute(f"CREATE DATABASE `{database}`")
    generating = inserting = 0.0
    with connect(database) as connection:
        with connection.cursor() as cursor:
            for statement in source_schema_statements():
                cursor.execute(statement)
        chunks = generate_chunks(size, chunk_samples=GENERATE_CHUNK_SAMPLES)
        while True:
            step = time.monotonic()
            chunk = next(chunks, None)
            generating += time.monotonic() - step
            if chunk is None:
                break
            step = time.monotonic()
            insert(connection, *chunk)
            inserting += time.monotonic() - step
        step = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE TABLE samples, sample_measurements")
            cursor.fetchall()
        analyzing = time.monotonic() - step
    print(
        f"[{size}] generated {database} in {time.monotonic() - started:.1f} s (Python rows {generating:.1f} s,"
        f" INSERTs {inserting:.1f} s, ANALYZE {analyzing:.1f} s; bench process peak RSS {peak_rss_mib():.0f} MiB)",
        flush=True,
    )
    return database


def drop_outputs(database: str) -> None:
    """Drops every table but the two sources, so each timed build starts from nothing."""
    with connect(database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            " AND table_name NOT IN ('samples', 'sample_measurements')",
            (database,),
        )
        names = [row[0] for row in cursor.fetchall()]
        if names:
            cursor.execute("DROP TABLE " + ", ".join(f"`{n}`" for n in names))


# --------------------------------------------------------------------------------------------
# 2. the plain-SQL reference


@dataclass
class ReferenceRun:
    seconds: float  # with ``killed``: the time limit it was killed at
    steps: dict[str, float]
    killed: bool = False


# MariaDB / MySQL: "Query execution was interrupted" (KILL QUERY, max_statement_time).
ER_QUERY_INTERRUPTED = 1317


def reference_build(database: str, timeout: float | None = None) -> ReferenceRun:
    """The straightforward build: one recursive CTE, one MAX(CASE) pivot, one INSERT ... SELECT.
    Written independently of lab_assets' SQL builders. The INSERT ... SELECT is killed (KILL QUERY
    from a second connection) once the build has run ``timeout`` seconds; its table is then
    dropped (whatever the rollback left)."""
    steps: dict[str, float] = {}
    with connect(database) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS `{REFERENCE_TABLE}`")
        started = time.monotonic()
        cursor.execute("SELECT DISTINCT measurement_type FROM sample_measurements WHERE measurement_type IS NOT NULL")
        types = sorted(r[0] for r in cursor.fetchall())
        assert all(t.isidentifier() and t.islower() for t in types), types  # the generator's types only
        cursor.execute("SELECT COUNT(*) FROM samples")
        (count,) = _one(cursor)
        cursor.execute("SELECT @@version")
        mariadb = "mariadb" in _one(cursor)[0].lower()
        variable = "max_recursive_iterations" if mariadb else "cte_max_recursion_depth"
        cursor.execute(f"SET SESSION {variable} = {count + 1}")
        measurement_columns = [f"measurement_{t}" for t in types]
        cursor.execute(
            f"CREATE TABLE `{REFERENCE_TABLE}` (experiment_id INT NULL, top_parent_id INT NULL,"
            " sample_id INT NOT NULL, "
            + "".join(f"`{c}` DECIMAL(16,6) NULL, " for c in measurement_columns)
            + "PRIMARY KEY (sample_id), KEY (top_parent_id), KEY (experiment_id))"
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        )
        steps["prepare"] = round(time.monotonic() - started, 2)
        pivots = ", ".join(
            f"MAX(CASE WHEN measurement_type = '{t}' THEN value END) AS `measurement_{t}`" for t in types
        )
        column_list = "".join(f", `{c}`" for c in measurement_columns)
        insert_sql = f"""INSERT INTO `{REFERENCE_TABLE}` (experiment_id, top_parent_id, sample_id{column_list})
WITH RECURSIVE tree (sample_id, top_parent_id) AS (
  SELECT id, id FROM samples WHERE parent_id IS NULL
  UNION ALL
  SELECT child.id, tree.top_parent_id FROM tree JOIN samples AS child ON child.parent_id = tree.sample_id
)
SELECT s.experiment_id, tree.top_parent_id, s.id{"".join(f", pivot.`{c}`" for c in measurement_columns)}
FROM samples AS s
LEFT JOIN tree ON tree.sample_id = s.id
LEFT JOIN (SELECT sample_id, {pivots} FROM sample_measurements GROUP BY sample_id) AS pivot ON pivot.sample_id = s.id"""
        step_started = time.monotonic()
        killer, state = None, {"running": True, "killed": False}
        lock = threading.Lock()
        if timeout:
            thread_id = connection.thread_id()

            def kill() -> None:
                with lock:
                    if not state["running"]:
                        return
                    state["killed"] = True
                    with connect() as second, second.cursor() as other:
                        other.execute(f"KILL QUERY {int(thread_id)}")

            killer = threading.Timer(max(0.0, timeout - (step_started - started)), kill)
            killer.daemon = True
            killer.start()
        try:
            cursor.execute(insert_sql)
        except pymysql.err.OperationalError as error:
            if not (state["killed"] and error.args[0] == ER_QUERY_INTERRUPTED):
                raise
        finally:
            with lock:
                state["running"] = False
            if killer is not None:
                killer.cancel()
        steps["insert_select"] = round(time.monotonic() - step_started, 2)
        if state["killed"]:
            # Seconds until the statement came back (the rollback of the partial INSERT included).
            steps["until_killed_statement_returned"] = steps.pop("insert_select")
            cursor.execute(f"DROP TABLE IF EXISTS `{REFERENCE_TABLE}`")
            return ReferenceRun(float(timeout or 0), steps, killed=True)
        return ReferenceRun(time.monotonic() - started, steps)


# --------------------------------------------------------------------------------------------
# 3. lab_assets through the CLI


def _memory_kib(pid: int) -> int:
    """Proportional set size (PSS) of one process: shared pages count once across the tree, so
    a child forked just before exec does not double the parent's memory. VmRSS as a fallback."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, PermissionError):
        pass
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _tree_memory_bytes(root_pid: int, breakdown: dict[int, int] | None = None) -> int:
    """Memory (PSS) summed over ``root_pid`` and all its descendants (from /proc); ``breakdown``
    receives pid -> bytes."""
    total, pending, seen = 0, [root_pid], set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            memory = _memory_kib(pid) * 1024
            total += memory
            if breakdown is not None:
                breakdown[pid] = memory
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    pending += [int(c) for c in children.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


@dataclass
class CliRun:
    seconds: float
    peak_tree_rss: int  # bytes, PSS summed over the process tree, polled every MEMORY_POLL_SECONDS
    max_child_rss: int  # bytes, high-water RSS of the largest process (/usr/bin/time %M)
    step_seconds: dict[str, float] = field(default_factory=dict)
    largest_process: str = ""  # the command of the process with the highest VmHWM seen by the poller
    largest_process_hwm: int = 0  # bytes, its VmHWM (last poll before it ended)

    @property
    def largest_process_rss(self) -> int:
        """Peak RSS of the largest single process of the run: the kernel's exact high-water mark
        (/usr/bin/time %M, the largest of dagster and its reaped children), or the poller's
        VmHWM if that is higher (a child not waited for)."""
        return max(self.max_child_rss, self.largest_process_hwm)


def _high_water_kib(pid: int) -> int:
    """VmHWM: the kernel's high-water RSS of one process (cheap to read, no page-table walk)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as cmdline:
            return cmdline.read().replace("\0", " ").strip()
    except OSError:
        return "?"


# Reading a process's PSS (/proc/<pid>/smaps_rollup) walks its page tables under the process's
# memory lock, so polling it often slows the run being timed (bench/RESULTS.md, "The bench polls
# memory every 0.25 s"). Every 0.25 s the walk costs little, and the peaks it looks for (bulk
# loads, the pandas catalog) last longer than that.
MEMORY_POLL_SECONDS = 0.25

STEP_LINE = re.compile(
    r"\.(?P<table>\w+): (?:table swapped in|rows replaced|partition replaced), \d+ rows written,"
    r" \d+ columns, (?P<seconds>[\d.]+) s"
)


# Dagster prints "in 812ms", "in 12.85s" or, from a minute on, "in 1m3s".
FINISHED_STEP = re.compile(
    r'Finished execution of step "(?P<step>[^"]+)" in (?:(?P<minutes>\d+)m)?(?P<value>[\d.]+)(?P<unit>ms|s)\b'
)
MATERIALIZE_ALL = ("asset", "materialize", "-m", "lab_assets.definitions", "--select", "*")
# What the source-change sensor launches: the tables, every check reported by their steps.
REFRESH_JOB = ("job", "execute", "-m", "lab_assets.definitions", "-j", "lab_refresh")


def lab_assets_cli_build(
    database: str, log_dir: Path, command: tuple[str, ...] = MATERIALIZE_ALL, round_number: int = 0
) -> CliRun:
    """``dagster <command>`` (by default the CLI contract ``dagster asset materialize -m
    lab_assets.definitions --select '*'``) as a cold subprocess."""
    dagster = Path(sys.executable).with_name("dagster")
    # The console script must run this interpreter (a venv copied from another worktree keeps
    # that worktree's shebang and its editable install, and would time the other code).
    shebang = dagster.read_text().splitlines()[0]
    if Path(shebang[2:].strip()).parent != Path(sys.executable).parent:
        raise SystemExit(f"{dagster} starts {shebang!r}, not {sys.executable}; recreate the venv")
    with tempfile.TemporaryDirectory(prefix="bench_dagster_home_") as home:
        env = {**os.environ, "LAB_DB_URL": database_url(database), "DAGSTER_HOME": home}
        # One log per round (bench/out/<database>_lab_assets_<asset|job>_<round>.log, with .maxrss
        # and .peak: the tree at its PSS peak and every process's VmHWM), kept to check a peak.
        log_path = log_dir / f"{database}_lab_assets_{command[0]}_{round_number + 1}.log"
        with log_path.open("w") as log:
            started = time.monotonic()
            # /usr/bin/time reports the kernel's high-water RSS of the largest process in the tree
            # (exact, no polling gaps); the poller below adds up PSS over the whole tree.
            process = subprocess.Popen(
                ["/usr/bin/time", "-f", "%M", "-o", str(log_path.with_suffix(".maxrss")), str(dagster), *command],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            peak = 0
            peak_breakdown: list[str] = []
            high_water: dict[int, int] = {}  # pid -> VmHWM bytes
            commands: dict[int, str] = {}
            done = threading.Event()

            def poll() -> None:
                nonlocal peak
                while not done.is_set():
                    breakdown: dict[int, int] = {}
                    memory = _tree_memory_bytes(process.pid, breakdown)
                    for pid in breakdown:
                        # Read every time: a child seen between fork and exec shows no (or its
                        # parent's) command line.
                        command = _command_line(pid)
                        if command != "?":
                            commands[pid] = command
                        commands.setdefault(pid, command)
                        high_water[pid] = max(high_water.get(pid, 0), _high_water_kib(pid) * 1024)
                    if memory > peak:
                        peak = memory
                        peak_breakdown.clear()
                        for pid, pid_memory in breakdown.items():
                            peak_breakdown.append(f"{pid} {pid_memory / 2**20:.0f} MiB {commands[pid][:120]}")
                    done.wait(MEMORY_POLL_SECONDS)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            return_code = process.wait()
            seconds = time.monotonic() - started
            done.set()
            poller.join()
        max_child = int(log_path.with_suffix(".maxrss").read_text().split()[-1]) * 1024
        if return_code != 0:
            raise SystemExit(f"lab_assets build failed (exit {return_code}); see {log_path}")
        text = log_path.read_text()
        largest = max(high_water, key=lambda pid: high_water[pid], default=None)
        # "python /…/.venv/bin/dagster asset materialize …" -> "dagster asset materialize"
        largest_command = "" if largest is None else " ".join(commands[largest].split()[1:4]).rsplit("/", 1)[-1]
        log_path.with_suffix(".peak").write_text(
            "\n".join(peak_breakdown)
            + "\nVmHWM per process:\n"
            + "\n".join(f"{pid} {hwm / 2**20:.0f} MiB {commands[pid][:120]}" for pid, hwm in high_water.items())
            + "\n"
        )
    steps = {}
    for line in text.splitlines():
        # "bench_x.sample_lineage: table swapped in, 1000020 rows written, 5 columns, 4.21 s"
        # (the IO manager's log line per table written)
        match = STEP_LINE.search(line)
        if match:
            steps[match.group("table")] = float(match.group("seconds"))
        # Whole Dagster steps (assets with their change detection, and checks).
        finished = FINISHED_STEP.search(line)
        if finished:
            value = float(finished.group("value")) / (1000 if finished.group("unit") == "ms" else 1)
            value += 60 * int(finished.group("minutes") or 0)
            steps[f"step:{finished.group('step')}"] = round(value, 2)
    return CliRun(
        seconds,
        peak,
        max_child,
        steps,
        largest_command,
        0 if largest is None else high_water[largest],
    )


# --------------------------------------------------------------------------------------------
# the sensor's quiet tick and the 1% refresh


def quiet_sensor_tick(database: str) -> float:
    """Seconds of a sensor tick on unchanged data: one tick records the cursor (it hashes the
    tables), a second one, a second later, is the quiet tick that is timed."""
    from dagster import DagsterInstance, SensorResult, build_sensor_context

    from lab_assets.defs.sensors import lab_source_change_sensor
    from lab_assets.mysql.resource import MySQLResource

    resources = {"mysql": MySQLResource(url=database_url(database))}
    with DagsterInstance.ephemeral() as instance:
        first = lab_source_change_sensor(build_sensor_context(instance=instance, resources=resources))
        cursor = first.cursor if isinstance(first, SensorResult) else None
        time.sleep(1.1)  # past the UPDATE_TIME second of the last write
        started = time.monotonic()
        quiet = lab_source_change_sensor(build_sensor_context(cursor=cursor, instance=instance, resources=resources))
        seconds = time.monotonic() - started
        if isinstance(quiet, SensorResult) and quiet.run_requests:
            raise SystemExit("the quiet sensor tick requested a run on unchanged data")
        return seconds


def change_one_percent(database: str, round_number: int = 0) -> int:
    """Changes 1% of the samples the way a lab does: corrected values for 1% of the samples and
    10 samples moved to become roots (their subtrees change root; another 10 in every round, so
    each round moves samples). Returns the samples touched."""
    with connect(database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sample_measurements SET value = value + 1 WHERE sample_id % 100 = 0 AND measurement_type = 'vol'"
        )
        cursor.execute(
            "SELECT COUNT(DISTINCT sample_id) FROM sample_measurements"
            " WHERE sample_id % 100 = 0 AND measurement_type = 'vol'"
        )
        (touched,) = _one(cursor)
        cursor.execute("SELECT MAX(id) FROM samples")
        (max_id,) = _one(cursor)
        moved = [max_id * k // 11 - round_number for k in range(1, 11)]
        cursor.execute(f"UPDATE samples SET parent_id = NULL WHERE id IN ({', '.join(map(str, moved))})")
        connection.commit()
    return int(touched) + len(moved)


def one_percent_refresh(database: str, log_dir: Path, round_number: int = 0) -> tuple[CliRun, int]:
    """The sensor's refresh run (job ``lab_refresh``, cold process) after
    :func:`change_one_percent`: incremental, the tables of the last build are there."""
    touched = change_one_percent(database, round_number)
    return lab_assets_cli_build(database, log_dir, REFRESH_JOB, round_number), touched


# --------------------------------------------------------------------------------------------
# 4. verification


# Sample ids per verification chunk: ~200k expected and ~200k actual rows in memory per table.
VERIFY_CHUNK_SAMPLES = 200_000
NOT_A_SAMPLE, NULL_PARENT = -1, -2  # parent array codes
UNRESOLVED, NO_ROOT = -1, -2  # root array codes (NO_ROOT: a cycle or a missing parent: NULL)


def roots_by_id(parent: array) -> array:
    """id -> root id by walking parent pointers, the rules of lab_data.roots_and_depths (a walk
    that hits a cycle or a parent that is not a sample gives NO_ROOT), on compact arrays indexed
    by id (``parent[id]``: the parent id, NULL_PARENT or NOT_A_SAMPLE)."""
    size = len(parent)
    root = array("q", [UNRESOLVED]) * size
    for start in range(size):
        first_parent = parent[start]
        if first_parent == NOT_A_SAMPLE:
            continue
        if first_parent == NULL_PARENT:
            root[start] = start
            continue
        if 0 <= first_parent < size and root[first_parent] != UNRESOLVED:
            root[start] = root[first_parent]  # the parent is resolved already (the common case)
            continue
        path: list[int] = []
        on_path: set[int] = set()
        node = start
        while True:
            if not 0 <= node < size or parent[node] == NOT_A_SAMPLE or node in on_path:
                found = NO_ROOT
                break
            if root[node] != UNRESOLVED:
                found = root[node]
                break
            if parent[node] == NULL_PARENT:
                found = root[node] = node
                break
            path.append(node)
            on_path.add(node)
            node = parent[node]
        for walked in path:
            root[walked] = found
    return root


def verify_tables_whole(database: str, tables: list[str], expected_samples: int) -> float:
    """Compares each of ``tables`` whole (column names and order, every row, every cell, the row
    count) with an independent recomputation in Python from the source rows, by the rules of
    lab_data.expected_flat_table (roots by walking parent pointers; per (sample, type) the largest
    non-NULL value; a column per type measured on an existing sample). Parent pointers are held
    in arrays; rows are recomputed and compared in sample-id chunks, so memory stays bounded at
    10M samples. Raises on any difference; returns the seconds taken."""
    started = time.monotonic()
    differences: list[str] = []
    with connect(database) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*), MIN(id), MAX(id) FROM samples")
            count, min_id, max_id = _one(cursor)
        if count != expected_samples:
            raise AssertionError(f"{database}: {count} samples, expected {expected_samples}")
        if count and (min_id < 0 or max_id > 4 * count + 1_000_000):
            raise AssertionError(f"{database}: sample ids {min_id}..{max_id} too sparse for the array walk")
        id_limit = (max_id or 0) + 1
        parent = array("q", [NOT_A_SAMPLE]) * id_limit
        with connection.cursor(pymysql.cursors.SSCursor) as cursor:
            cursor.execute("SELECT id, parent_id FROM samples")
            for sample_id, parent_id in cursor:
                parent[sample_id] = (
                    NULL_PARENT if parent_id is None else parent_id if 0 <= parent_id < id_limit else id_limit
                )
        root = roots_by_id(parent)
        del parent
        names: dict[str, list[str]] = {}
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
                    " ORDER BY ordinal_position",
                    (database, table),
                )
                names[table] = [r[0] for r in cursor.fetchall()]
        types_seen: set[str] = set()
        rows_seen = dict.fromkeys(tables, 0)
        for low in range(0, id_limit, VERIFY_CHUNK_SAMPLES):
            high = low + VERIFY_CHUNK_SAMPLES - 1
            with connection.cursor() as cursor:
                cursor.execute("SELECT id, experiment_id FROM samples WHERE id BETWEEN %s AND %s", (low, high))
                expected: dict[int, tuple[object, object, dict[str, object]]] = {
                    sample_id: (experiment_id, None if root[sample_id] < 0 else root[sample_id], {})
                    for sample_id, experiment_id in cursor.fetchall()
                }
                cursor.execute(
                    "SELECT sample_id, measurement_type, value FROM sample_measurements"
                    " WHERE sample_id BETWEEN %s AND %s",
                    (low, high),
                )
                for sample_id, measurement_type, value in cursor.fetchall():
                    if sample_id not in expected or measurement_type is None:
                        continue
                    types_seen.add(measurement_type)
                    values = expected[sample_id][2]
                    if value is not None and (values.get(measurement_type) is None or value > values[measurement_type]):
                        values[measurement_type] = value
                for table in tables:
                    columns = names[table]
                    if columns[:3] != ["experiment_id", "top_parent_id", "sample_id"]:
                        continue  # reported below
                    types = [c.removeprefix("measurement_") for c in columns[3:]]
                    cursor.execute(
                        f"SELECT {', '.join(f'`{c}`' for c in columns)} FROM `{table}`"
                        " WHERE sample_id BETWEEN %s AND %s",
                        (low, high),
                    )
                    actual = {row[2]: tuple(row) for row in cursor.fetchall()}
                    rows_seen[table] += len(actual)
                    for sample_id in sorted(expected.keys() | actual.keys()):
                        want = expected.get(sample_id)
                        wanted = (
                            None if want is None else (want[0], want[1], sample_id, *(want[2].get(t) for t in types))
                        )
                        got = actual.get(sample_id)
                        if got != wanted and len(differences) < 10:
                            differences.append(f"{table} sample {sample_id}: got {got} want {wanted}")
        expected_names = [
            "experiment_id",
            "top_parent_id",
            "sample_id",
            *sorted(f"measurement_{t}" for t in types_seen),
        ]
        with connection.cursor() as cursor:
            for table in tables:
                if names[table] != expected_names:
                    differences.append(f"{table}: columns {names[table]} != expected {expected_names}")
                cursor.execute(f"SELECT COUNT(*) FROM `{table}`")
                (table_rows,) = _one(cursor)
                if table_rows != count or rows_seen[table] != count:
                    differences.append(
                        f"{table}: {table_rows} rows ({rows_seen[table]} in the id range), expected {count}"
                    )
    if differences:
        raise AssertionError(f"{database} differs from the recomputation:\n  " + "\n  ".join(differences))
    return time.monotonic() - started


# --------------------------------------------------------------------------------------------
# 5. report


def server_facts() -> dict[str, str]:
    with connect() as connection, connection.cursor() as cursor:
        placeholders = ", ".join(["%s"] * len(RELEVANT_VARIABLES))
        cursor.execute(f"SHOW GLOBAL VARIABLES WHERE variable_name IN ({placeholders})", RELEVANT_VARIABLES)
        return {name: value for name, value in cursor.fetchall()}


def machine_facts() -> dict[str, str]:
    with open("/proc/meminfo") as meminfo:
        total_kib = int(next(line for line in meminfo if line.startswith("MemTotal:")).split()[1])
    cpu = "?"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{total_kib / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


MEMORY_LIMIT_MIB = 300  # the target: Python peak memory at most 300 MB at every size


def auto_repeat(size: int) -> int:
    """Timed rounds per size when --repeat is not given: 3 up to 1M samples, 2 up to 3M, 1 above
    (one round at 10M already takes many minutes)."""
    return 3 if size <= 1_000_000 else 2 if size <= 3_000_000 else 1


def median_run_index(values: list[float]) -> int:
    """Index of the median run (the lower of the two middle runs when the count is even)."""
    return sorted(range(len(values)), key=lambda i: values[i])[(len(values) - 1) // 2]


def fmt_spread(values: list[float]) -> str:
    """``median (min-max)``; one run: ``value (1 run)``."""
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.2f} (1 run)"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def fmt_reference(r: dict) -> str:
    reference = r["reference"]
    if reference is None:
        return "skipped"
    if reference["killed_at"] is not None:
        done = f"; {fmt_spread(reference['runs'])} in the runs before" if reference["runs"] else ""
        return f"> {reference['killed_at']:g} (killed{done})"
    return fmt_spread(reference["runs"])


def reference_killed_at(r: dict) -> float | None:
    """The time limit the reference was killed at, None when it completed (or was skipped)."""
    return None if r["reference"] is None else r["reference"]["killed_at"]


def reference_median(r: dict) -> float | None:
    reference = r["reference"]
    if reference is None or reference["killed_at"] is not None or not reference["runs"]:
        return None
    return statistics.median(reference["runs"])


def per_million(r: dict, seconds: float | None, killed: bool = False) -> str:
    if seconds is None:
        return "n/a"
    return f"{'> ' if killed else ''}{seconds / (r['rows'] / 1e6):.1f}"


def fmt_memory(mib: float) -> str:
    return f"**{mib:.0f} (over {MEMORY_LIMIT_MIB})**" if mib > MEMORY_LIMIT_MIB else f"{mib:.0f}"


def report_lines(rows: list[dict]) -> list[str]:
    header = (
        "| samples | reference s, median (min-max) | full refresh with checks s, median (min-max) | build/ref"
        " | 1% refresh s, median (min-max) | refresh/full | s per 1M rows: reference / full refresh / refresh"
        " | largest Python process, peak RSS MiB | process tree, peak PSS MiB | quiet sensor tick s | rounds"
        " | verified whole |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        ref = reference_median(r)
        killed_at = reference_killed_at(r)
        build = statistics.median(r["build"]["runs"])
        refresh = statistics.median(r["refresh"]["runs"]) if r["refresh"]["runs"] else None
        ref_per_million = per_million(r, killed_at or ref, killed_at is not None)
        lines.append(
            f"| {r['samples']:,} | {fmt_reference(r)} | {fmt_spread(r['build']['runs'])}"
            f" | {'n/a' if ref is None else f'{build / ref:.2f}x'}"
            f" | {fmt_spread(r['refresh']['runs'])} | {'n/a' if refresh is None else f'{refresh / build:.2f}x'}"
            f" | {ref_per_million} / {per_million(r, build)} / {per_million(r, refresh)}"
            f" | {fmt_memory(r['memory']['largest_process_mib'])} | {fmt_memory(r['memory']['tree_pss_mib'])}"
            f" | {'n/a' if r['tick'] is None else format(r['tick'], '.3f')} | {r['repeat']}"
            f" | {'yes' if r['verified'] else 'NO'} |"
        )
    return lines


def growth_lines(rows: list[dict]) -> list[str]:
    """Seconds per million rows by size (medians), and the growth from the size before: time
    ratio for the rows ratio (equal ratios = linear)."""
    header = (
        "| samples | reference s/1M rows | growth | full refresh s/1M rows | growth | 1% refresh s/1M rows | growth |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    previous: dict | None = None

    def growth(now: float | None, before: float | None, now_killed: bool = False) -> str:
        if previous is None or now is None or before is None:
            return ""
        factor = r["rows"] / previous["rows"]
        return f"{'> ' if now_killed else ''}{now / before:.1f}x for {factor:.1f}x rows"

    for r in rows:
        killed_at = reference_killed_at(r)
        killed = killed_at is not None
        ref = killed_at if killed else reference_median(r)
        build = statistics.median(r["build"]["runs"])
        refresh = statistics.median(r["refresh"]["runs"]) if r["refresh"]["runs"] else None
        before_ref = before_build = before_refresh = None
        if previous is not None:
            before_ref = reference_median(previous)
            before_build = statistics.median(previous["build"]["runs"])
            before_refresh = statistics.median(previous["refresh"]["runs"]) if previous["refresh"]["runs"] else None
        lines.append(
            f"| {r['samples']:,} | {per_million(r, ref, killed)} | {growth(ref, before_ref, killed)}"
            f" | {per_million(r, build)} | {growth(build, before_build)}"
            f" | {per_million(r, refresh)} | {growth(refresh, before_refresh)} |"
        )
        previous = r
    return lines


def detail_lines(rows: list[dict]) -> list[str]:
    lines = []
    for r in rows:
        memory = r["memory"]
        lines.append(
            f"- {r['samples']:,} samples ({r['rows']:,} rows, `{r['database']}`, load1 before {r['load1']:.2f}):"
            f" reference steps (median run) {r['reference'] and r['reference']['steps']};"
            f" full refresh steps (median run) {r['build']['steps']};"
            f" refresh steps (median run) {r['refresh']['steps']};"
            f" largest process peak RSS {memory['build_largest_mib']:.0f} MiB in builds,"
            f" {memory['refresh_largest_mib']:.0f} MiB in refreshes ({memory['largest_process']});"
            f" verification {', '.join(f'{v:.0f} s' for v in r['verify_seconds']) or 'skipped'}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        default="100k,300k,1M",
        type=lambda text: [parse_size(s) for s in text.split(",") if s.strip()],
        help="comma-separated sample counts: 100k,1M,3M,10M or 100000,1_000_000",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help="timed rounds of each build and refresh (median and min-max reported); default: 3 up to 1M"
        " samples, 2 up to 3M, 1 above",
    )
    parser.add_argument(
        "--reference-timeout",
        type=float,
        default=1800,
        metavar="SECONDS",
        help="kill the reference build after this long and report '> SECONDS (killed)' (0: no limit)",
    )
    parser.add_argument("--reuse", action="store_true", help="keep <prefix>_<size> source data from an earlier run")
    parser.add_argument("--drop", action="store_true", help="drop <prefix>_<size> databases at the end")
    parser.add_argument("--prefix", default="bench", help="database name prefix (default bench: bench_<size>)")
    parser.add_argument("--generate-only", action="store_true", help="only create the source databases")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--skip-verify", action="store_true", help="timing only (never for reported numbers)")
    parser.add_argument("--markdown", type=Path, help="also write the results tables as Markdown here")
    parser.add_argument("--json", type=Path, help="also write every run's numbers as JSON here")
    args = parser.parse_args()
    log_dir = ROOT / "bench" / "out"
    log_dir.mkdir(parents=True, exist_ok=True)

    machine, server = machine_facts(), server_facts()
    print("machine:", ", ".join(f"{k}={v}" for k, v in machine.items()))
    print("server: ", ", ".join(f"{k}={v}" for k, v in server.items()))
    bench_started = time.monotonic()
    rows = []
    for size in args.sizes:
        repeat = args.repeat or auto_repeat(size)
        database = prepare_database(size, args.reuse, args.prefix)
        if args.generate_only:
            continue
        load1 = os.getloadavg()[0]
        reference_runs: list[ReferenceRun] = []
        lab_runs: list[CliRun] = []
        reference_in_place = False
        for attempt in range(repeat):
            drop_outputs(database)
            reference_in_place = False
            if not args.skip_reference and not any(r.killed for r in reference_runs):
                reference = reference_build(database, args.reference_timeout)
                reference_runs.append(reference)
                reference_in_place = not reference.killed
                print(
                    f"[{size}] reference run {attempt + 1}: "
                    + (f"killed after {reference.seconds:.0f} s" if reference.killed else f"{reference.seconds:.2f} s")
                    + f" {reference.steps}",
                    flush=True,
                )
            run = lab_assets_cli_build(database, log_dir, round_number=attempt)
            lab_runs.append(run)
            print(
                f"[{size}] lab_assets run {attempt + 1}: {run.seconds:.2f} s, peak tree memory (PSS)"
                f" {run.peak_tree_rss / 2**20:.0f} MiB, largest process peak RSS {run.largest_process_rss / 2**20:.0f}"
                f" MiB, steps {run.step_seconds}",
                flush=True,
            )
        verify_seconds: list[float] = []
        if not args.skip_verify:
            tables = ["experiment_measurements", *([REFERENCE_TABLE] if reference_in_place else [])]
            verify_seconds.append(verify_tables_whole(database, tables, size + SEED_ROWS))
            print(
                f"[{size}] verified {', '.join(tables)} whole against the recomputation ({verify_seconds[-1]:.0f} s;"
                f" bench process peak RSS {peak_rss_mib():.0f} MiB)",
                flush=True,
            )
        tick = quiet_sensor_tick(database)
        # As many refresh rounds as builds (a new 1% change before each), reported like the builds.
        refresh_runs: list[CliRun] = []
        for attempt in range(repeat):
            refresh_run, refresh_touched = one_percent_refresh(database, log_dir, attempt)
            refresh_runs.append(refresh_run)
            print(
                f"[{size}] 1% refresh round {attempt + 1} ({refresh_touched} samples changed):"
                f" {refresh_run.seconds:.2f} s, peak tree memory (PSS) {refresh_run.peak_tree_rss / 2**20:.0f} MiB,"
                f" largest process peak RSS"
                f" {refresh_run.largest_process_rss / 2**20:.0f} MiB, steps {refresh_run.step_seconds}",
                flush=True,
            )
        if not args.skip_verify:
            # The refreshed table, whole, against a recomputation from the changed sources.
            verify_seconds.append(verify_tables_whole(database, ["experiment_measurements"], size + SEED_ROWS))
            print(f"[{size}] verified the refreshed table whole ({verify_seconds[-1]:.0f} s)", flush=True)
        completed = [r for r in reference_runs if not r.killed]
        killed = next((r for r in reference_runs if r.killed), None)
        builds = [r.seconds for r in lab_runs]
        refreshes = [r.seconds for r in refresh_runs]
        largest = max(lab_runs + refresh_runs, key=lambda r: r.largest_process_rss)
        rows.append(
            {
                "samples": size,
                "rows": size + SEED_ROWS,
                "database": database,
                "repeat": repeat,
                "reference": None
                if args.skip_reference
                else {
                    "runs": [r.seconds for r in completed],
                    "killed_at": None if killed is None else killed.seconds,
                    "steps": (killed or completed[median_run_index([r.seconds for r in completed])]).steps,
                },
                "build": {"runs": builds, "steps": lab_runs[median_run_index(builds)].step_seconds},
                "refresh": {"runs": refreshes, "steps": refresh_runs[median_run_index(refreshes)].step_seconds},
                "memory": {
                    "largest_process_mib": largest.largest_process_rss / 2**20,
                    "largest_process": largest.largest_process,
                    "build_largest_mib": max(r.largest_process_rss for r in lab_runs) / 2**20,
                    "refresh_largest_mib": max(r.largest_process_rss for r in refresh_runs) / 2**20,
                    "tree_pss_mib": max(r.peak_tree_rss for r in lab_runs + refresh_runs) / 2**20,
                },
                "tick": tick,
                "verify_seconds": verify_seconds,
                "load1": load1,
                "verified": not args.skip_verify,
                "runs": {
                    "reference": [asdict(r) for r in reference_runs],
                    "build": [asdict(r) for r in lab_runs],
                    "refresh": [asdict(r) for r in refresh_runs],
                },
            }
        )
        if args.drop:
            with connect() as connection, connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE `{database}`")
    if not rows:
        return
    lines = report_lines(rows)
    growth = growth_lines(rows)
    details = detail_lines(rows)
    print()
    print("\n".join(lines))
    print()
    print("\n".join(growth))
    print()
    print("\n".join(details))
    over = [r for r in rows if max(r["memory"]["largest_process_mib"], r["memory"]["tree_pss_mib"]) > MEMORY_LIMIT_MIB]
    for r in over:
        print(
            f"WARNING: {r['samples']:,} samples: lab_assets peak memory over {MEMORY_LIMIT_MIB} MiB (largest process"
            f" {r['memory']['largest_process_mib']:.0f} MiB, tree PSS {r['memory']['tree_pss_mib']:.0f} MiB)"
        )
    print(f"bench wall time {time.monotonic() - bench_started:.0f} s; bench process peak RSS {peak_rss_mib():.0f} MiB")
    if args.markdown:
        facts = [
            "- machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
            "- server: " + ", ".join(f"`{k}`={v}" for k, v in server.items()),
            f"- reference time limit: {args.reference_timeout:.0f} s" if args.reference_timeout else "",
        ]
        notes = [
            "Medians of the rounds, (min-max) the spread. Full refresh: the cold CLI materialization with its"
            " checks. Largest Python process: the kernel's high-water RSS of the largest single process of the"
            " lab_assets run (`/usr/bin/time %M`), max over builds and refreshes; process tree: PSS summed over"
            f" the tree, polled every {MEMORY_POLL_SECONDS} s. Values over {MEMORY_LIMIT_MIB} MiB in bold.",
        ]
        args.markdown.write_text(
            "\n".join([*filter(None, facts), "", *lines, "", *notes, "", *growth, "", *details, ""]) + "\n"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine, "server": server, "sizes": rows}, indent=1, default=str) + "\n"
        )


if __name__ == "__main__":
    main()
