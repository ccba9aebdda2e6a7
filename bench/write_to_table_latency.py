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
[--reuse] [--database NAME] [--markdown FILE] [--dagster-yaml FILE]`` (``--dagster-yaml``: an instance
configuration of one's own in the DAGSTER_HOME, which ``make dev`` keeps, e.g. Dagster's default
run queue interval, to compare). Needs the local server (LAB_BENCH_SERVER_URL, default
mysql+pymysql://root@127.0.0.1:3306); only ``bench_latency_<size>`` is created or replaced
(``--database``: only used, its sample count checked).
``make dev``'s log goes to ``bench/out/bench_latency_<size>_make_dev.log``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, Python puts bench/ first on sys.path, where ``bench`` would be bench.py;
# from the checkout's root, ``bench`` is this folder and ``bench.lib`` the benchmarks' library.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from bench.lib.data import SEED_ROWS, prepare_database  # noqa: E402
from bench.lib.latency import Change, fmt, make_change, report, wait_for_the_run, wait_until_seen  # noqa: E402
from bench.lib.make_dev import MakeDev, sensor_ticks, wait_until_quiet  # noqa: E402
from bench.lib.runs import lab_assets_cli_build  # noqa: E402
from bench.lib.server import connect, database_url, has_table  # noqa: E402
from bench.lib.verify import verify_tables_whole  # noqa: E402

MAX_PAUSE_SECONDS = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000, help="generated samples (plus the 20 fixed ones)")
    parser.add_argument("--changes", type=int, default=20, help="corrected values, one refresh each")
    parser.add_argument("--reuse", action="store_true", help="keep bench_latency_<size> (and its tables) if there")
    parser.add_argument(
        "--database",
        help="a lab of --size samples built before on the server, used as it is instead of bench_latency_<size>"
        " (e.g. bench/change_feed.py's feed_10000000 on its binlog server: not generated and built again)",
    )
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

    reuse = args.reuse or args.database is not None
    database = prepare_database(
        args.size, reuse, database=args.database or f"bench_latency_{args.size}", only_reuse=args.database is not None
    )
    if not (reuse and has_table(database, "experiment_measurements")):
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
                        f" seen after {change.seconds:.2f} s (tick {fmt(at.get('tick start'))}, queued"
                        f" {fmt(at.get('run created'))}, launched {fmt(at.get('launched'))}, worker up"
                        f" {fmt(at.get('worker up'))}, run {change.status} at {fmt(at.get('run ended'))});"
                        f" steps {[(k, round(e - s, 2)) for k, s, e in change.steps]}",
                        flush=True,
                    )
                    loads.append(os.getloadavg()[0])
                    time.sleep(rng.uniform(0, MAX_PAUSE_SECONDS))
                ticks = sorted(sensor_ticks(instance, after=started), key=lambda t: t.timestamp)
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
