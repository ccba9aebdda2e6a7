"""The pending-table protocol between the state tables and the flat table.

``lab_pending_samples`` holds the sample ids whose flat-table rows must be rebuilt:

1. before a state table (lineage, digests) is written, the ids it changes are **marked**
   (:func:`mark_pending`), or the **full-refresh marker** when it is rebuilt whole; a crash
   after the marks only rebuilds rows again;
2. the flat table reads the marks (:func:`read_pending`) to plan its write and rebuilds the
   marked rows (or the whole table);
3. the verification after the write (lab_assets.flat_table.verification) **consumes** the marks and
   marks again the rows that changed while they were written. A crash before it only rebuilds
   rows again.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab_assets.mysql.errors import raise_on_lost_values
from lab_assets.mysql.resource import MySQLResource
from lab_assets.names import PENDING_SAMPLES
from lab_assets.state.sql import CHANGE_SET_DEFINITION

# INT's minimum: AUTO_INCREMENT sample ids are positive, so it never names a sample.
FULL_REFRESH_MARKER = -2147483648
FULL_REFRESH_SELECT = f"SELECT {FULL_REFRESH_MARKER}"
PENDING_TABLE_DEFINITION = CHANGE_SET_DEFINITION


@dataclass(frozen=True)
class PendingSamples:
    """What the pending table asks of the flat table: how many rows, and whether a full refresh."""

    count: int  # rows in the pending table (the marker included)
    full_refresh: bool  # the full-refresh marker is there


def ensure_pending_table(mysql: MySQLResource) -> None:
    """The pending table, created if it does not exist, so marks and reads never find it missing."""
    if not mysql.column_names(PENDING_SAMPLES):
        mysql.execute(PENDING_TABLE_DEFINITION.create_statement(mysql.tables.output_database, PENDING_SAMPLES))


def mark_pending(mysql: MySQLResource, select_sql: str) -> None:
    """Adds the sample ids ``select_sql`` gives (or :data:`FULL_REFRESH_SELECT`) to the marks."""
    with mysql.connect() as connection:
        connection.exec_driver_sql(
            f"INSERT IGNORE INTO {mysql.tables.qualified(PENDING_SAMPLES)} (sample_id) {select_sql}"
        )
        raise_on_lost_values(connection)


def read_pending(mysql: MySQLResource) -> PendingSamples:
    """How many sample ids are pending, and whether the full-refresh marker is among them."""
    count, full_refresh = mysql.fetch_one(
        f"SELECT COUNT(*), COALESCE(MAX(sample_id = %s), 0) FROM {mysql.tables.qualified(PENDING_SAMPLES)}",
        (FULL_REFRESH_MARKER,),
    )
    return PendingSamples(int(count), bool(full_refresh))
