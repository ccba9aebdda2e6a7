"""The pending-table protocol between the state tables and the flat table.

``lab_pending_samples`` holds the sample ids whose flat-table rows must be rebuilt:

1. before a state table (lineage, digests) is written, the ids it changes are **marked**
   (:func:`mark_pending`), or the **rebuild-all marker** when it is rebuilt whole; a crash
   after the marks only rebuilds rows again;
2. the flat table reads the marks (:func:`read_pending`) to plan its write and rebuilds the
   marked rows (or the whole table);
3. the verification after the write (lab_assets.refresh.verification) **consumes** the marks and
   marks again the rows that changed while they were written. A crash before it only rebuilds
   rows again.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab_assets.lib.names import PENDING_SAMPLES
from lab_assets.lib.refresh import CHANGE_SET_DEFINITION
from lab_assets.mysql import MySQLResource
from lab_assets.server_errors import raise_on_lost_values

# INT's minimum: AUTO_INCREMENT sample ids are positive, so it never names a sample.
REBUILD_ALL_MARKER = -2147483648
REBUILD_ALL_SELECT = f"SELECT {REBUILD_ALL_MARKER}"
PENDING_TABLE_DEFINITION = CHANGE_SET_DEFINITION


@dataclass(frozen=True)
class PendingSamples:
    count: int  # rows in the pending table (the marker included)
    rebuild_all: bool  # the rebuild-all marker is there


def ensure_pending_table(mysql: MySQLResource) -> None:
    if not mysql.column_names(PENDING_SAMPLES):
        mysql.execute(PENDING_TABLE_DEFINITION.create_statement(mysql.tables.output_database, PENDING_SAMPLES))


def mark_pending(mysql: MySQLResource, select_sql: str) -> None:
    """Adds the sample ids ``select_sql`` gives (or :data:`REBUILD_ALL_SELECT`) to the marks."""
    with mysql.connect() as connection:
        connection.exec_driver_sql(
            f"INSERT IGNORE INTO {mysql.tables.qualified(PENDING_SAMPLES)} (sample_id) {select_sql}"
        )
        raise_on_lost_values(connection)


def read_pending(mysql: MySQLResource) -> PendingSamples:
    count, rebuild_all = mysql.fetch_one(
        f"SELECT COUNT(*), COALESCE(MAX(sample_id = %s), 0) FROM {mysql.tables.qualified(PENDING_SAMPLES)}",
        (REBUILD_ALL_MARKER,),
    )
    return PendingSamples(int(count), bool(rebuild_all))
