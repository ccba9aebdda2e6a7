"""The refresh through the binlog change feed beside the scan path, in one run.

For each size:

1. start a private mariadbd (lab_assets_tests.extra_server) with ``--log-bin --binlog-format=ROW
   --server-id=1`` and a big buffer pool, its files under ``--workdir``; stopped by pid at the end;
2. generate the lab into it (bench/lib/data.py's generator), then the full build through the CLI
   contract from a cold process (``dagster asset materialize -m lab_assets.definitions --select
   '*'``, fresh DAGSTER_HOME, ``LAB_CHANGE_FEED=binlog``): it stores the first binlog position;
3. ``--repeat`` rounds, the two paths alternating (``LAB_CHANGE_FEED=binlog``, ``=scan``; the order
   flips each round): 1 changed measurement value then the refresh job cold (``dagster job execute
   -m lab_assets.definitions -j lab_refresh``), then 1% of the samples changed (data.py's
   change_one_percent) and the refresh again. Each run: wall seconds, the two steps' seconds,
   rows read (the ``Handler_read_*`` sum delta over the run), and the change_feed its
   sample_lineage materialization recorded (checked against the path). A scan refresh stores no
   position, so before a timed binlog refresh that follows scan refreshes an untimed binlog
   refresh catches the position up (as in production, where every refresh reads the feed);
4. once per path, a refresh with nothing changed: the cold-start overhead;
5. the flat table verified whole (bench/lib/verify.py) after the last refresh.

Prints a Markdown table (and, with ``--json``, every run). With ``--statements N``, the private
server runs with performance_schema and the N statements that examined the most rows are printed
for each path and change (performance_schema costs a little time: keep it off for timings).

Usage: ``.venv/bin/python bench/change_feed.py --sizes 100k,1M --repeat 3``. With ``--server URL
--workdir DIR``, a running server with a ROW binlog replaces the private one and a lab built
there before (``feed_<size>``, its tables, the Dagster instance in ``DIR``) is reused: how the
10M lab is measured without generating and building it again; ``--paths binlog`` leaves the scan
path out (its runs take minutes at 10M).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, Python puts bench/ first on sys.path, where ``bench`` would be bench/bench.py;
# from the checkout's root, ``bench`` is this folder and ``bench.lib`` the benchmarks' library.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))


import bench.lib.server as bench_server  # noqa: E402
from bench.lib.data import SEED_ROWS, change_one_percent, parse_size, prepare_database  # noqa: E402
from bench.lib.feed import (  # noqa: E402
    DERIVATIONS_STEP,
    FLAT_TABLE_STEP,
    FeedRun,
    change_one_value,
    cold_run,
    private_server,
    statement_lines,
    table_lines,
)
from bench.lib.runs import MATERIALIZE_ALL, REFRESH_JOB  # noqa: E402
from bench.lib.server import has_table, machine_facts, server_facts  # noqa: E402
from bench.lib.verify import verify_tables_whole  # noqa: E402

BINLOG, SCAN = "binlog", "scan"
ONE_VALUE, ONE_PERCENT, NOTHING = "1 value", "1%", "nothing (cold-start overhead)"


class Bench:
    """One size's runs on its private server: each cold run timed, checked and logged."""

    def __init__(self, size: int, database: str, log_dir: Path, statements: int, home: Path) -> None:
        self.size, self.database, self.log_dir, self.statements = size, database, log_dir, statements
        self.home = str(home)  # one Dagster instance for the size's runs, as a deployment keeps one
        self.runs: list[FeedRun] = []
        self.catch_ups: list[FeedRun] = []
        self.number = 0
        self.stale = False  # a scan refresh ran since the last binlog one: the position lags

    def run(self, path: str, change: str, touched: int = 0, timed: bool = True) -> FeedRun:
        self.number += 1
        log_path = (
            self.log_dir / f"{self.database}_{self.number:02d}_{path}_{change.split()[0].replace('%', 'pct')}.log"
        )
        command = MATERIALIZE_ALL if change == "full build" else REFRESH_JOB
        seconds, read, steps, (feed, reason), top = cold_run(
            self.database, command, path, log_path, self.home, self.statements if timed else 0
        )
        run = FeedRun(self.size, path, change, seconds, read, feed, reason, touched, steps, top, str(log_path))
        expected = SCAN if change == "full build" else path
        if feed != expected:
            raise SystemExit(f"{log_path}: LAB_CHANGE_FEED={path} recorded change_feed={feed!r} ({reason})")
        (self.runs if timed else self.catch_ups).append(run)
        if path == SCAN and change != "full build":
            self.stale = True
        elif path == BINLOG:
            self.stale = False
        print(
            f"[{self.size}] {'' if timed else 'untimed catch-up: '}{path}, {change}: {seconds:.2f} s, steps"
            f" {steps.get(DERIVATIONS_STEP, float('nan')):.2f} + {steps.get(FLAT_TABLE_STEP, float('nan')):.2f} s,"
            f" rows read {read:,}; recorded {feed} ({reason})",
            flush=True,
        )
        return run

    def catch_up(self, path: str) -> None:
        """An untimed binlog refresh when scan refreshes ran since the last binlog one: called
        before the change to be measured is made, so the timed refresh reads only that change."""
        if path == BINLOG and self.stale:
            self.run(BINLOG, "catch-up", timed=False)


