"""Speed at scale: lab_assets' full build vs a plain-SQL reference build of the same table.

For each size (samples generated in the seed's distribution, see lab_assets_tests.lab_data):

1. generate the source rows into a throwaway database ``bench_<size>`` (not timed);
2. time the plain-SQL reference build of ``experiment_measurements_reference``: one recursive CTE
   for the roots, one ``MAX(CASE ...)`` pivot, one ``INSERT ... SELECT`` (same columns and keys
   as experiment_measurements);
3. time lab_assets through its CLI contract from a cold process (``dagster asset materialize -m
   lab_assets.definitions --select '*'`` with a fresh temporary DAGSTER_HOME): wall seconds and
   the peak RSS of the process tree (summed over the tree, polled from /proc);
4. verify both tables whole against lab_data.expected_flat_table (the independent recomputation);
5. time a quiet sensor tick, then ``--repeat`` rounds of a 1% change followed by the sensor's
   refresh job (cold process), best reported like the builds; verify the refreshed table whole;
6. print the table (and, with --markdown, a Markdown copy for bench/RESULTS.md).

Usage: ``make bench`` or ``.venv/bin/python bench/bench.py --sizes 100000,1000000 --repeat 3``.
Needs the local server (LAB_BENCH_SERVER_URL, default mysql+pymysql://root@127.0.0.1:3306); only
databases named ``bench_<size>`` are created, replaced and (with --drop) dropped.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import pymysql.cursors
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab_assets.local_lab import source_schema_statements  # noqa: E402
from lab_assets_tests.lab_data import (  # noqa: E402
    expected_flat_table,
    generate,
    insert,
    read_sources,
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


def prepare_database(size: int, reuse: bool, database: str | None = None) -> str:
    """``database`` (default ``bench_<size>``) holding the source schema, the 20 fixed samples and
    ``size`` generated samples. With ``reuse``, an existing database with the right sample count is
    kept."""
    database = database or f"bench_{size}"
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
    with connect(database) as connection:
        with connection.cursor() as cursor:
            for statement in source_schema_statements():
                cursor.execute(statement)
        samples, measurements = generate(size)
        insert(connection, samples, measurements)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE TABLE samples, sample_measurements")
            cursor.fetchall()
    print(f"[{size}] generated {database} in {time.monotonic() - started:.1f} s", flush=True)
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


def reference_build(database: str) -> tuple[float, dict[str, float]]:
    """The straightforward build: one recursive CTE, one MAX(CASE) pivot, one INSERT ... SELECT.
    Written independently of lab_assets' SQL builders. Returns (seconds, per-statement seconds)."""
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
        steps["prepare"] = time.monotonic() - started
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
        cursor.execute(insert_sql)
        steps["insert_select"] = time.monotonic() - step_started
        return time.monotonic() - started, steps


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


# Reading a process's PSS (/proc/<pid>/smaps_rollup) walks its page tables under the process's
# memory lock: polled every 50 ms it slowed the timed 1% refresh at 1M by ~0.8 s (9.5-9.7 s polled
# vs 8.8 s unpolled, same data, 2026-11-25). Every 0.25 s the walk costs little, and the peaks it
# looks for (bulk loads, the pandas catalog) last longer than that.
MEMORY_POLL_SECONDS = 0.25

STEP_LINE = re.compile(
    r"\.(?P<table>\w+): (?:table swapped in|rows replaced|partition replaced), \d+ rows written,"
    r" \d+ columns, (?P<seconds>[\d.]+) s"
)


FINISHED_STEP = re.compile(r'Finished execution of step "(?P<step>[^"]+)" in (?P<value>[\d.]+)(?P<unit>ms|s)\b')
MATERIALIZE_ALL = ("asset", "materialize", "-m", "lab_assets.definitions", "--select", "*")
# What the source-change sensor launches: the tables plus the blocking checks.
REFRESH_JOB = ("job", "execute", "-m", "lab_assets.definitions", "-j", "lab_refresh")


def lab_assets_cli_build(database: str, log_dir: Path, command: tuple[str, ...] = MATERIALIZE_ALL) -> CliRun:
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
        log_path = log_dir / f"{database}_lab_assets_{command[0]}.log"
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
            done = threading.Event()

            def poll() -> None:
                nonlocal peak
                while not done.is_set():
                    breakdown: dict[int, int] = {}
                    memory = _tree_memory_bytes(process.pid, breakdown)
                    if memory > peak:
                        peak = memory
                        peak_breakdown.clear()
                        for pid, pid_memory in breakdown.items():
                            try:
                                with open(f"/proc/{pid}/cmdline") as cmdline:
                                    command = cmdline.read().replace("\0", " ")[:120]
                            except OSError:
                                command = "?"
                            peak_breakdown.append(f"{pid} {pid_memory / 2**20:.0f} MiB {command}")
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
        log_path.with_suffix(".peak").write_text("\n".join(peak_breakdown) + "\n")
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
            steps[f"step:{finished.group('step')}"] = round(value, 2)
    return CliRun(seconds, peak, max_child, steps)


