"""Deep trees vs flat trees, on fresh and on stale optimizer statistics.

What: wall seconds of a full materialization of ``LAB_ASSETS`` and of the refresh after one
re-parent, on a database of ``--base`` generated samples plus D extra samples shaped either as
one chain (each the child of the previous, D levels deep) or flat (the same D samples, all
children of one root), for each depth D in ``--depths``.

Why: InnoDB keeps the statistics it took while a table was empty when they are persistent and
never recalculated (``STATS_PERSISTENT=1 STATS_AUTO_RECALC=0``, a restore, a DBA's setting). On
such tables MariaDB can plan a recursive walk (lineage build, lineage refresh, checks) as a scan
of every sample per tree level, so a deep chain costs depth x samples row reads; every walk
therefore steps parent -> children through the index on samples.parent_id (STRAIGHT_JOIN ...
FORCE INDEX). This script shows what depth and stale statistics cost a checkout's code: run it
with ``--repo`` at two checkouts to compare them on the same data. A flat tree has the same
samples with depth 1, so chain vs flat isolates the cost of depth. Results in bench/RESULTS.md
("Deep trees and stale statistics").

How, for each depth D, statistics mode and shape:

1. create ``deep_<mode>_<shape>_<D>`` with the source schema (lab_assets.local_lab's
   source_schema_statements without the seed INSERTs);
   - ``fresh``: the tables as created; statistics recomputed (ANALYZE TABLE) after the inserts;
   - ``stale``: ``ALTER TABLE ... STATS_PERSISTENT=1 STATS_AUTO_RECALC=0`` and ``ANALYZE TABLE``
     while the tables are empty, then the inserts (the statistics keep saying 0 rows);
2. insert ``generate(base, first_id=1)`` (lab_assets_tests.lab_data: ids 1..base in the seed
   generator's distribution, so sample 5 exists and every parent is present) and the D extra
   samples, ids from 100000, experiment 3: ``chain`` = 100000 a root, each next id the child of
   the previous; ``flat`` = 100000 a root, the other D-1 its children. The last one gets one
   ``vol`` measurement;
3. in a subprocess run by ``<repo>/.venv/bin/python`` (so that checkout's code is what runs;
   the subprocess checks lab_assets is imported from ``<repo>``): time ``dagster.materialize(
   LAB_ASSETS)`` with MySQLResource + MySQLIOManager (full refresh: no output tables yet), then
   ``UPDATE samples SET parent_id = 5 WHERE id = 100000`` (the chain's head / the flat root
   moves under root 5's tree; not timed), then time the second materialization (the refresh) and
   read the sample_lineage materialization's metadata ``refresh`` (incremental / full) and
   ``build_seconds`` (the lineage write);
4. a build that runs longer than ``--timeout`` seconds is recorded as "> timeout": the
   subprocess is killed and its server-side statements on that database are KILLed, then the
   next case runs;
5. the database is dropped (``--keep`` keeps it) and, at the end, a Markdown table is printed:
   depth | stats | shape | full refresh s | refresh s | lineage refresh mode | lineage write s.

Asset checks are not part of the timed materializations (LAB_ASSETS only).

Usage (from the checkout holding this file, with its venv)::

    .venv/bin/python bench/deep_trees.py --repo /work/main
    .venv/bin/python bench/deep_trees.py --repo /path/to/other-checkout --depths 1500,3000

Needs the local server (LAB_BENCH_SERVER_URL, default mysql+pymysql://root@127.0.0.1:3306);
only databases named ``deep_*`` are created, replaced and dropped. The data is generated with
this checkout's lab_assets_tests.lab_data and source schema, whichever checkout ``--repo`` names.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, Python puts bench/ first on sys.path, where ``bench`` would be bench.py;
# from the checkout's root, ``bench`` is this folder and ``bench.lib`` the benchmarks' library.
# bench.lib.trees imports no lab_assets at module level: the --child process takes lab_assets
# from --repo, which it puts first on sys.path.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from bench.lib.trees import MODES, SHAPES, child, connect, fmt_build, one_row, prepare, run_case  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", default="1500,3000,6000,20000", help="comma-separated D values")
    parser.add_argument("--base", type=int, default=30_000, help="generated samples besides the D extra ones")
    parser.add_argument("--repo", type=Path, default=ROOT, help="checkout whose code runs (uses its .venv)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per build before '> timeout'")
    parser.add_argument("--modes", default=",".join(MODES), help="statistics modes: fresh,stale")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="shapes: chain,flat")
    parser.add_argument("--keep", action="store_true", help="keep the deep_* databases")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    repo = args.repo.resolve()
    if args.child:
        child(repo, args.url)
        return
    if not (repo / ".venv" / "bin" / "python").exists():
        raise SystemExit(
            f"{repo}/.venv/bin/python missing: python3 -m venv .venv && .venv/bin/pip install -e '.[test]'"
        )
    depths = [int(d.replace("_", "")) for d in args.depths.split(",") if d]
    modes = [m for m in args.modes.split(",") if m]
    shapes = [s for s in args.shapes.split(",") if s]
    assert set(modes) <= set(MODES) and set(shapes) <= set(SHAPES), (modes, shapes)
    commit = subprocess.run(
        ["git", "-C", str(repo), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
    ).stdout.strip()
    log_dir = Path(tempfile.mkdtemp(prefix="deep_trees_logs_"))
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT @@version")
        (version,) = one_row(cursor)
    print(f"repo {repo} ({commit[:100]}); server {version}; base {args.base}; logs in {log_dir}", flush=True)

    started_all = time.monotonic()
    rows = []
    for depth in depths:
        for mode in modes:
            for shape in shapes:
                database = f"deep_{mode}_{shape}_{depth}"
                made = time.monotonic()
                facts = prepare(database, args.base, depth, mode, shape)
                load1 = os.getloadavg()[0]
                print(
                    f"[{database}] prepared in {time.monotonic() - made:.1f} s ({facts}); load1 {load1:.2f}", flush=True
                )
                outcome = run_case(Path(__file__).resolve(), repo, database, args.timeout, log_dir / f"{database}.log")
                full, refresh = outcome.get("full"), outcome.get("refresh")
                lineage = (refresh or {}).get("lineage", {})
                row = {
                    "depth": depth,
                    "stats": mode,
                    "shape": shape,
                    "full": fmt_build(full, args.timeout),
                    "refresh": fmt_build(refresh, args.timeout),
                    "mode": lineage.get("refresh", "n/a"),
                    "write": "n/a" if "build_seconds" not in lineage else f"{lineage['build_seconds']:.3f}",
                }
                rows.append(row)
                print(
                    f"[{database}] full {row['full']} s (lineage {(full or {}).get('lineage')}), refresh"
                    f" {row['refresh']} s (lineage {lineage or None})"
                    + "".join(
                        f"; {e['event']}: {e.get('message', '')}"
                        for e in (full, refresh)
                        if e and e["event"] == "error"
                    ),
                    flush=True,
                )
                if not args.keep:
                    with connect() as connection, connection.cursor() as cursor:
                        cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")

    header = "| depth | stats | shape | full refresh s | refresh s | lineage refresh mode | lineage write s |"
    lines = [header, "|" + "---|" * 7]
    for r in rows:
        cells = [f"{r['depth']:,}", r["stats"], r["shape"], r["full"], r["refresh"], r["mode"], r["write"]]
        lines.append("| " + " | ".join(cells) + " |")
    print()
    print(f"{repo} ({commit[:60]}), base {args.base:,} samples + D, timeout {args.timeout:g} s per build")
    print()
    print("\n".join(lines))
    print()
    print(f"total {time.monotonic() - started_all:.0f} s")


if __name__ == "__main__":
    main()
