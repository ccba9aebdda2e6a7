"""The binlog change feed beside the scan path: a private mariadbd with a ROW binlog holding the lab,
lab_assets' CLI as a cold process with ``LAB_CHANGE_FEED`` set, the feed its sample_lineage
materialization recorded, the rows the server read (the ``Handler_read_*`` sum: MariaDB 10.11 has
no ``Innodb_rows_read``) and, optionally, the statements that read them (performance_schema)."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import bench.lib.server as bench_server
from bench.lib.runs import step_seconds
from bench.lib.server import connect, database_url, one_row
from lab_assets_tests.extra_server import ExtraServer, extra_server

ROOT = Path(__file__).resolve().parents[2]
HANDLER_READS = (
    "Handler_read_first",
    "Handler_read_key",
    "Handler_read_last",
    "Handler_read_next",
    "Handler_read_prev",
    "Handler_read_rnd",
    "Handler_read_rnd_next",
)
# The Dagster steps of lab_refresh, in the order they run.
DERIVATIONS_STEP, FLAT_TABLE_STEP = "step:lab_source_derivations", "step:experiment_measurements"


@dataclass
class FeedRun:
    """One cold CLI run. ``path``: the LAB_CHANGE_FEED it ran with; ``change``: what changed before
    it; ``feed``/``reason``: what its sample_lineage materialization recorded; ``rows_read``: the
    server's Handler_read_* delta over the run; ``statements``: the top statements by rows
    examined (performance_schema, when on)."""

    size: int
    path: str
    change: str
    seconds: float
    rows_read: int
    feed: str
    reason: str
    touched: int = 0
    steps: dict[str, float] = field(default_factory=dict)
    statements: list[tuple[int, int, float, str]] = field(default_factory=list)
    log: str = ""

    @property
    def step_total(self) -> float:
        return sum(v for k, v in self.steps.items() if k in (DERIVATIONS_STEP, FLAT_TABLE_STEP))


@contextlib.contextmanager
def private_server(directory: Path, buffer_pool: str, log_file: str, statements: bool) -> Iterator[ExtraServer]:
    """A private mariadbd with a ROW binlog in ``directory`` (extra_server's options come after its
    small InnoDB defaults, so these override them); bench.lib's connections (data, verify,
    database_url) point at it while the block runs. Stopped by its pid on the way out, always."""
    options = {
        "log-bin": str(directory / "binlog"),
        "binlog-format": "ROW",
        "server-id": "1",
        "innodb-buffer-pool-size": buffer_pool,
        "innodb-log-file-size": log_file,
        "performance-schema": "ON" if statements else "OFF",
    }
    with extra_server(directory, options, timeout=120) as server, bench_server.serving(server.url):
        yield server


def rows_read() -> int:
    """The server's Handler_read_* counters summed (every session, every table)."""
    with connect() as connection, connection.cursor() as cursor:
        placeholders = ", ".join(["%s"] * len(HANDLER_READS))
        cursor.execute(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({placeholders})", HANDLER_READS)
        values = cursor.fetchall()
    assert len(values) == len(HANDLER_READS), values
    return sum(int(v) for _, v in values)


def reset_statements() -> None:
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute("TRUNCATE TABLE performance_schema.events_statements_summary_by_digest")


def top_statements(limit: int) -> list[tuple[int, int, float, str]]:
    """(rows examined, executions, seconds, statement) of the ``limit`` statements that examined
    the most rows since :func:`reset_statements`."""
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT SUM_ROWS_EXAMINED, COUNT_STAR, SUM_TIMER_WAIT / 1e12, DIGEST_TEXT"
            " FROM performance_schema.events_statements_summary_by_digest"
            " WHERE SUM_ROWS_EXAMINED > 0 ORDER BY SUM_ROWS_EXAMINED DESC LIMIT %s",
            (limit,),
        )
        return [(int(r), int(c), round(float(s), 3), " ".join(str(t).split())) for r, c, s, t in cursor.fetchall()]


def recorded_feed(home: str) -> tuple[str, str, dict[str, float]]:
    """The change_feed and its reason from the latest sample_lineage materialization of the
    instance in ``home`` (a fresh DAGSTER_HOME: the run just made), and that run's steps' seconds
    from its events (STEP_START to STEP_SUCCESS): Dagster's console sometimes drops a step's
    "Finished execution" line."""
    from dagster import AssetKey, DagsterInstance

    with DagsterInstance.from_config(home) as instance:
        entry = instance.get_latest_materialization_event(AssetKey("sample_lineage"))
        if entry is None or entry.asset_materialization is None:
            return "(no materialization)", "", {}
        metadata = entry.asset_materialization.metadata
        shown = {
            k: str(getattr(metadata[k], "value", metadata[k]))
            for k in ("change_feed", "change_feed_reason")
            if k in metadata
        }
        steps = {
            f"step:{stats.step_key}": round(stats.end_time - stats.start_time, 3)
            for stats in instance.get_run_step_stats(entry.run_id)
            if stats.start_time is not None and stats.end_time is not None
        }
    return shown.get("change_feed", "(none recorded)"), shown.get("change_feed_reason", ""), steps


