"""Read the binlog from a stored binlog position to the server's end: which sample ids changed.

What must hold, and how:

* **Ids only.** Only the key columns of the two source tables are taken from each row event (the
  samples' ``id`` and ``parent_id``, the measurements' ``sample_id``); no row is kept. The
  library decodes every column to step over it, so a decoding failure (it has had DECIMAL bugs)
  ends the read with a fallback instead of a wrong id. Columns are found by position
  (information_schema's ordinal_position, read before the binlog): a server without
  ``binlog_row_metadata=FULL`` logs no column names, and an ALTER after that read shows up in
  the binlog as a statement, which falls back.
* **Positions only at transaction boundaries** (after an XID or COMMIT, or after a statement
  outside a transaction): the ids of a transaction count only once its end was read, and the
  returned position is the end of the last whole transaction read, so a read resumes there and
  never mid-transaction (where the library would skip rows whose table map came before).
* **One stream connection.** The library reconnects by itself on a lost connection, resuming
  mid-transaction with duplicated or lost rows; the reader refuses that second connection and
  returns what it read up to the last boundary before it.
* **Bounded.** The read stops at the first boundary at or past the server's end when it started;
  more than ``max_changed_ids`` changed ids end it with a fallback instead of holding them.
* **Foreign-key cascades are not in the binlog** (InnoDB applies them itself, on both servers and
  on their replicas): deleting a sample logs its own row only, not its children's or their
  measurements'. Deleted samples are therefore also reported in ``deleted_sample_ids``, and
  samples whose ``id`` changed in ``moved_sample_ids``: the refresh must take their stored
  subtrees and measurements as changed too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import GtidEvent as MysqlGtidEvent
from pymysqlreplication.event import MariadbGtidEvent, QueryEvent, RotateEvent, XAPrepareEvent, XidEvent
from pymysqlreplication.row_event import (
    DeleteRowsEvent,
    PartialUpdateRowsEvent,
    TableMapEvent,
    UpdateRowsEvent,
    WriteRowsEvent,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from lab_assets.change_feed.position import BinlogPosition, binary_logs, current_position, position_gone
from lab_assets.change_feed.rows import KeyColumns, TransactionIds, key_columns
from lab_assets.change_feed.statements import statement_fallback, transaction_effect
from lab_assets.change_feed.stream import REPLICA_SERVER_ID_BASE, Reconnected, connection_settings, one_stream
from lab_assets.mysql.tls import PreferredTlsConnection
from lab_assets.names import SAMPLE_MEASUREMENTS, SAMPLES
from lab_assets.sources.locations import TableLocations

DEFAULT_MAX_CHANGED_IDS = 1_000_000
_MARIADB_GTID_STANDALONE = 0x01  # FL_STANDALONE: a DDL or other statement with no COMMIT after it
_ROWS_EVENTS = (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent, PartialUpdateRowsEvent)
ONLY_EVENTS = [TableMapEvent, *_ROWS_EVENTS, XidEvent, QueryEvent, MysqlGtidEvent, MariadbGtidEvent]
ONLY_EVENTS += [RotateEvent, XAPrepareEvent]


@dataclass(frozen=True)
class ChangeBatch:
    """What :func:`read_changes` found.

    ``changed_sample_ids``: every sample id whose sample or measurements a transaction changed
    (both images of updates); ``moved_sample_ids`` (a subset): samples whose ``parent_id`` (or
    ``id``) changed, whose subtrees change too; ``deleted_sample_ids`` (a subset): deleted samples,
    whose children and measurements a foreign key may have deleted unseen. ``position``: the
    transaction boundary the ids are complete up to, where the next read starts (on a fallback,
    the stored position, unchanged). ``fallback``: None, or one sentence saying why the feed cannot
    say what changed; the caller then refreshes by scanning, after taking
    :func:`~lab_assets.change_feed.position.current_position` as the position that scan covers.
    ``caught_up``: the read reached the server's end as it was when the read began.
    ``last_change``: per source table (lab_assets' name) that a transaction changed, the boundary
    after the last such transaction; ``row_delta``: per source table, rows written minus rows
    deleted by row events (a foreign key's cascade deletes rows without any: see
    ``deleted_sample_ids``); ``samples_deleted``: a sample row was deleted.
    """

    position: BinlogPosition
    changed_sample_ids: frozenset[int] = frozenset()
    moved_sample_ids: frozenset[int] = frozenset()
    deleted_sample_ids: frozenset[int] = frozenset()
    fallback: str | None = None
    caught_up: bool = True
    row_events: int = 0
    rows_came_or_went: bool = False
    last_change: Mapping[str, BinlogPosition] = field(default_factory=dict)
    row_delta: Mapping[str, int] = field(default_factory=dict)
    samples_deleted: bool = False


def _fallback(since: BinlogPosition, reason: str) -> ChangeBatch:
    return ChangeBatch(position=since, fallback=reason, caught_up=False)


def read_changes(
    connection: Connection,
    tables: TableLocations,
    since: BinlogPosition,
    max_changed_ids: int = DEFAULT_MAX_CHANGED_IDS,
    ids: bool = True,
) -> ChangeBatch:
    """The sample ids changed in the binlog from ``since`` (a stored transaction boundary) up to the
    server's end at the call, with the position they are complete up to, or a fallback saying why
    the feed cannot tell (see :class:`ChangeBatch` and the module docstring). ``connection``: an
    open connection of the engine on ``LAB_DB_URL`` (its URL gives the binlog connection's
    settings); it stays open for the read. Never raises for what the server refuses or the binlog
    holds: those are fallbacks. ``ids`` False: only which tables changed, their row deltas and
    whether a sample was deleted, without decoding updates' row images (an observation's needs)."""
    try:
        end = current_position(connection)
        if end is None:
            return _fallback(since, "the server writes no binlog (log_bin is OFF)")
        gone = position_gone(since, binary_logs(connection), end)
        if gone is not None:
            return _fallback(since, gone)
        keys = key_columns(connection, tables)
        if isinstance(keys, str):
            return _fallback(since, f"{keys}: a scan reports what is wrong")
        (connection_id,) = connection.exec_driver_sql("SELECT CONNECTION_ID()").one()
    except DBAPIError as error:
        return _fallback(since, f"the binlog cannot be read by this account ({error.orig}): {_GRANT_HINT}")
    if since.order_key() >= end.order_key():
        return ChangeBatch(position=since)

    stream = BinLogStreamReader(
        connection_settings=connection_settings(connection),
        server_id=REPLICA_SERVER_ID_BASE + int(connection_id) % REPLICA_SERVER_ID_BASE,
        resume_stream=True,
        blocking=False,
        log_file=since.binlog_file,
        log_pos=since.binlog_position,
        only_events=ONLY_EVENTS,
        only_schemas=[tables.source_database],
        only_tables=list(keys),
        # Position-based dump on MariaDB too: is_mariadb=True would ask for a GTID-based one.
        is_mariadb=False,
        pymysql_wrapper=one_stream(PreferredTlsConnection),
    )
    try:
        return _read(stream, tables, since, end, keys, max_changed_ids, ids)
    except Reconnected:
        raise AssertionError("unreachable: _read handles a reconnect") from None
    finally:
        stream.close()


_SCAN = "a scan refreshes instead"
_TOO_MANY = "a scan refreshes instead, cheaper than holding them"
_COLUMNS_CHANGED = "has other columns than when the binlog was written: a scan refreshes instead"
_XA_PREPARED = (
    "an XA transaction changed the source tables and the binlog does not say when it commits: a scan refreshes instead"
)
_CONNECTION_LIMIT_HINT = (
    "the binlog reader needs one more connection than the account's or the server's connection limit"
    " leaves (max_user_connections, max_connections): raise it by one, or set LAB_CHANGE_FEED=scan"
)
_GRANT_HINT = (
    "grant REPLICATION SLAVE and REPLICATION CLIENT (MariaDB: BINLOG MONITOR) ON *.*, or set LAB_CHANGE_FEED=scan"
)


def _read(
    stream: BinLogStreamReader,
    tables: TableLocations,
    since: BinlogPosition,
    end: BinlogPosition,
    keys: dict[str, KeyColumns],
    max_changed_ids: int,
    ids: bool,
) -> ChangeBatch:
    changed: set[int] = set()
    moved: set[int] = set()
    deleted: set[int] = set()
    came_or_went = False
    last_change: dict[str, BinlogPosition] = {}
    row_delta: dict[str, int] = {}
    samples_deleted = False
    transaction = TransactionIds()
    in_transaction = False
    boundary = since
    gtid = since.gtid
    row_events = 0
    samples_name = tables.source(SAMPLES).name.lower()
    source_names = [tables.source(SAMPLES).name, tables.source(SAMPLE_MEASUREMENTS).name]

    def at(file: str, offset: int) -> BinlogPosition:
        return BinlogPosition(since.server_id, since.server_uuid, file, offset, gtid)

    def batch(caught_up: bool) -> ChangeBatch:
        sets = (frozenset(changed), frozenset(moved), frozenset(deleted))
        return ChangeBatch(
            boundary,
            *sets,
            fallback=None,
            caught_up=caught_up,
            row_events=row_events,
            rows_came_or_went=came_or_went,
            last_change=dict(last_change),
            row_delta=dict(row_delta),
            samples_deleted=samples_deleted,
        )

    try:
        for event in stream:
            problem = None
            at_boundary = False
            if isinstance(event, _ROWS_EVENTS):
                if event.schema != tables.source_database or event.table not in keys:
                    continue  # the library's filters already leave these out
                if event.number_of_columns != keys[event.table].count:
                    problem = f"{event.schema}.{event.table} {_COLUMNS_CHANGED}"
                else:
                    row_events += 1
                    is_samples = event.table.lower() == samples_name
                    if ids:
                        problem = transaction.add_rows(event, keys[event.table], is_samples)
                    else:
                        transaction.add_table_change(event, is_samples)
                # The sum bounds what the sets hold (an id in both is counted twice).
                if problem is None and len(changed) + len(transaction.changed) > max_changed_ids:
                    problem = f"more than {max_changed_ids:,} sample ids changed since {since.describe()}: {_TOO_MANY}"
            elif isinstance(event, MariadbGtidEvent):
                in_transaction = not (event.flags & _MARIADB_GTID_STANDALONE)
                gtid = event.gtid
            elif isinstance(event, MysqlGtidEvent):
                gtid = event.gtid
            elif isinstance(event, XidEvent):
                at_boundary = True
            elif isinstance(event, XAPrepareEvent):
                problem = _XA_PREPARED if transaction.changed else None
                at_boundary = True
            elif isinstance(event, QueryEvent):
                schema = event.schema.decode() if isinstance(event.schema, bytes) else str(event.schema)
                problem = statement_fallback(event.query, schema, tables.source_database, source_names)
                effect = transaction_effect(event.query, in_transaction)
                in_transaction = in_transaction or effect == "begin"
                at_boundary = effect == "end"
            elif isinstance(event, RotateEvent) and not in_transaction:
                # Between transactions: the next file's start is a boundary (a stored position there
                # survives the purge of the older file).
                boundary = at(event.next_binlog, event.position)
            if problem is not None:
                return _fallback(since, problem)
            if at_boundary:
                changed |= transaction.changed
                moved |= transaction.moved
                deleted |= transaction.deleted
                came_or_went = came_or_went or transaction.rows_came_or_went
                in_transaction = False
                boundary = at(str(stream.log_file), int(stream.log_pos or 0))
                samples_deleted = samples_deleted or transaction.samples_deleted
                for table, delta in transaction.row_delta.items():
                    last_change[table] = boundary
                    row_delta[table] = row_delta.get(table, 0) + delta
                transaction = TransactionIds()
                if boundary.order_key() >= end.order_key():
                    return batch(caught_up=True)
    except Reconnected:
        return batch(caught_up=False)
    except pymysql.err.MySQLError as error:
        hint = _CONNECTION_LIMIT_HINT if error.args and error.args[0] in (1040, 1203, 1226) else _GRANT_HINT
        return _fallback(since, f"reading the binlog from {since.describe()} failed ({error}): {hint}")
    except Exception as error:  # noqa: BLE001 - a decoding failure in the library must become a scan, not a wrong id
        return _fallback(since, f"the binlog after {boundary.describe()} could not be decoded ({error!r}): {_SCAN}")
    if not in_transaction and not transaction.changed and stream.log_file is not None and stream.log_pos:
        # The end of the binlog between transactions (events that are no change, such as a new
        # file's header, follow the last boundary): a boundary too.
        boundary = at(str(stream.log_file), int(stream.log_pos))
    return batch(caught_up=boundary.order_key() >= end.order_key())
