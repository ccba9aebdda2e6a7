"""The floors under the two speed targets, measured in one run beside what they bound.

The targets: a full refresh with every check at most 0.6x the plain-SQL reference build
(``bench.py``'s reference) and a 1% refresh at most 0.1x the full refresh. This script times, on
the same server and the same ``<prefix>_<size>`` database, in rounds that each time every item
below once, in this order:

- **reference**: ``bench.lib.reference.reference_build`` (one recursive CTE, one MAX(CASE) pivot, one
  INSERT ... SELECT);
- **chunked plain SQL**: the same statements with no checks, no refresh state and no Dagster:
  the walk once into a keyed scratch table, then the pivot ``INSERT ... SELECT`` per range of
  50,000 sample ids (lab_assets' chunk width), on one connection and on two (the server's
  cores). The cheapest way we know to build the table at all;
- **full refresh**: ``dagster asset materialize -m lab_assets.definitions --select '*'`` as a cold
  process after the outputs are dropped (``bench.lib.runs.lab_assets_cli_build``);
- **no-op refresh**: the sensor's job ``lab_refresh`` as a cold process with nothing changed,
  on the same database (what every refresh pays before its first changed row) and on a
  ``<prefix>_0`` database holding only the 20 seed samples, with its seconds outside its two
  Dagster steps (what Dagster's run process costs with nothing to read: start-up, run and event
  bookkeeping);
- **bare scans**: one ``SUM(CRC32(...))`` over every row of each source table, one after the other
  and side by side, the least any change detection reading the sources with SELECT alone has to
  do (they keep no change log);
- **cold import**: a fresh Python process that imports ``lab_assets.definitions`` and exits, the
  least any run process pays (the no-op refreshes above add Dagster's run bookkeeping, a fresh
  DAGSTER_HOME and lab_assets' own few statements).

It then prints medians with their spread and both targets next to their floors: for the build,
the import plus the chunked plain SQL (what is left of the target is the budget for every check
and the refresh state); for the refresh, the import plus both bare scans side by side, and a
run's seconds outside its steps plus those scans. Tables are not verified here (``bench.py``
does that for the full refresh); nothing is written to the sources.

    .venv/bin/python bench/floors.py --size 1M --rounds 3 --reuse

Results in bench/RESULTS.md ("The floors under the two targets").
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
# As in bench.py: from the checkout's root, ``bench.lib`` is the benchmarks' library.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from bench.lib.data import drop_outputs, parse_size, prepare_database  # noqa: E402
from bench.lib.reference import reference_build  # noqa: E402
from bench.lib.runs import MATERIALIZE_ALL, REFRESH_JOB, lab_assets_cli_build  # noqa: E402
from bench.lib.server import connect  # noqa: E402
from lab_assets.sql.bulk import DEFAULT_CHUNK_WIDTH, key_ranges  # noqa: E402

CHUNKED_TABLE = "experiment_measurements_chunked"
WALK_TABLE = "experiment_measurements_chunked_walk"
# The targets: full refresh / reference, and 1% refresh / full refresh.
BUILD_TARGET, REFRESH_TARGET = 0.6, 0.1


def _row(cursor) -> tuple:
    """The one row a COUNT, MIN/MAX or @@version query gives."""
    row = cursor.fetchone()
    assert row is not None, "the query gave no row"
    return row


def chunked_plain_build(database: str, connections: int) -> dict[str, float]:
    """The reference's table built the cheapest way we know, without checks or state: the
    recursive walk once into a scratch table keyed by sample id, then one pivot
    ``INSERT ... SELECT`` per :data:`DEFAULT_CHUNK_WIDTH` sample ids, the ranges shared out over
    ``connections`` connections. Seconds per phase and in all; both tables are dropped afterwards
    (the row count is checked against ``samples`` first)."""
    with connect(database) as connection, connection.cursor() as cursor:
        started = time.monotonic()
        cursor.execute("SELECT DISTINCT measurement_type FROM sample_measurements WHERE measurement_type IS NOT NULL")
        types = sorted(r[0] for r in cursor.fetchall())
        assert all(t.isidentifier() and t.islower() for t in types), types  # the generator's types only
        cursor.execute("SELECT COUNT(*), MIN(id), MAX(id) FROM samples")
        count, low, high = _row(cursor)
        cursor.execute("SELECT @@version")
        variable = "max_recursive_iterations" if "mariadb" in _row(cursor)[0].lower() else "cte_max_recursion_depth"
        cursor.execute(f"SET SESSION {variable} = {count + 1}")
        columns = [f"measurement_{t}" for t in types]
        cursor.execute(f"DROP TABLE IF EXISTS `{CHUNKED_TABLE}`, `{WALK_TABLE}`")
        cursor.execute(
            f"CREATE TABLE `{CHUNKED_TABLE}` (experiment_id INT NULL, top_parent_id INT NULL, sample_id INT NOT NULL, "
            + "".join(f"`{c}` DECIMAL(16,6) NULL, " for c in columns)
            + "PRIMARY KEY (sample_id), KEY (top_parent_id), KEY (experiment_id)) ENGINE=InnoDB"
        )
        walk_started = time.monotonic()
        cursor.execute(
            f"CREATE TABLE `{WALK_TABLE}` (sample_id INT NOT NULL PRIMARY KEY, top_parent_id INT) ENGINE=InnoDB"
            " WITH RECURSIVE tree (sample_id, top_parent_id) AS ("
            " SELECT id, id FROM samples WHERE parent_id IS NULL UNION ALL"
            " SELECT child.id, tree.top_parent_id FROM tree JOIN samples AS child ON child.parent_id = tree.sample_id)"
            " SELECT sample_id, top_parent_id FROM tree"
        )
        pivot_started = time.monotonic()
        pivots = ", ".join(
            f"MAX(CASE WHEN measurement_type = '{t}' THEN value END) AS `{c}`"
            for t, c in zip(types, columns, strict=True)
        )
        ranges = key_ranges(low, high, DEFAULT_CHUNK_WIDTH)

        def insert_ranges(share: int) -> None:
            with connect(database) as own, own.cursor() as insert:
                for start, end in ranges[share::connections]:
                    insert.execute(
                        f"INSERT INTO `{CHUNKED_TABLE}` SELECT s.experiment_id, walk.top_parent_id, s.id"
                        + "".join(f", pivot.`{c}`" for c in columns)
                        + f" FROM samples AS s LEFT JOIN `{WALK_TABLE}` AS walk ON walk.sample_id = s.id"
                        f" LEFT JOIN (SELECT sample_id, {pivots} FROM sample_measurements"
                        f" WHERE sample_id BETWEEN {start} AND {end} GROUP BY sample_id) AS pivot"
                        f" ON pivot.sample_id = s.id WHERE s.id BETWEEN {start} AND {end}"
                    )

        with ThreadPoolExecutor(connections) as pool:
            list(pool.map(insert_ranges, range(connections)))  # re-raises a failed share
        finished = time.monotonic()
        cursor.execute(f"SELECT COUNT(*) FROM `{CHUNKED_TABLE}`")
        (built,) = _row(cursor)
        cursor.execute(f"DROP TABLE `{CHUNKED_TABLE}`, `{WALK_TABLE}`")
    if built != count:
        raise SystemExit(f"the chunked build wrote {built} rows for {count} samples")
    return {"walk": pivot_started - walk_started, "pivot": finished - pivot_started, "total": finished - started}


BARE_SCANS = {
    "sample_measurements": "SELECT COUNT(*), SUM(CRC32(CONCAT_WS(',', sample_id, measurement_type, value)))"
    " FROM sample_measurements",
    "samples": "SELECT COUNT(*), SUM(CRC32(CONCAT_WS(',', id, parent_id, experiment_id))) FROM samples",
}


def _scan(database: str, sql: str) -> float:
    with connect(database) as connection, connection.cursor() as cursor:
        started = time.monotonic()
        cursor.execute(sql)
        cursor.fetchall()
        return time.monotonic() - started


def bare_scans(database: str) -> dict[str, float]:
    """Seconds of one hash-sum scan over every row of each source table, one after the other,
    then both side by side on two connections (``side by side``: wall seconds of the pair)."""
    seconds = {table: _scan(database, sql) for table, sql in BARE_SCANS.items()}
    started = time.monotonic()
    with ThreadPoolExecutor(len(BARE_SCANS)) as pool:
        list(pool.map(lambda sql: _scan(database, sql), BARE_SCANS.values()))
    seconds["side by side"] = time.monotonic() - started
    return seconds


def cold_import() -> float:
    """Seconds of a fresh Python process that only imports ``lab_assets.definitions``: the least
    any run process of this code location pays before its first statement (a sensor's run is
    such a process, started by the run launcher)."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import lab_assets.definitions"], cwd=HERE.parent, check=True, capture_output=True
    )
    return time.monotonic() - started