def one_size(size: int, args: argparse.Namespace, workdir: Path, log_dir: Path) -> tuple[list[FeedRun], dict]:
    directory = workdir if args.server else Path(tempfile.mkdtemp(prefix=f"feed_{size}_", dir=workdir))
    started = time.monotonic()
    server = (
        bench_server.serving(args.server)
        if args.server
        else private_server(directory, args.buffer_pool, args.log_file_size, bool(args.statements))
    )
    with server as running:
        where = args.server if running is None else f"private mariadbd pid {running.pid} on port {running.port}"
        print(f"[{size}] {where}, files in {directory}", flush=True)
        facts = server_facts()
        database = prepare_database(size, reuse=bool(args.server), database=f"feed_{size}")
        home = directory / f"dagster_home_{size}"
        home.mkdir(exist_ok=True)
        bench = Bench(size, database, log_dir, args.statements, home)
        if args.server and has_table(database, "lab_change_feed_position"):
            print(f"[{size}] reusing the built tables of {database} and the instance in {home}", flush=True)
        else:
            build = bench.run(BINLOG, "full build")
            if "no binlog position recorded yet" not in build.reason:
                raise SystemExit(f"the first build did not store a position: {build.reason}")
        rounds = 0
        for round_number in range(args.repeat):
            order = (BINLOG, SCAN) if round_number % 2 == 0 else (SCAN, BINLOG)
            for path in (p for p in order if p in args.paths):
                bench.catch_up(path)
                bench.run(path, ONE_VALUE, change_one_value(database, rounds))
                bench.catch_up(path)
                bench.run(path, ONE_PERCENT, change_one_percent(database, rounds))
                rounds += 1
        for path in (p for p in (BINLOG, SCAN) if p in args.paths):
            bench.catch_up(path)
            bench.run(path, NOTHING, 0)
        verify_seconds = verify_tables_whole(database, ["experiment_measurements"], size + SEED_ROWS)
        print(f"[{size}] verified the refreshed table whole ({verify_seconds:.0f} s)", flush=True)
    if not args.keep and not args.server:
        shutil.rmtree(directory, ignore_errors=True)
    extra = {
        "server": facts,
        "catch_ups": [asdict(r) for r in bench.catch_ups],
        "verify_seconds": verify_seconds,
        "seconds": time.monotonic() - started,
    }
    print(f"[{size}] {extra['seconds']:.0f} s in all", flush=True)
    return bench.runs, extra


def ratio_lines(runs: list[FeedRun]) -> list[str]:
    """Issue 28's 1% target: the refresh's steps against the full build's steps, per path."""
    lines = []
    for size in sorted({r.size for r in runs}):
        build = next((r for r in runs if r.size == size and r.change == "full build"), None)
        if build is None:
            continue  # --server reused a built lab: no full build was timed
        for path in (BINLOG, SCAN):
            steps = sorted(r.step_total for r in runs if (r.size, r.path, r.change) == (size, path, ONE_PERCENT))
            if steps and build.step_total:
                median = steps[len(steps) // 2]
                lines.append(
                    f"- {size:,} samples, {path}: 1% refresh steps {median:.2f} s = {median / build.step_total:.3f}x"
                    f" the full build's steps ({build.step_total:.2f} s; target at most 0.1x)"
                )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        default="100k",
        type=lambda text: [parse_size(s) for s in text.split(",") if s.strip()],
        help="comma-separated sample counts: 100k,1M",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each path and change (default 3)")
    parser.add_argument(
        "--paths",
        default=f"{BINLOG},{SCAN}",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip() in (BINLOG, SCAN)],
        help="the paths measured, comma-separated (default binlog,scan; a scan run at 10M takes minutes)",
    )
    parser.add_argument("--workdir", type=Path, help="where the private servers' files go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep each size's server files (datadir, binlog, log)")
    parser.add_argument("--buffer-pool", default="2G", help="the private server's innodb_buffer_pool_size")
    parser.add_argument("--log-file-size", default="256M", help="the private server's innodb_log_file_size")
    parser.add_argument(
        "--statements", type=int, default=0, metavar="N", help="performance_schema on; print the top N statements"
    )
    parser.add_argument("--json", type=Path, help="also write every run as JSON here")
    parser.add_argument(
        "--server",
        metavar="URL",
        help="a running server with a ROW binlog instead of a private one (e.g. mysql+pymysql://root@127.0.0.1:3307):"
        " feed_<size> and its tables are reused when there, the Dagster instance kept in --workdir",
    )
    args = parser.parse_args()
    log_dir = ROOT / "bench" / "out"
    log_dir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="feedbench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    machine = machine_facts()
    print("machine:", ", ".join(f"{k}={v}" for k, v in machine.items()), f"load1={os.getloadavg()[0]:.2f}")
    started = time.monotonic()
    runs: list[FeedRun] = []
    sizes = {}
    for size in args.sizes:
        size_runs, extra = one_size(size, args, workdir, log_dir)
        runs += size_runs
        sizes[size] = extra
    if args.workdir is None and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    server = next(iter(sizes.values()))["server"]
    print()
    print("server:", ", ".join(f"`{k}`={v}" for k, v in server.items() if k != "version"), server.get("version"))
    print()
    print("\n".join(table_lines(runs)))
    print()
    print("\n".join(ratio_lines(runs)))
    if args.statements:
        print("\n".join(statement_lines(runs)))
    print(f"\nbench wall time {time.monotonic() - started:.0f} s")
    if args.json:
        payload = {"machine": machine, "sizes": sizes, "runs": [asdict(r) for r in runs]}
        args.json.write_text(json.dumps(payload, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
