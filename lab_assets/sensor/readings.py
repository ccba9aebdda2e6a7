"""What a sensor tick reads from the server: when each source table was last written (cheap:
information_schema), and, only when that changed or a periodic check is due, the sources' totals
beside the same totals over what the tables were built from."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from lab_assets.catalog.value_type import source_value_type
from lab_assets.digests.sql import DIGEST_STATE
from lab_assets.flat_table.step import published_value_types
from lab_assets.lineage.sql import LINEAGE_STATE
from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.sessions import is_mariadb
from lab_assets.mysql.threads import completed_in_threads
from lab_assets.names import (
    EXPERIMENT_MEASUREMENTS,
    PENDING_SAMPLES,
)
from lab_assets.sensor.sql import recorded_totals_selects, source_totals_selects


def source_update_times(mysql: MySQLResource) -> tuple[dict[str, str | None], str]:
    """When each source table was last written (information_schema, by the lab's table names,
    keyed by lab_assets' names) and the server's time; a missing table stops the tick with the
    sentence that names it (:func:`raise_on_drift`)."""
    tables = mysql.tables
    names = {source.name: source.role for source in tables.sources}
    with mysql.connect() as connection:
        if not is_mariadb(connection):
            # MySQL 8 caches information_schema table statistics for a day by default.
            connection.exec_driver_sql("SET SESSION information_schema_stats_expiry = 0")
        rows = connection.exec_driver_sql(
            "SELECT table_name, DATE_FORMAT(update_time, '%%Y-%%m-%%d %%H:%%i:%%s'),"
            " DATE_FORMAT(NOW(), '%%Y-%%m-%%d %%H:%%i:%%s') FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name IN (%s, %s)",
            (tables.source_database, *names),
        ).fetchall()
    if len(rows) != 2:
        raise_on_drift(mysql)
        raise RuntimeError(f"{tables.source_database} must hold the tables {' and '.join(names)}")
    roles = {name.lower(): role for name, role in names.items()}  # lower_case_table_names may fold them
    return {roles[str(name).lower()]: updated for name, updated, _ in rows}, rows[0][2]


def raise_on_drift(mysql: MySQLResource) -> None:
    """Stops the tick with the one sentence naming a missing source table or column
    (:func:`lab_assets.mysql.resource.source_drift`), as a build would, instead of a raw server error from
    the scans. Run only before the scans, so a quiet tick reads update times alone."""
    drift = mysql.source_drift()
    if drift is not None:
        raise RuntimeError(drift)


def _side_by_side(mysql: MySQLResource, selects: Sequence[str]) -> list[tuple]:
    """One row of each SELECT, all run at once, each on its own connection; in ``selects``' order."""
    rows: dict[int, tuple] = {}
    tasks = {str(i): functools.partial(mysql.fetch_one, sql) for i, sql in enumerate(selects)}
    for name, row, error in completed_in_threads(tasks, at_most=mysql.side_by_side(len(tasks))):
        if error is not None:
            raise error
        assert row is not None
        rows[int(name)] = row
    return [rows[i] for i in range(len(selects))]


def totals(mysql: MySQLResource) -> tuple[str, str | None]:
    """The sources' totals as the refresh hashes them (one scan per source table), and the same
    totals over what the state tables recorded plus the count of pending marks (None before the
    state tables are built). The flat table is current when the two are equal and nothing is
    pending (lab_assets.flat_table.verification_sql). The two scans run side by side, each on its own
    connection, so a tick that sees a change takes about as long as the larger one (bench/RESULTS.md,
    "Write-to-table latency"); then the recorded totals, read from the small bucket tables."""
    raise_on_drift(mysql)
    tables = mysql.tables
    value_type = source_value_type(mysql)
    totals = source_totals_selects(tables, value_type)
    # The value column's type too: a type changed with the values' text unchanged (INT to
    # BIGINT, another collation) leaves every hash as it was, and the flat table must follow it.
    live = "|".join([*(":".join(map(str, row)) for row in _side_by_side(mysql, totals)), value_type.ddl])
    state_tables = (LINEAGE_STATE.buckets_table, DIGEST_STATE.buckets_table, PENDING_SAMPLES, EXPERIMENT_MEASUREMENTS)
    if not all(mysql.column_names(table) for table in state_tables):
        return live, None
    recorded = [":".join(map(str, mysql.fetch_one(sql))) for sql in recorded_totals_selects(tables)]
    published = set(published_value_types(mysql))
    recorded.append(value_type.ddl if published <= {value_type.ddl} else ",".join(sorted(published)))
    (pending,) = mysql.fetch_one(f"SELECT COUNT(*) FROM {tables.qualified(PENDING_SAMPLES)}")
    return live, "|".join(recorded) + ("" if pending == 0 else f"|{pending} pending")
