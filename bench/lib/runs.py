"""lab_assets run through its CLI as a cold process, timed, with its memory and its steps' seconds;
the sensor's quiet tick and its refresh job after a 1% change."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.lib.data import change_one_percent
from bench.lib.memory import MEMORY_POLL_SECONDS, command_line, high_water_kib, tree_memory_bytes
from bench.lib.server import database_url

ROOT = Path(__file__).resolve().parents[2]


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
                    memory = tree_memory_bytes(process.pid, breakdown)
                    for pid in breakdown:
                        # Read every time: a child seen between fork and exec shows no (or its
                        # parent's) command line.
                        command = command_line(pid)
                        if command != "?":
                            commands[pid] = command
                        commands.setdefault(pid, command)
                        high_water[pid] = max(high_water.get(pid, 0), high_water_kib(pid) * 1024)
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
    steps = step_seconds(text)
    return CliRun(
        seconds,
        peak,
        max_child,
        steps,
        largest_command,
        0 if largest is None else high_water[largest],
    )


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


def one_percent_refresh(database: str, log_dir: Path, round_number: int = 0) -> tuple[CliRun, int]:
    """The sensor's refresh run (job ``lab_refresh``, cold process) after
    :func:`change_one_percent`: incremental, the tables of the last build are there."""
    touched = change_one_percent(database, round_number)
    return lab_assets_cli_build(database, log_dir, REFRESH_JOB, round_number), touched


def auto_repeat(size: int) -> int:
    """Timed rounds per size when --repeat is not given: 3 up to 1M samples, 2 up to 3M, 1 above
    (one round at 10M already takes many minutes)."""
    return 3 if size <= 1_000_000 else 2 if size <= 3_000_000 else 1


def step_seconds(text: str) -> dict[str, float]:
    """Seconds per table written (the IO manager's line, e.g. "bench_x.sample_lineage: table
    swapped in, 1000020 rows written, 5 columns, 4.21 s") and per whole Dagster step (assets with
    their change detection, and checks: "step:<name>"), read from a run's output."""
    steps: dict[str, float] = {}
    for line in text.splitlines():
        match = STEP_LINE.search(line)
        if match:
            steps[match.group("table")] = float(match.group("seconds"))
        finished = FINISHED_STEP.search(line)
        if finished:
            value = float(finished.group("value")) / (1000 if finished.group("unit") == "ms" else 1)
            value += 60 * int(finished.group("minutes") or 0)
            steps[f"step:{finished.group('step')}"] = round(value, 2)
    return steps
