"""What the sensor learns from the binlog on a tick: whether a source table changed since the
position the tables are exact up to (or since what an earlier tick already read), by reading only
the new events of the two source tables; never a scan of a source table.

The sensor uses the feed only where a refresh would (``LAB_CHANGE_FEED``, the account's grants,
a stored position); anywhere else it scans as it always did. Its cursor keeps how far it has read
(``binlog_read_up_to``), so a quiet tick reads only events written since the previous tick.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lab_assets.change_feed.access import check_binlog_access
from lab_assets.change_feed.mode import LAB_CHANGE_FEED_ENV, ChangeFeedMode, change_feed_mode
from lab_assets.change_feed.position import BinlogPosition, load_position
from lab_assets.change_feed.reader import read_changes
from lab_assets.mysql.resource import MySQLResource


@dataclass(frozen=True)
class FeedTick:
    """``changed``: sample ids the binlog names since ``since``; ``position``: read up to here;
    ``fallback``: why the feed cannot tell this time (the tick scans instead)."""

    since: BinlogPosition | None = None
    position: BinlogPosition | None = None
    changed: int = 0
    fallback: str | None = None


def position_key(position: BinlogPosition) -> list[object]:
    """A position as the sensor's JSON cursor keeps it."""
    return [position.server_id, position.server_uuid, position.binlog_file, position.binlog_position]


def _from_key(key: list | None) -> BinlogPosition | None:
    if not key:
        return None
    server_id, server_uuid, binlog_file, offset = key
    return BinlogPosition(int(server_id), server_uuid, str(binlog_file), int(offset))


def read_feed(mysql: MySQLResource, read_up_to: list | None, from_stored: bool = False) -> FeedTick | None:
    """The feed's answer for this tick, or None when the sensor should scan (the feed is off, not
    granted, or no refresh has stored a position yet). ``read_up_to``: the cursor's position;
    reading starts there when it is past the stored one on the same server, unless
    ``from_stored`` (the periodic check reads everything the tables do not cover yet).
    ``LAB_CHANGE_FEED=binlog`` without access raises the sentence naming the missing grant."""
    mode = change_feed_mode(os.environ)
    if mode is ChangeFeedMode.SCAN:
        return None
    with mysql.connect() as connection:
        access = check_binlog_access(connection)
        if not access.usable:
            if mode is ChangeFeedMode.BINLOG:
                raise RuntimeError(f"{LAB_CHANGE_FEED_ENV}=binlog, but {access.problem}")
            return None
        stored = load_position(connection, mysql.tables)
        if stored is None:
            return None
        since = stored
        cursor = _from_key(read_up_to)
        if not from_stored and cursor is not None and cursor.same_server(stored):
            since = max(stored, cursor, key=BinlogPosition.order_key)
        batch = read_changes(connection, mysql.tables, since)
    if batch.fallback is not None:
        return FeedTick(since=since, fallback=batch.fallback)
    return FeedTick(since=since, position=batch.position, changed=len(batch.changed_sample_ids))
