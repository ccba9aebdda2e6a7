"""Times the whole-build statements of ``lab_source_derivations`` in different schedules on two
connections, to choose the order its step writes them in (``derivations.WRITE_ORDER``).

The statements are lab_assets' own SQL (lineage walk, catalog scan, orphans' anti-join, digest
fill in 50k sample-id ranges), run on pymysql connections with the session settings lab_assets
makes (READ COMMITTED, 256 MiB temporary tables, the recursion limit), into scratch tables
``schedule_lineage`` / ``schedule_digests`` of the bench database, dropped at the end. Needs a
database made by ``bench.py`` (``--generate-only`` is enough). Results in bench/RESULTS.md
("Derivation schedules").

    .venv/bin/python bench/derivation_schedules.py --database bench_1000000 --rounds 2
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pymysql

HERE = Path(__file__).resolve().parent
# As in bench.py: from the checkout's root, ``bench.lib`` is the benchmarks' library.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from bench.lib.server import connect as server_connect  # noqa: E402
from lab_assets.catalog.sql import measurement_type_catalog_select  # noqa: E402
from lab_assets.digests.sql import DIGEST_TABLE_DEFINITION, measurement_digest_select  # noqa: E402
from lab_assets.lineage.sql import LINEAGE_TABLE, lineage_bulk_build  # noqa: E402
from lab_assets.mysql.sessions import recursion_limit_statement  # noqa: E402
from lab_assets.sources.locations import TableLocations  # noqa: E402
from lab_assets.sources.value_types import DEFAULT_VALUE_TYPE  # noqa: E402
from lab_assets.sql.bulk import chunk_select, key_ranges  # noqa: E402

LINEAGE, DIGESTS = "schedule_lineage", "schedule_digests"
TEMP_TABLE_BYTES = 256 * 1024 * 1024  # MySQLResource.temp_table_memory_mb's default


def connect(database: str) -> pymysql.cursors.Cursor:
    cursor = server_connect(database).cursor()  # autocommit
    cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    cursor.execute(f"SET SESSION tmp_table_size = {TEMP_TABLE_BYTES}, max_heap_table_size = {TEMP_TABLE_BYTES}")
    cursor.execute(recursion_limit_statement(True, 100_000_000))
    return cursor


class Statements:
    def __init__(self, database: str) -> None:
        self.database = database
        self.tables = TableLocations(database, database, "parent_id")
        cursor = connect(database)
        for table, definition in ((LINEAGE, LINEAGE_TABLE), (DIGESTS, DIGEST_TABLE_DEFINITION)):
            cursor.execute(f"DROP TABLE IF EXISTS `{table}`")
            cursor.execute(definition.create_statement(database, table))

    def lineage(self) -> None:
        build = lineage_bulk_build(self.tables)
        cursor = connect(self.database)
        cursor.execute(f"INSERT INTO `{LINEAGE}` {build.select_sql}")
        cursor.execute(f"ALTER TABLE `{LINEAGE}` ADD INDEX (top_parent_id)")

    def catalog(self) -> None:
        cursor = connect(self.database)
        cursor.execute(measurement_type_catalog_select(self.tables, "utf8mb4", "utf8mb4_general_ci"))
        cursor.fetchall()

    def orphans(self) -> None:
        cursor = connect(self.database)
        cursor.execute(
            f"SELECT COUNT(*) FROM {self.tables.sample_measurements} AS m LEFT JOIN {self.tables.samples} AS s"
            " ON s.id = m.sample_id WHERE m.sample_id IS NOT NULL AND s.id IS NULL"
        )
        cursor.fetchall()

    def digests(self, connections: int) -> None:
        select_sql = measurement_digest_select(self.tables, DEFAULT_VALUE_TYPE)  # the seed schema's value type
        cursor = connect(self.database)
        cursor.execute(f"SELECT MIN(sample_id), MAX(sample_id) FROM {self.tables.sample_measurements}")
        low, high = cursor.fetchone() or (None, None)
        inserts = [
            f"INSERT INTO `{DIGESTS}` {chunk_select(select_sql, 'm.sample_id', first, last)}"
            for first, last in key_ranges(low, high, 50_000)
        ]

        def run(share: list[str]) -> None:
            worker = connect(self.database)
            for insert in share:
                worker.execute(insert)

        threads = [threading.Thread(target=run, args=(inserts[i::connections],)) for i in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def drop(self) -> None:
        cursor = connect(self.database)
        for table in (LINEAGE, DIGESTS):
            cursor.execute(f"DROP TABLE IF EXISTS `{table}`")


def one_after_another(steps: list[tuple[str, Callable[[], None]]], times: dict[str, float]) -> Callable[[], None]:
    def run() -> None:
        for name, step in steps:
            started = time.monotonic()
            step()
            times[name] = round(time.monotonic() - started, 2)

    return run


def timed_schedule(database: str, name: str) -> tuple[float, dict[str, float]]:
    """One schedule, from empty scratch tables: its wall seconds and each statement's."""
    s = Statements(database)
    times: dict[str, float] = {}
    lanes = {
        # the scans first: catalog beside orphans, then the lineage, then the digests on two connections
        "catalog | orphans, then lineage, then digests x2": [
            [("catalog", s.catalog)],
            [("orphans", s.orphans)],
        ],
        # derivations.WRITE_ORDER: the walk beside catalog then orphans, then the digests on two connections
        "lineage | catalog, orphans; then digests x2": [
            [("lineage", s.lineage)],
            [("catalog", s.catalog), ("orphans", s.orphans)],
        ],
        "lineage | catalog, orphans, digests x1": [
            [("lineage", s.lineage)],
            [("catalog", s.catalog), ("orphans", s.orphans), ("digests x1", lambda: s.digests(1))],
        ],
        "lineage, orphans | catalog, digests x1": [
            [("lineage", s.lineage), ("orphans", s.orphans)],
            [("catalog", s.catalog), ("digests x1", lambda: s.digests(1))],
        ],
    }[name]
    started = time.monotonic()
    threads = [threading.Thread(target=one_after_another(lane, times)) for lane in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tail = []
    if name.startswith("catalog | orphans"):
        tail = [("lineage", s.lineage), ("digests x2", lambda: s.digests(2))]
    elif name.endswith("then digests x2"):
        tail = [("digests x2", lambda: s.digests(2))]
    one_after_another(tail, times)()
    seconds = round(time.monotonic() - started, 2)
    s.drop()
    return seconds, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="bench_1000000")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    schedules = [
        "catalog | orphans, then lineage, then digests x2",
        "lineage | catalog, orphans; then digests x2",
        "lineage | catalog, orphans, digests x1",
        "lineage, orphans | catalog, digests x1",
    ]
    for round_number in range(args.rounds):
        for name in schedules:
            seconds, times = timed_schedule(args.database, name)
            print(f"round {round_number + 1}: {seconds:6.2f} s  {name}  {times}", flush=True)


if __name__ == "__main__":
    main()
