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
import os
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, Python puts bench/ first on sys.path, where ``bench`` would be bench.py;
# from the checkout's root, ``bench`` is this folder and ``bench.lib`` the benchmarks' library.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from bench.lib.checkouts import checkout_dagster, output_tables, revision, run_build  # noqa: E402
from bench.lib.data import prepare_database  # noqa: E402
from bench.lib.lab_writer import (  # noqa: E402
    LAB_LOCK_WAIT_TIMEOUT_SECONDS,
    LAB_UPDATES,
    LabWriter,
    OpenTransaction,
    latency_summary,
)

WRITER_LEAD_SECONDS = 2.0  # the writer runs this long before the build starts and after it ends


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