def cold_run(
    database: str, command: tuple[str, ...], feed: str, log_path: Path, home: str, statements: int = 0
) -> tuple[float, int, dict[str, float], tuple[str, str], list]:
    """``dagster <command>`` as a cold subprocess with ``DAGSTER_HOME`` ``home`` (one instance per
    lab, kept between runs as in production: an observation reads the binlog from where the
    previous one did), ``LAB_DB_URL`` on the private server and ``LAB_CHANGE_FEED=<feed>``: (wall
    seconds, rows read, steps, recorded feed, top statements)."""
    dagster = Path(sys.executable).with_name("dagster")
    shebang = dagster.read_text().splitlines()[0]
    if Path(shebang[2:].strip()).parent != Path(sys.executable).parent:
        raise SystemExit(f"{dagster} starts {shebang!r}, not {sys.executable}; recreate the venv")
    env = {**os.environ, "LAB_DB_URL": database_url(database), "DAGSTER_HOME": home, "LAB_CHANGE_FEED": feed}
    if statements:
        reset_statements()
    before = rows_read()
    with log_path.open("w") as log:
        started = time.monotonic()
        code = subprocess.run(
            [str(dagster), *command], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False
        ).returncode
        seconds = time.monotonic() - started
    read = rows_read() - before
    top = top_statements(statements) if statements else []
    if code != 0:
        raise SystemExit(f"dagster {' '.join(command)} failed (exit {code}); see {log_path}")
    feed, reason, from_events = recorded_feed(home)
    steps = {**from_events, **step_seconds(log_path.read_text())}  # the console's value where it printed one
    return seconds, read, steps, (feed, reason), top


def change_one_value(database: str, round_number: int) -> int:
    """One measurement value changed (+1), on a sample in a different place each round."""
    with connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT MAX(sample_id) FROM sample_measurements")
        (max_id,) = one_row(cursor)
        target = max_id * ((round_number * 7 + 3) % 17 + 1) // 19
        cursor.execute(
            "SELECT sample_id, measurement_type FROM sample_measurements WHERE sample_id >= %s"
            " AND measurement_type IS NOT NULL ORDER BY sample_id LIMIT 1",
            (target,),
        )
        sample_id, measurement_type = one_row(cursor)
        cursor.execute(
            "UPDATE sample_measurements SET value = value + 1 WHERE sample_id = %s AND measurement_type = %s LIMIT 1",
            (sample_id, measurement_type),
        )
        connection.commit()
    return 1


def spread(values: list[float], digits: int = 2) -> str:
    """median (min-max), or the one value; ``digits`` 0 with thousands separators."""
    shown = (lambda v: f"{v:,.0f}") if digits == 0 else (lambda v: f"{v:.{digits}f}")
    if len(set(values)) == 1:
        return shown(values[0])
    return f"{shown(statistics.median(values))} ({shown(min(values))}-{shown(max(values))})"


def table_lines(runs: list[FeedRun]) -> list[str]:
    """The Markdown table: one row per size, path and change, medians and spread of the rounds."""
    lines = [
        "| samples | path | change | runs | feed recorded | wall s, median (min-max) | steps s (derivations + flat"
        " table) | wall - steps s | rows read (Handler_read_*) |",
        "|---:|---|---|---:|---|---|---|---:|---:|",
    ]
    groups: dict[tuple[int, str, str], list[FeedRun]] = {}
    for run in runs:
        groups.setdefault((run.size, run.path, run.change), []).append(run)
    for (size, path, change), group in groups.items():
        walls = [r.seconds for r in group]
        derivations = [r.steps.get(DERIVATIONS_STEP, float("nan")) for r in group]
        flat = [r.steps.get(FLAT_TABLE_STEP, float("nan")) for r in group]
        overhead = [r.seconds - r.step_total for r in group]
        feeds = sorted({r.feed for r in group})
        touched = f" ({group[0].touched:,} samples)" if group[0].touched > 1 else ""
        lines.append(
            f"| {size:,} | {path} | {change}{touched} | {len(group)} | {', '.join(feeds)} | {spread(walls)} |"
            f" {statistics.median(derivations):.2f} + {statistics.median(flat):.2f} |"
            f" {statistics.median(overhead):.2f} | {spread([r.rows_read for r in group], 0)} |"
        )
    return lines


def statement_lines(runs: list[FeedRun]) -> list[str]:
    """Per run that recorded statements (the last round of each path and change): the top
    statements by rows examined."""
    lines: list[str] = []
    last: dict[tuple[int, str, str], FeedRun] = {}
    for run in runs:
        if run.statements:
            last[(run.size, run.path, run.change)] = run
    for (size, path, change), run in last.items():
        lines += [
            "",
            f"{size:,} samples, {path}, {change}: rows read {run.rows_read:,}; top statements by rows examined",
            "",
            "| rows examined | runs | s | statement |",
            "|---:|---:|---:|---|",
        ]
        lines += [f"| {r:,} | {c} | {s:.3f} | `{t[:150]}` |" for r, c, s, t in run.statements]
    return lines
