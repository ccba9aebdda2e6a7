"""The floors under issue 17's two speed targets, measured in one run beside what they bound.

Issue 17 asks for a full build with every check at most 0.6x the plain-SQL reference build
(``bench.py``'s reference) and a 1% refresh at most 0.1x the full build. This script times, on
the same server and the same ``<prefix>_<size>`` database, in alternating rounds:

- **reference**: ``bench.reference_build`` (one recursive CTE, one MAX(CASE) pivot, one
  INSERT ... SELECT);
- **chunked plain SQL**: the same statements with no checks, no refresh state and no Dagster:
  the walk once into a keyed scratch table, then the pivot ``INSERT ... SELECT`` per range of
  50,000 sample ids (lab_assets' chunk width), on one connection and on two (the server's
  cores). The cheapest way we know to build the table at all;
- **full build**: ``dagster asset materialize -m lab_assets.definitions --select '*'`` as a cold
  process after the outputs are dropped (``bench.lab_assets_cli_build``);
- **no-op refresh**: the sensor's job ``lab_refresh`` as a cold process with nothing changed,
  on the same database (what every refresh pays before its first changed row) and on a
  ``<prefix>_0`` database holding only the 20 seed samples (what Dagster's run process costs
  with nothing to read: start-up, run and event bookkeeping);
- **bare scans**: one ``SUM(CRC32(...))`` over every row of each source table, the least any
  change detection reading the sources with SELECT alone has to do (they keep no change log).

It then prints medians with their spread and both targets next to their floors. Tables are not
verified here (``bench.py`` does that for the full build); nothing is written to the sources.

    .venv/bin/python bench/floors.py --size 1M --rounds 3 --reuse

Results in bench/RESULTS.md ("The floors under the two targets").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
# As in write_to_table_latency.py: from the checkout's root, ``bench.bench`` is the benchmark script.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from bench.bench import (  # noqa: E402
    MATERIALIZE_ALL,
    REFRESH_JOB,
    connect,
    drop_outputs,
    lab_assets_cli_build,
    parse_size,
    prepare_database,
    reference_build,
)
from lab_assets.lib.bulk import DEFAULT_CHUNK_WIDTH, key_ranges  # noqa: E402

CHUNKED_TABLE = "experiment_measurements_chunked"
WALK_TABLE = "experiment_measurements_chunked_walk"
# The targets: full build / reference, and 1% refresh / full build.
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


def bare_scans(database: str) -> dict[str, float]:
    """Seconds of one hash-sum scan over every row of each source table."""
    scans = {
        "sample_measurements": "SELECT COUNT(*), SUM(CRC32(CONCAT_WS(',', sample_id, measurement_type, value)))"
        " FROM sample_measurements",
        "samples": "SELECT COUNT(*), SUM(CRC32(CONCAT_WS(',', id, parent_id, experiment_id))) FROM samples",
    }
    seconds = {}
    with connect(database) as connection, connection.cursor() as cursor:
        for table, sql in scans.items():
            started = time.monotonic()
            cursor.execute(sql)
            cursor.fetchall()
            seconds[table] = time.monotonic() - started
    return seconds


def cold_run(database: str, log_dir: Path, command: tuple[str, ...], round_number: int) -> float:
    return lab_assets_cli_build(database, log_dir, command, round_number).seconds


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
        timed("full build", n, lambda n=n: cold_run(database, log_dir, MATERIALIZE_ALL, n))
        timed(f"no-op refresh at {args.size:,}", n, lambda n=n: cold_run(database, log_dir, REFRESH_JOB, n))
        timed("no-op refresh at 20 samples", n, lambda n=n: cold_run(seed, log_dir, REFRESH_JOB, n))
        timed("bare scan", n, lambda: bare_scans(database))

    print(f"\n{args.size:,} samples (+20 seed), {args.rounds} rounds, seconds, median (min-max):\n")
    print("| measured | seconds |\n|---|---|")
    for name, values in runs.items():
        print(f"| {name} | {spread(values)} |")
    median = {name: statistics.median(values) for name, values in runs.items()}
    build_bound = BUILD_TARGET * median["reference"]
    refresh_bound = REFRESH_TARGET * median["full build"]
    build_floor = median["no-op refresh at 20 samples"] + min(
        median["chunked plain SQL, 1 conn. total"], median["chunked plain SQL, 2 conn. total"]
    )
    refresh_floor = median[f"no-op refresh at {args.size:,}"]
    print(
        f"\n- build target {BUILD_TARGET}x reference = {build_bound:.2f} s; a cold Dagster run with nothing to do"
        f" plus the chunked plain SQL (no checks, no refresh state) = {build_floor:.2f} s"
        f" ({build_floor / median['reference']:.2f}x); the full build: {median['full build']:.2f} s"
        f" ({median['full build'] / median['reference']:.2f}x)"
        f"\n- refresh target {REFRESH_TARGET}x full build = {refresh_bound:.2f} s; a refresh with nothing changed:"
        f" {refresh_floor:.2f} s ({refresh_floor / median['full build']:.2f}x), of which a cold Dagster run with"
        f" nothing to read {median['no-op refresh at 20 samples']:.2f} s and the bare source scans"
        f" {median['bare scan sample_measurements'] + median['bare scan samples']:.2f} s"
    )


if __name__ == "__main__":
    main()
