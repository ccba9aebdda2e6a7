"""Seconds from a committed write to the flat table, with `make dev` running.

What it measures: ``make dev`` (``dagster dev -w workspace.yaml``: webserver, code server
and daemon, the source-change sensor on) runs against a bench database; a "lab" corrects one
value at a time and polls ``experiment_measurements`` until the cell shows it:

1. ``bench_latency_<size>`` holds the source schema, the 20 fixed samples and ``size`` generated
   samples (bench/lib/data.py's ``prepare_database``; ``--reuse`` keeps it when its sample count is
   right). It is a database of its own, not ``bench_<size>``, because bench/bench.py drops and
   rebuilds the tables of ``bench_<size>``, and other sessions may run it on the same server. The
   tables are built once with the CLI contract (``dagster asset materialize -m
   lab_assets.definitions --select '*'``, cold process, not timed) unless ``--reuse`` finds them.
2. ``make dev`` is started as README says (``python -m lab_assets.local_lab create-if-missing``,
   which writes the instance's ``dagster.yaml``, then ``dagster dev``) with a fresh temporary
   DAGSTER_HOME, LAB_DB_URL on the bench database and a free port, in a process group of its own
   that is ended at the end, also on an error or Ctrl-C. The changes start once the daemon's first
   sensor tick has found the tables current.
3. ``--changes`` times: one random sample that has a measurement gets a new value of one of its
   types (one UPDATE, its own committed transaction; the time is taken when COMMIT returns), then
   ``SELECT measurement_<type> FROM experiment_measurements WHERE sample_id = ...`` (a primary-key
   lookup, autocommit) every 0.15 s until it shows the new value. Before the next change the run
   that carried it must have ended, then a random 0-5 s pause, so each change is a refresh of its
   own and meets the sensor's interval at a different phase.
4. Per change, from the Dagster instance (``DagsterInstance.get()`` on that DAGSTER_HOME): the
   sensor tick that requested the run carrying the change (the first refresh run created after
   the commit; ``get_ticks``, the tick whose run ids hold it), the run's record and event log
   (queued, dequeued, launched = ``RUN_STARTING``, run worker up = ``RUN_START``, success) and its
   steps (``get_run_step_stats``). The flat table shows the value when the flat-table step commits
   its rows, before the run's last steps (the blocking checks) and its success.
5. The daemon's own sensor ticks over the whole run, by kind and duration (``end_timestamp -
   timestamp``, as the daemon records them: gRPC call into the code server included): quiet ticks
   (information_schema only), ticks that summed the sources (a change seen: one scan of each
   source table), ticks skipped because a refresh was in progress.
6. ``make dev`` is stopped, and the flat table is verified whole against the independent
   recomputation (bench/lib/verify.py ``verify_tables_whole``).

Prints the per-change table and p50 / p95 / max of the seconds from commit to seen, with the
medians of each part; ``--markdown FILE`` writes the same as Markdown for bench/RESULTS.md
("Write-to-table latency").

Usage: ``.venv/bin/python bench/write_to_table_latency.py [--size 1000000] [--changes 20]
[--reuse] [--markdown FILE] [--dagster-yaml FILE]`` (``--dagster-yaml``: an instance
configuration of one's own in the DAGSTER_HOME, which ``make dev`` keeps, e.g. Dagster's default
run queue interval, to compare). Needs the local server (LAB_BENCH_SERVER_URL, default
mysql+pymysql://root@127.0.0.1:3306); only ``bench_latency_<size>`` is created or replaced.
``make dev``'s log goes to ``bench/out/bench_latency_<size>_make_dev.log``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, Python puts bench/ first on sys.path, where ``bench`` would be bench.py;
# from the checkout's root, ``bench`` is this folder and ``bench.lib`` the benchmarks' library.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from bench.lib.data import SEED_ROWS, prepare_database  # noqa: E402
from bench.lib.runs import lab_assets_cli_build  # noqa: E402
from bench.lib.server import connect, database_url  # noqa: E402
from bench.lib.verify import verify_tables_whole  # noqa: E402
from lab_assets_tests.webserver import _default_sigint, _free_port  # noqa: E402

POLL_SECONDS = 0.15
MAX_PAUSE_SECONDS = 5.0
STARTUP_SECONDS = 180  # make dev up and the first sensor tick done (it sums both sources once)
CHANGE_TIMEOUT_SECONDS = 300  # a change not seen by then fails the bench
VENV = Path(sys.executable).parent.parent


class MakeDev:
    """``make dev`` in a session of its own (make, dagster dev, webserver, code server, daemon and
    the runs it launches form one process group, ended as a whole by :meth:`stop`)."""

    def __init__(self, home: Path, lab_db_url: str, log_path: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DAGSTER_", "MAKE", "MFLAGS"))}
        env.update(LAB_DB_URL=lab_db_url, DAGSTER_HOME=str(home))
        self.port = _free_port()
        # -o: this environment is installed already; make must not reinstall it.
        command = ["make", "--no-print-directory", "-o", f"{VENV}/.installed", "dev"]
        command += [f"VENV={VENV}", f"DAGSTER_PORT={self.port}"]
        self.log_path = log_path
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # dagster dev handles SIGTERM as SIGINT, so SIGINT must not be ignored.
                preexec_fn=_default_sigint,  # noqa: PLW1509 - one signal() call before exec, no lock taken
            )

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_path.read_text()[-3000:]
            raise SystemExit(f"make dev exited ({self.process.returncode}):\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        try:  # runs it launched are in the group too; none may outlive it
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --------------------------------------------------------------------------------------------
# the instance


def _sensor_state(instance):
    from dagster._core.scheduler.instigation import InstigatorType

    from lab_assets.names import SENSOR_NAME

    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name == SENSOR_NAME:
            return state
    return None


def _sensor_ticks(instance, after: float | None = None) -> list:
    state = _sensor_state(instance)
    if state is None:
        return []
    return list(instance.get_ticks(state.instigator_origin_id, state.selector_id, after=after))


def _refresh_runs(instance, created_after: float | None = None) -> list:
    """Records of the sensor's refresh runs (oldest first)."""
    from datetime import datetime, timezone

    from dagster import RunsFilter

    from lab_assets.names import SENSOR_RUN_TAGS

    after = None if created_after is None else datetime.fromtimestamp(created_after, tz=timezone.utc)
    records = instance.get_run_records(RunsFilter(tags=SENSOR_RUN_TAGS, created_after=after))
    return sorted(records, key=lambda r: r.create_timestamp.timestamp())


