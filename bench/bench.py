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
import sys
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, Python puts bench/ first on sys.path, where ``bench`` would be this file itself;
# from the checkout's root, ``bench`` is this folder and ``bench.lib`` the benchmarks' library.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from bench.lib.data import SEED_ROWS, drop_outputs, parse_size, prepare_database  # noqa: E402
from bench.lib.memory import MEMORY_POLL_SECONDS  # noqa: E402
from bench.lib.reference import REFERENCE_TABLE, ReferenceRun, reference_build  # noqa: E402
from bench.lib.report import (  # noqa: E402
    MEMORY_LIMIT_MIB,
    detail_lines,
    growth_lines,
    median_run_index,
    report_lines,
)
from bench.lib.runs import CliRun, auto_repeat, lab_assets_cli_build, one_percent_refresh, quiet_sensor_tick  # noqa: E402
from bench.lib.server import connect, machine_facts, peak_rss_mib, server_facts  # noqa: E402
from bench.lib.verify import verify_tables_whole  # noqa: E402


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