# --------------------------------------------------------------------------------------------
# hooks for work the lead is building in parallel


def quiet_sensor_tick(database: str) -> float:
    """Seconds of a sensor tick on unchanged data: one tick records the cursor (it hashes the
    tables), a second one, a second later, is the quiet tick that is timed."""
    from dagster import DagsterInstance, SensorResult, build_sensor_context

    from lab_assets.defs.sensors import lab_source_change_sensor
    from lab_assets.mysql import MySQLResource

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


def one_percent_refresh(database: str, log_dir: Path, round_number: int = 0) -> tuple[float, int, dict[str, float]]:
    """Seconds of the sensor's refresh run (job ``lab_refresh``, cold process) after
    :func:`change_one_percent`: incremental, the tables of the last build are there."""
    touched = change_one_percent(database, round_number)
    run = lab_assets_cli_build(database, log_dir, REFRESH_JOB)
    return run.seconds, touched, run.step_seconds


# --------------------------------------------------------------------------------------------
# 4. verification


def verify(database: str, table: str, expected_columns: list[str], expected: dict[int, dict]) -> None:
    """Compare the whole table (column names and order, every row, every cell) with the
    independent recomputation; raise on any difference."""
    names = ["experiment_id", "top_parent_id", "sample_id", *expected_columns]
    with connect(database) as connection:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
                " ORDER BY ordinal_position",
                (database, table),
            )
            actual_names = [r[0] for r in cursor.fetchall()]
        if actual_names != names:
            raise AssertionError(f"{database}.{table}: columns {actual_names} != expected {names}")
        differences: list[str] = []
        seen = 0
        with connection.cursor(pymysql.cursors.SSCursor) as cursor:
            cursor.execute(f"SELECT {', '.join(f'`{n}`' for n in names)} FROM `{table}` ORDER BY sample_id")
            for row in cursor:
                seen += 1
                want = expected.get(row[2])
                wanted = None if want is None else tuple(want[n] for n in names)
                if wanted != tuple(row) and len(differences) < 10:
                    differences.append(f"sample {row[2]}: got {row} want {wanted}")
        if seen != len(expected):
            differences.append(f"{seen} rows, expected {len(expected)}")
    if differences:
        raise AssertionError(f"{database}.{table} differs from the recomputation:\n  " + "\n  ".join(differences))


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


