"""One corrected value's way from its commit to the flat table, with ``make dev`` running: the
change, the wait until the table shows it, the milestones of the run that carried it, and the
report over many changes."""

from __future__ import annotations

import itertools
import random
import statistics
import time
from dataclasses import dataclass, field
from decimal import Decimal

from bench.lib.make_dev import MakeDev, ended, refresh_runs, sensor_ticks
from bench.lib.server import connect

POLL_SECONDS = 0.15
CHANGE_TIMEOUT_SECONDS = 300  # a change not seen by then fails the bench


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
        runs = refresh_runs(instance, created_after=change.committed - 1)
        runs = [r for r in runs if r.create_timestamp.timestamp() >= change.committed]
        if runs and ended(runs[0]):
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

    for tick in sensor_ticks(instance, after=change.committed - 60):
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
        name = events.get(event.event_log_entry.dagster_event_type)
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


def fmt(value: float | None) -> str:
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
        cells = [str(number), f"{change.sample_id} {change.measurement_type}", fmt(change.seconds)]
        cells += [fmt(_part(change, start, end)) for _, start, end in PARTS]
        cells += [fmt(steps.get(key)) for key in step_keys]
        cells.append(fmt(change.milestones.get("run ended")))
        lines.append("| " + " | ".join(cells) + " |")
    medians = ["median", "", fmt(statistics.median(c.seconds for c in changes if c.seconds is not None))]
    for _, start, end in PARTS:
        values = [v for c in changes if (v := _part(c, start, end)) is not None]
        medians.append(fmt(statistics.median(values)) if values else "n/a")
    for key in step_keys:
        values = [end - start for c in changes for k, start, end in c.steps if k == key]
        medians.append(fmt(statistics.median(values)) if values else "n/a")
    medians.append(fmt(statistics.median(c.milestones["run ended"] for c in changes if "run ended" in c.milestones)))
    lines.append("| " + " | ".join(f"**{m}**" if m else m for m in medians) + " |")

    seconds = [c.seconds for c in changes if c.seconds is not None]
    summary = [
        f"- {size:,} samples, {len(seconds)} changes, commit {commit}; load (uptime) {load}",
        f"- commit -> seen: p50 {fmt(statistics.median(seconds))} s, p95 {fmt(_percentile(seconds, 0.95))} s,"
        f" max {fmt(max(seconds))} s, min {fmt(min(seconds))} s",
    ]
    kinds: dict[str, list[float]] = {}
    for tick in ticks:
        if tick.end_timestamp is None:
            continue
        reason = tick.skip_reason or ""
        if tick.run_ids:
            kind = "requested a refresh (read the binlog, or summed the sources without the feed)"
        elif reason.startswith("no change"):
            kind = "quiet (the binlog read, or information_schema only without the feed)"
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
