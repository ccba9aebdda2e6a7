"""The binlog position: where the change feed has read up to, kept in the output database, and
where the server's binlog ends now.

A stored position is only ever a transaction boundary (the reader never returns another), and
it names the server it belongs to (``server_id``, and ``server_uuid`` on MySQL), so a position
read from one server is never applied to another's binlog (a failover, a restore).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection
from sqlalchemy.exc import ProgrammingError

from lab_assets.change_feed.sql import (
    BINARY_LOGS_STATEMENT,
    binlog_status_statements,
    create_position_table_statement,
    position_select_statement,
    position_table_exists_select,
    position_upsert_statement,
    server_identity_select,
)
from lab_assets.mysql.sessions import is_mariadb
from lab_assets.sources.locations import TableLocations

_PARSE_ERROR = 1064  # ER_PARSE_ERROR: the server does not know this spelling of the statement


@dataclass(frozen=True)
class BinlogPosition:
    """A place in one server's binlog: ``binlog_file`` and the byte offset ``binlog_position`` of
    an event boundary in it, the server's ``server_id`` and ``server_uuid`` (None on MariaDB),
    and ``gtid``, the server's GTID position there when it has one (the feed resumes by file and
    offset; a MariaDB GTID that went back says the binlog was reset)."""

    server_id: int
    server_uuid: str | None
    binlog_file: str
    binlog_position: int
    gtid: str | None = None

    def order_key(self) -> tuple[int, int]:
        """Sorts positions of one server's binlog: the file's sequence number (the digits after
        its last '.', as both servers name binlog files), then the offset."""
        return (binlog_file_number(self.binlog_file), self.binlog_position)

    def same_server(self, other: BinlogPosition) -> bool:
        """True when both positions name the same server (uuids compared where both have one)."""
        if self.server_id != other.server_id:
            return False
        return self.server_uuid is None or other.server_uuid is None or self.server_uuid == other.server_uuid

    def describe(self) -> str:
        """``file:offset on server id N`` for log lines and fallback reasons."""
        uuid = f" ({self.server_uuid})" if self.server_uuid else ""
        return f"{self.binlog_file}:{self.binlog_position} on server id {self.server_id}{uuid}"


def binlog_file_number(binlog_file: str) -> int:
    """The sequence number of a binlog file name such as ``mysql-bin.000042`` (-1 if it has none)."""
    suffix = binlog_file.rpartition(".")[2]
    return int(suffix) if suffix.isdigit() else -1


def ensure_position_table(connection: Connection, tables: TableLocations) -> None:
    """Create the position table in the output database if it is missing (never changes one there)."""
    connection.exec_driver_sql(create_position_table_statement(tables.output_database))


def load_position(connection: Connection, tables: TableLocations) -> BinlogPosition | None:
    """The stored position, or None when none is stored or the table is missing (read only: the
    sensor's ticks call it, and a tick writes nothing)."""
    sql, params = position_table_exists_select(tables.output_database)
    if not connection.exec_driver_sql(sql, params).scalar():
        return None
    row = connection.exec_driver_sql(position_select_statement(tables.output_database)).first()
    if row is None:
        return None
    server_id, server_uuid, binlog_file, binlog_position, gtid = row
    return BinlogPosition(int(server_id), server_uuid, str(binlog_file), int(binlog_position), gtid)


def store_position(connection: Connection, tables: TableLocations, position: BinlogPosition) -> None:
    """Store ``position``, replacing the one stored (the table is created if missing).

    The caller stores a position only once the rows it covers are written and verified; run on
    the connection of that write's transaction, it commits with it."""
    ensure_position_table(connection, tables)
    connection.exec_driver_sql(
        position_upsert_statement(tables.output_database),
        (position.server_id, position.server_uuid, position.binlog_file, position.binlog_position, position.gtid),
    )


def current_position(connection: Connection) -> BinlogPosition | None:
    """The end of the server's binlog now (the next event's offset in its current file), with the
    server's identity and GTID position; None when the server writes no binlog.

    ``SHOW BINARY LOG STATUS`` on MySQL 8.2+ (8.4 knows no other), ``SHOW MASTER STATUS`` on
    MySQL 8.0/8.1 and on MariaDB (which keeps that name; 10.5.2+ also accepts ``SHOW BINLOG
    STATUS``). Needs REPLICATION CLIENT (MariaDB: BINLOG MONITOR); the server's access error is
    raised as it is without it."""
    mariadb = is_mariadb(connection)
    row = None
    statements = binlog_status_statements(mariadb)
    for index, statement in enumerate(statements):
        try:
            row = connection.exec_driver_sql(statement).first()
            break
        except ProgrammingError as error:
            code = error.orig.args[0] if error.orig is not None and error.orig.args else None
            if code != _PARSE_ERROR or index == len(statements) - 1:
                raise
    if row is None:
        return None
    server_id, server_uuid, gtid = connection.exec_driver_sql(server_identity_select(mariadb)).one()
    return BinlogPosition(int(server_id), server_uuid, str(row[0]), int(row[1]), gtid or None)


def binary_logs(connection: Connection) -> dict[str, int]:
    """The binlog files the server still has, each with its size in bytes (``SHOW BINARY LOGS``)."""
    return {str(row[0]): int(row[1]) for row in connection.exec_driver_sql(BINARY_LOGS_STATEMENT)}


def position_gone(stored: BinlogPosition, files: dict[str, int], current: BinlogPosition) -> str | None:
    """One sentence when ``stored`` cannot be read from on the server ``current`` describes (a
    different server, its file purged, or past the end of that file: the binlog was reset), else
    None. ``files``: :func:`binary_logs`."""
    if not stored.same_server(current):
        return (
            f"the stored binlog position {stored.describe()} is from another server than this one"
            f" (server id {current.server_id}{f', {current.server_uuid}' if current.server_uuid else ''}),"
            " a failover or a restore: a scan re-establishes the position"
        )
    if stored.binlog_file not in files:
        first = min(files, key=binlog_file_number, default="none")
        return (
            f"the stored binlog position {stored.describe()} was purged from the server (its oldest binlog is"
            f" {first}): a scan re-establishes the position; keep binlogs longer (binlog_expire_logs_seconds,"
            " MariaDB expire_logs_days) than lab_assets may be stopped"
        )
    went_back = _gtid_went_back(stored.gtid, current.gtid)
    if went_back is not None:
        return (
            f"the server's GTID position went back ({went_back}) since the stored binlog position"
            f" {stored.describe()}: the binlog was reset (RESET MASTER) or the server restored, and the same"
            " file name and offset may name other events now: a scan re-establishes the position"
        )
    if stored.binlog_position > files[stored.binlog_file]:
        return (
            f"the stored binlog position {stored.describe()} is past the end of that file"
            f" ({files[stored.binlog_file]} bytes), so the binlog was reset: a scan re-establishes the position"
        )
    return None


def _gtid_went_back(stored: str | None, current: str | None) -> str | None:
    """MariaDB GTID positions (``domain-server-sequence``, comma-separated per domain): the first
    domain whose sequence number is lower now than when the position was stored, said as
    ``old -> new``; None when none went back or either is not a MariaDB GTID position (MySQL's
    GTID sets are not compared: a reset there shows as a position past the end of its file)."""

    def sequences(text: str | None) -> dict[str, int] | None:
        found: dict[str, int] = {}
        for part in (text or "").split(","):
            pieces = part.strip().split("-")
            if len(pieces) != 3 or not all(piece.isdigit() for piece in pieces):
                return None
            found[pieces[0]] = int(pieces[2])
        return found or None

    before, now = sequences(stored), sequences(current)
    if before is None or now is None:
        return None
    for domain, sequence in before.items():
        if domain in now and now[domain] < sequence:
            return f"domain {domain}: {sequence} -> {now[domain]}"
    return None