def fmt_runs(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def verify_against_recomputation(database: str, size: int, other_tables: list[str]) -> None:
    """experiment_measurements (and ``other_tables``) whole against the Python recomputation."""
    started = time.monotonic()
    with connect(database) as connection:
        source_samples, source_measurements = read_sources(connection)
    columns, expected = expected_flat_table(source_samples, source_measurements)
    del source_samples, source_measurements
    assert len(expected) == size + SEED_ROWS
    for table in ["experiment_measurements", *other_tables]:
        verify(database, table, columns, expected)
    print(
        f"[{size}] verified {', '.join(['experiment_measurements', *other_tables])} whole against the"
        f" recomputation ({time.monotonic() - started:.0f} s)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,300000,1000000", help="comma-separated sample counts")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each build (best is reported)")
    parser.add_argument("--reuse", action="store_true", help="keep bench_<size> source data from an earlier run")
    parser.add_argument("--drop", action="store_true", help="drop bench_<size> databases at the end")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--skip-verify", action="store_true", help="timing only (never for reported numbers)")
    parser.add_argument("--markdown", type=Path, help="also write the results table as Markdown here")
    args = parser.parse_args()
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    log_dir = ROOT / "bench" / "out"
    log_dir.mkdir(parents=True, exist_ok=True)

    machine, server = machine_facts(), server_facts()
    print("machine:", ", ".join(f"{k}={v}" for k, v in machine.items()))
    print("server: ", ", ".join(f"{k}={v}" for k, v in server.items()))
    rows = []
    for size in sizes:
        database = prepare_database(size, args.reuse)
        load1 = os.getloadavg()[0]
        reference_runs: list[float] = []
        reference_steps: dict[str, float] = {}
        lab_runs: list[CliRun] = []
        for attempt in range(args.repeat):
            drop_outputs(database)
            if not args.skip_reference:
                seconds, steps = reference_build(database)
                reference_runs.append(seconds)
                print(f"[{size}] reference run {attempt + 1}: {seconds:.2f} s {steps}", flush=True)
                if seconds == min(reference_runs):
                    reference_steps = steps
            run = lab_assets_cli_build(database, log_dir)
            lab_runs.append(run)
            print(
                f"[{size}] lab_assets run {attempt + 1}: {run.seconds:.2f} s, peak tree memory (PSS)"
                f" {run.peak_tree_rss / 2**20:.0f} MiB, steps {run.step_seconds}",
                flush=True,
            )
        if not args.skip_verify:
            verify_against_recomputation(database, size, [] if args.skip_reference else [REFERENCE_TABLE])
        tick = quiet_sensor_tick(database)
        # As many refresh rounds as builds (a new 1% change before each), best reported like the builds.
        refresh_runs = []
        for attempt in range(args.repeat):
            seconds, refresh_touched, steps = one_percent_refresh(database, log_dir, attempt)
            refresh_runs.append((seconds, steps))
            print(
                f"[{size}] 1% refresh round {attempt + 1} ({refresh_touched} samples changed):"
                f" {seconds:.2f} s, steps {steps}",
                flush=True,
            )
        refresh, refresh_steps = min(refresh_runs, key=lambda run: run[0])
        if not args.skip_verify:
            # The refreshed table, whole, against a recomputation from the changed sources.
            verify_against_recomputation(database, size, [])
        best_lab = min(lab_runs, key=lambda r: r.seconds)
        best_ref = min(reference_runs) if reference_runs else None
        rows.append(
            {
                "samples": size,
                "rows": size + SEED_ROWS,
                "ref_s": best_ref,
                "ref_runs": reference_runs,
                "ref_steps": reference_steps,
                "lab_s": best_lab.seconds,
                "lab_runs": [r.seconds for r in lab_runs],
                "lab_steps": best_lab.step_seconds,
                "ratio": None if best_ref is None else best_lab.seconds / best_ref,
                "rss_mib": max(r.peak_tree_rss for r in lab_runs) / 2**20,
                "ru_maxrss_mib": max(r.max_child_rss for r in lab_runs) / 2**20,
                "tick": tick,
                "refresh": refresh,
                "refresh_runs": [seconds for seconds, _ in refresh_runs],
                "refresh_steps": refresh_steps,
                "load1": load1,
                "verified": not args.skip_verify,
            }
        )
        if args.drop:
            with connect() as connection, connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE `{database}`")

    header = (
        "| samples | reference s (runs) | lab_assets cold CLI s (runs) | ratio lab/ref | ref rows/s"
        " | lab rows/s | lab peak memory MiB (tree PSS) | quiet sensor tick s | 1% refresh s | refresh/full"
        " | verified |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:

        def num(value, pattern):
            return "n/a" if value is None else format(value, pattern)

        ref = "n/a" if r["ref_s"] is None else f"{r['ref_s']:.2f} ({fmt_runs(r['ref_runs'])})"
        ref_rate = None if r["ref_s"] is None else r["rows"] / r["ref_s"]
        lines.append(
            f"| {r['samples']:,} | {ref} | {r['lab_s']:.2f} ({fmt_runs(r['lab_runs'])})"
            f" | {num(r['ratio'], '.2f')}x | {num(ref_rate, ',.0f')} | {r['rows'] / r['lab_s']:,.0f}"
            f" | {r['rss_mib']:.0f} | {num(r['tick'], '.3f')} | {r['refresh']:.2f} ({fmt_runs(r['refresh_runs'])})"
            f" | {r['refresh'] / r['lab_s']:.2f}x"
            f" | {'yes' if r['verified'] else 'NO'} |"
        )
    print()
    print("\n".join(lines))
    print()
    for r in rows:
        print(
            f"{r['samples']:,}: reference steps {r['ref_steps']}; lab_assets steps {r['lab_steps']};"
            f" refresh steps {r['refresh_steps']}; max process RSS {r['ru_maxrss_mib']:.0f} MiB;"
            f" load1 before {r['load1']:.2f}"
        )
    if args.markdown:
        facts = [
            "- machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
            "- server: " + ", ".join(f"`{k}`={v}" for k, v in server.items()),
        ]
        args.markdown.write_text("\n".join(facts + ["", *lines, ""]) + "\n")


if __name__ == "__main__":
    main()