def _ended(record) -> bool:
    return record.dagster_run.is_finished


def wait_until_quiet(instance, dev: MakeDev, started: float) -> None:
    """Until the daemon has ticked the sensor since ``started``, no refresh is queued or running,
    and the last finished tick started nothing (the tables are current)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        dev.check_alive()
        ticks = [t for t in _sensor_ticks(instance, after=started) if t.end_timestamp is not None]
        runs = _refresh_runs(instance)
        if ticks and all(_ended(r) for r in runs) and not ticks[0].run_ids:
            if any(r.dagster_run.status.value != "SUCCESS" for r in runs):
                raise SystemExit(f"a refresh run failed before the changes: {[r.dagster_run.run_id for r in runs]}")
            return
        time.sleep(0.5)
    raise SystemExit(f"make dev: no quiet sensor tick within {STARTUP_SECONDS} s; see {dev.log_path}")


# --------------------------------------------------------------------------------------------
# one change


@dataclass
class Change:
    sample_id: int
    measurement_type: str
    committed: float  # time.time() when COMMIT returned
    seen: float | None = None
    run_id: str | None = None
    status: str = "?"
    # seconds after the commit of each milestone the instance recorded
    milestones: dict[str, float] = field(default_factory=dict)
    steps: list[tuple[str, float, float]] = field(default_factory=list)  # key, start, end (after commit)

    @property
    def seconds(self) -> float | None:
        return None if self.seen is None else self.seen - self.committed


def _column_names(database: str) -> dict[str, str]:
    with connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT measurement_type, column_name FROM measurement_types")
        return {t: c for t, c in cursor.fetchall()}


def make_change(database: str, rng: random.Random, max_id: int) -> tuple[Change, str, Decimal]:
    """One corrected value in its own committed transaction: (change, flat column, new value)."""
    columns = _column_names(database)
    with connect(database) as connection, connection.cursor() as cursor:
        while True:
            sample_id = rng.randint(1, max_id)
            cursor.execute(
                "SELECT measurement_type, value FROM sample_measurements WHERE sample_id = %s"
                " AND value IS NOT NULL ORDER BY measurement_type",
                (sample_id,),
            )
            rows = [row for row in cursor.fetchall() if row[0] in columns]
            if rows:
                break
        measurement_type, old = rng.choice(rows)
        new = Decimal(old) + Decimal(rng.randint(1, 999_999)) / 1000  # a corrected value, never the old one
        cursor.execute(
            "UPDATE sample_measurements SET value = %s WHERE sample_id = %s AND measurement_type = %s",
            (new, sample_id, measurement_type),
        )
        connection.commit()
        committed = time.time()
    return Change(sample_id, measurement_type, committed), columns[measurement_type], new


def wait_until_seen(database: str, change: Change, column: str, value: Decimal, dev: MakeDev) -> None:
    with connect(database) as connection:
        connection.autocommit(True)  # every SELECT reads the latest committed rows
        with connection.cursor() as cursor:
            while time.time() - change.committed < CHANGE_TIMEOUT_SECONDS:
                cursor.execute(
                    f"SELECT `{column}` FROM experiment_measurements WHERE sample_id = %s", (change.sample_id,)
                )
                row = cursor.fetchone()
                if row is not None and row[0] == value:
                    change.seen = time.time()
                    return
                time.sleep(POLL_SECONDS)
                dev.check_alive()
    raise SystemExit(
        f"sample {change.sample_id}: not in experiment_measurements {CHANGE_TIMEOUT_SECONDS} s after commit"
    )


def wait_for_the_run(instance, change: Change, dev: MakeDev) -> None:
    """The first refresh run created after the commit, once it has ended; fills the breakdown."""
    from dagster import DagsterEventType

    deadline = time.monotonic() + CHANGE_TIMEOUT_SECONDS
    while True:
        dev.check_alive()
        runs = _refresh_runs(instance, created_after=change.committed - 1)
        runs = [r for r in runs if r.create_timestamp.timestamp() >= change.committed]
        if runs and _ended(runs[0]):
            record = runs[0]
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"no refresh run ended within {CHANGE_TIMEOUT_SECONDS} s of the change")
        time.sleep(0.5)
    run_id = record.dagster_run.run_id
    change.run_id, change.status = run_id, record.dagster_run.status.value
    at = change.milestones

    def since_commit(timestamp: float) -> float:
        return round(timestamp - change.committed, 3)

    for tick in _sensor_ticks(instance, after=change.committed - 60):
        if run_id in tick.run_ids:
            at["tick start"] = since_commit(tick.timestamp)
            if tick.end_timestamp is not None:
                at["tick end"] = since_commit(tick.end_timestamp)
    at["run created"] = since_commit(record.create_timestamp.timestamp())
    events = {
        DagsterEventType.RUN_DEQUEUED: "dequeued",
        DagsterEventType.RUN_STARTING: "launched",
        DagsterEventType.RUN_START: "worker up",
        DagsterEventType.RUN_SUCCESS: "run ended",
        DagsterEventType.RUN_FAILURE: "run ended",
    }
    for event in instance.get_records_for_run(run_id, limit=10_000).records:
        name = events.get(event.event_log_entry.dagster_event_type)  # type: ignore[arg-type]
        if name is not None and name not in at:
            at[name] = since_commit(event.event_log_entry.timestamp)
    for step in sorted(instance.get_run_step_stats(run_id), key=lambda s: s.start_time or 0):
        if step.start_time is not None and step.end_time is not None:
            change.steps.append((step.step_key, since_commit(step.start_time), since_commit(step.end_time)))
    assert change.seen is not None
    at["seen"] = since_commit(change.seen)


# --------------------------------------------------------------------------------------------
# report

# The parts of a change's way into the table: (label, from milestone, to milestone).
PARTS = (
    ("commit -> tick", None, "tick start"),
    ("tick -> run queued", "tick start", "run created"),
    ("queued -> launched", "run created", "launched"),
    ("launched -> worker up", "launched", "worker up"),
    ("worker up -> seen", "worker up", "seen"),
)


def _part(change: Change, start: str | None, end: str) -> float | None:
    at = change.milestones
    if end not in at or (start is not None and start not in at):
        return None
    return at[end] - (0.0 if start is None else at[start])


def _percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil
    return ordered[int(rank) - 1]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def report(changes: list[Change], ticks: list, size: int, load: str, commit: str) -> list[str]:
    step_keys: list[str] = []
    for change in changes:
        for key, _, _ in change.steps:
            if key not in step_keys:
                step_keys.append(key)
    header = ["#", "sample", "s commit->seen", *[p[0] for p in PARTS], *[f"step {k}" for k in step_keys], "run ended"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for number, change in enumerate(changes, 1):
        steps = {key: end - start for key, start, end in change.steps}
        cells = [str(number), f"{change.sample_id} {change.measurement_type}", _fmt(change.seconds)]
        cells += [_fmt(_part(change, start, end)) for _, start, end in PARTS]
        cells += [_fmt(steps.get(key)) for key in step_keys]
        cells.append(_fmt(change.milestones.get("run ended")))
        lines.append("| " + " | ".join(cells) + " |")
    medians = ["median", "", _fmt(statistics.median(c.seconds for c in changes if c.seconds is not None))]
    for _, start, end in PARTS:
        values = [v for c in changes if (v := _part(c, start, end)) is not None]
        medians.append(_fmt(statistics.median(values)) if values else "n/a")
    for key in step_keys:
        values = [end - start for c in changes for k, start, end in c.steps if k == key]
        medians.append(_fmt(statistics.median(values)) if values else "n/a")
    medians.append(_fmt(statistics.median(c.milestones["run ended"] for c in changes if "run ended" in c.milestones)))
    lines.append("| " + " | ".join(f"**{m}**" if m else m for m in medians) + " |")

    seconds = [c.seconds for c in changes if c.seconds is not None]
    summary = [
        f"- {size:,} samples, {len(seconds)} changes, commit {commit}; load (uptime) {load}",
        f"- commit -> seen: p50 {_fmt(statistics.median(seconds))} s, p95 {_fmt(_percentile(seconds, 0.95))} s,"
        f" max {_fmt(max(seconds))} s, min {_fmt(min(seconds))} s",
    ]
    kinds: dict[str, list[float]] = {}
    for tick in ticks:
        if tick.end_timestamp is None:
            continue
        reason = tick.skip_reason or ""
        if tick.run_ids:
            kind = "requested a refresh (summed the sources)"
        elif reason.startswith("no change"):
            kind = "quiet (information_schema only)"
        elif reason.startswith("checked"):
            kind = "summed the sources, no refresh needed"
        elif "still in progress" in reason:
            kind = "skipped: a refresh in progress"
        else:
            kind = f"other ({tick.status.value})"
        kinds.setdefault(kind, []).append(tick.end_timestamp - tick.timestamp)
    for kind, durations in sorted(kinds.items()):
        summary.append(
            f"- sensor ticks, {kind}: {len(durations)}, median {statistics.median(durations):.3f} s,"
            f" max {max(durations):.3f} s (tick start to end as the daemon records it)"
        )
    if len(ticks) > 1:
        starts = sorted(t.timestamp for t in ticks)
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        summary.append(
            f"- sensor tick spacing: median {statistics.median(gaps):.2f} s, max {max(gaps):.2f} s ({len(ticks)} ticks)"
        )
    return [*summary, "", *lines]


# --------------------------------------------------------------------------------------------


def _tables_built(database: str) -> bool:
    with connect(database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (database, "experiment_measurements"),
        )
        row = cursor.fetchone()
        return bool(row and row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000, help="generated samples (plus the 20 fixed ones)")
    parser.add_argument("--changes", type=int, default=20, help="corrected values, one refresh each")
    parser.add_argument("--reuse", action="store_true", help="keep bench_latency_<size> (and its tables) if there")
    parser.add_argument("--seed", type=int, default=17, help="random seed of the samples changed and the pauses")
    parser.add_argument("--markdown", type=Path, help="also write the results as Markdown here")
    parser.add_argument(
        "--dagster-yaml",
        type=Path,
        help="put this dagster.yaml into the DAGSTER_HOME before make dev starts (make dev keeps a file of"
        " one's own): to measure other instance settings, e.g. the run queue's dequeue interval",
    )
    args = parser.parse_args()
    log_dir = ROOT / "bench" / "out"
    log_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)

    database = prepare_database(args.size, args.reuse, database=f"bench_latency_{args.size}")
    if not (args.reuse and _tables_built(database)):
        run = lab_assets_cli_build(database, log_dir)
        print(f"[{args.size}] first build (not timed): {run.seconds:.1f} s", flush=True)
    with connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT MAX(id) FROM samples")
        row = cursor.fetchone()
        assert row is not None
        max_id = int(row[0])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    commit += " (uncommitted changes)" if dirty else ""

    changes: list[Change] = []
    with tempfile.TemporaryDirectory(prefix="bench_latency_dagster_home_") as home:
        os.environ["DAGSTER_HOME"] = home  # DagsterInstance.get() below reads the same instance
        from dagster import DagsterInstance

        if args.dagster_yaml:
            shutil.copy(args.dagster_yaml, Path(home) / "dagster.yaml")
        started = time.time()
        dev = MakeDev(Path(home), database_url(database), log_dir / f"{database}_make_dev.log")
        try:
            while not (Path(home) / "dagster.yaml").exists():  # written by make dev (local_lab)
                dev.check_alive()
                time.sleep(0.2)
            with DagsterInstance.get() as instance:
                wait_until_quiet(instance, dev, started)
                print(f"[{args.size}] make dev up, first sensor tick done after {time.time() - started:.1f} s")
                loads = [os.getloadavg()[0]]
                for number in range(1, args.changes + 1):
                    change, column, value = make_change(database, rng, max_id)
                    wait_until_seen(database, change, column, value, dev)
                    wait_for_the_run(instance, change, dev)
                    changes.append(change)
                    at = change.milestones
                    print(
                        f"[{args.size}] change {number}: sample {change.sample_id} {change.measurement_type}"
                        f" seen after {change.seconds:.2f} s (tick {_fmt(at.get('tick start'))}, queued"
                        f" {_fmt(at.get('run created'))}, launched {_fmt(at.get('launched'))}, worker up"
                        f" {_fmt(at.get('worker up'))}, run {change.status} at {_fmt(at.get('run ended'))});"
                        f" steps {[(k, round(e - s, 2)) for k, s, e in change.steps]}",
                        flush=True,
                    )
                    loads.append(os.getloadavg()[0])
                    time.sleep(rng.uniform(0, MAX_PAUSE_SECONDS))
                ticks = sorted(_sensor_ticks(instance, after=started), key=lambda t: t.timestamp)
                uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
                load = f"load1 {min(loads):.2f}-{max(loads):.2f} during the changes; at the end: {uptime}"
        finally:
            dev.stop()
    lines = report(changes, ticks, args.size, load, commit)
    print()
    print("\n".join(lines))
    seconds = verify_tables_whole(database, ["experiment_measurements"], args.size + SEED_ROWS)
    print(f"[{args.size}] verified experiment_measurements whole against the recomputation ({seconds:.0f} s)")
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