def cold_run(database: str, log_dir: Path, command: tuple[str, ...], round_number: int) -> float:
    return lab_assets_cli_build(database, log_dir, command, round_number).seconds


def cold_run_overhead(database: str, log_dir: Path, round_number: int) -> dict[str, float]:
    """The sensor's job as a cold process, its wall seconds (``total``) and what is left after its
    Dagster steps' own seconds (``outside the steps``: start-up with the import, the run's and its
    events' bookkeeping in the instance, shutdown)."""
    run = lab_assets_cli_build(database, log_dir, REFRESH_JOB, round_number)
    steps = sum(seconds for name, seconds in run.step_seconds.items() if name.startswith("step:"))
    return {"total": run.seconds, "outside the steps": run.seconds - steps}


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f} (1 run)"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=1_000_000, help="generated samples (default 1M)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians and min-max reported)")
    parser.add_argument("--reuse", action="store_true", help="keep <prefix>_<size> source data from an earlier run")
    parser.add_argument("--prefix", default="bench", help="database name prefix (default bench)")
    args = parser.parse_args()
    log_dir = HERE / "out"
    log_dir.mkdir(parents=True, exist_ok=True)
    database = prepare_database(args.size, args.reuse, args.prefix)
    seed = prepare_database(0, True, args.prefix)
    cold_run(seed, log_dir, MATERIALIZE_ALL, 0)  # the seed database's tables, once

    runs: dict[str, list[float]] = {}

    def timed(name: str, round_number: int, measure: Callable[[], float | dict[str, float]]) -> None:
        result = measure()
        for key, value in result.items() if isinstance(result, dict) else [("", result)]:
            runs.setdefault(f"{name} {key}".strip(), []).append(value)
        shown = {k: round(v, 2) for k, v in result.items()} if isinstance(result, dict) else f"{result:.2f} s"
        print(f"[round {round_number + 1}] {name}: {shown}", flush=True)

    for n in range(args.rounds):
        drop_outputs(database)
        timed("reference", n, lambda: reference_build(database).seconds)
        for connections in (1, 2):
            timed(f"chunked plain SQL, {connections} conn.", n, lambda c=connections: chunked_plain_build(database, c))
        drop_outputs(database)
        timed("full refresh", n, lambda n=n: cold_run(database, log_dir, MATERIALIZE_ALL, n))
        timed(f"no-op refresh at {args.size:,}", n, lambda n=n: cold_run(database, log_dir, REFRESH_JOB, n))
        timed("no-op refresh at 20 samples", n, lambda n=n: cold_run_overhead(seed, log_dir, n))
        timed("bare scan", n, lambda: bare_scans(database))
        timed("cold import of lab_assets.definitions", n, cold_import)

    print(f"\n{args.size:,} samples (+20 seed), {args.rounds} rounds, seconds, median (min-max):\n")
    print("| measured | seconds |\n|---|---|")
    for name, values in runs.items():
        print(f"| {name} | {spread(values)} |")
    median = {name: statistics.median(values) for name, values in runs.items()}
    reference, build = median["reference"], median["full refresh"]
    chunked = min(median["chunked plain SQL, 1 conn. total"], median["chunked plain SQL, 2 conn. total"])
    process = median["cold import of lab_assets.definitions"]
    scans = median["bare scan side by side"]
    run_overhead = median["no-op refresh at 20 samples outside the steps"]
    build_floor = process + chunked
    refresh_floor = process + scans
    run_floor = run_overhead + scans
    print(
        f"\n- build target: {BUILD_TARGET}x the reference = {BUILD_TARGET * reference:.2f} s. The full refresh:"
        f" {build:.2f} s ({build / reference:.2f}x). Without any check or refresh state, a process that imports"
        f" lab_assets plus the chunked plain SQL = {build_floor:.2f} s ({build_floor / reference:.2f}x), which"
        f" leaves {BUILD_TARGET * reference - build_floor:.2f} s for the checks, the state tables and Dagster's"
        " run bookkeeping."
        f"\n- refresh target: {REFRESH_TARGET}x the full refresh = {REFRESH_TARGET * build:.2f} s. A refresh with"
        f" nothing changed: {median[f'no-op refresh at {args.size:,}']:.2f} s; at 20 samples"
        f" {median['no-op refresh at 20 samples total']:.2f} s, of which {run_overhead:.2f} s outside its steps."
        " Floors, before any changed row is found, written or checked: the import plus both sources read once"
        f" side by side = {refresh_floor:.2f} s ({refresh_floor / build:.2f}x of the full refresh); a Dagster run's"
        f" time outside its steps plus that read = {run_floor:.2f} s ({run_floor / build:.2f}x)."
        f"\n- both targets at once: a refresh within {REFRESH_TARGET}x of a build within {BUILD_TARGET}x of the"
        f" reference = {REFRESH_TARGET * BUILD_TARGET * reference:.2f} s, against that floor of {refresh_floor:.2f} s."
    )


if __name__ == "__main__":
    main()
