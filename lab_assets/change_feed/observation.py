"""A source table's data version from the binlog where the change feed may be used, instead of a
hash of the whole table on every observation.

What must hold: an observation reports another version than the previous one whenever a
committed change to the table lies between them, and, as long as the binlog can say, the same
version when none does (Dagster shows ``experiment_measurements`` "Unsynced" by comparing these
versions; lab_assets.defs.jobs). A hash is a new version even of an unchanged table: "Unsynced"
then until the next refresh, never the reverse.

How: each observation records the binlog position it read up to (``binlog_position``). The next
one reads the binlog from there (only new events of the two source tables, as the refresh's
feed does): no transaction changed the table, so the version and the row count stay the
previous observation's; a transaction changed it, so the version names the boundary after the
last such transaction (the same for every later observation until the table changes again) and
the row count moves by the rows written minus the rows deleted. Whatever the binlog cannot say
makes the observation hash the table as before, after taking the position it then records: the
first observation, a run that asks for a scan or a full refresh, any of the feed's fallbacks,
and a deleted sample (a foreign key's cascade deletes rows without binlog events).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from dagster import Failure, MetadataValue
from dagster._core.definitions.metadata import RawMetadataValue

from lab_assets.change_feed.access import check_binlog_access
from lab_assets.change_feed.mode import LAB_CHANGE_FEED_ENV, ChangeFeedMode, change_feed_mode
from lab_assets.change_feed.position import BinlogPosition, current_position
from lab_assets.change_feed.reader import read_changes
from lab_assets.mysql.resource import MySQLResource

BINLOG, SCAN = "binlog", "scan"
POSITION_KEY = "binlog_position"  # the observation's metadata entry the next observation reads from


@dataclass(frozen=True)
class Observed:
    """What an earlier observation of a source reported: its data version, row count and the
    binlog position it read up to (None when it scanned without the feed)."""

    version: str
    row_count: int
    position: BinlogPosition | None


@dataclass(frozen=True)
class SourceVersion:
    """An observation's answer: ``version`` and ``row_count`` of the table, ``position`` to
    record for the next observation, and ``feed``/``reason`` as the metadata says them."""

    version: str
    row_count: int
    position: BinlogPosition | None
    feed: str
    reason: str

    @property
    def metadata(self) -> dict[str, RawMetadataValue]:
        """The feed, why, and the position read up to, as the observation's metadata."""
        shown: dict[str, RawMetadataValue] = {"change_feed": self.feed, "change_feed_reason": self.reason}
        if self.position is not None:
            shown[POSITION_KEY] = MetadataValue.json(position_record(self.position))
        return shown


def position_record(position: BinlogPosition) -> dict[str, object]:
    """A position as JSON metadata keeps it."""
    return {
        "server_id": position.server_id,
        "server_uuid": position.server_uuid,
        "binlog_file": position.binlog_file,
        "binlog_position": position.binlog_position,
        "gtid": position.gtid,
    }


def position_from_record(record: object) -> BinlogPosition | None:
    """:func:`position_record` read back; None for anything else (an older observation's metadata)."""
    if not isinstance(record, Mapping):
        return None
    try:
        return BinlogPosition(
            int(record["server_id"]),
            record.get("server_uuid"),
            str(record["binlog_file"]),
            int(record["binlog_position"]),
            record.get("gtid"),
        )
    except (KeyError, TypeError, ValueError):
        return None


def observe_source(
    mysql: MySQLResource,
    table: str,
    previous: Observed | None,
    scan: Callable[[], tuple[int, str]],
    scan_asked: str | None = None,
) -> SourceVersion:
    """The version of the source ``table`` (lab_assets' name) now. ``previous``: the last
    observation of it; ``scan``: hashes the table whole, returning (row count, version);
    ``scan_asked``: why the run asks for a scan (a full refresh, the sensor's periodic check), or
    None. ``LAB_CHANGE_FEED=binlog`` without access raises the sentence naming the grant."""
    mode = change_feed_mode(os.environ)
    if mode is ChangeFeedMode.SCAN:
        return _scanned(scan, None, f"{LAB_CHANGE_FEED_ENV}=scan")
    with mysql.connect() as connection:
        access = check_binlog_access(connection)
        if not access.usable:
            if mode is ChangeFeedMode.BINLOG:
                raise Failure(description=f"{LAB_CHANGE_FEED_ENV}=binlog, but {access.problem}")
            return _scanned(scan, None, f"the binlog cannot be used: {access.problem}")
        # Taken before the hash reads the table: the next observation reads from here.
        now = current_position(connection)
        if scan_asked is not None:
            reason = scan_asked
        elif previous is None or previous.position is None:
            reason = "no binlog position observed yet: this observation hashes the table once"
        else:
            batch = read_changes(connection, mysql.tables, previous.position, ids=False)
            if batch.fallback is not None:
                reason = f"the binlog cannot say what changed: {batch.fallback}"
            elif batch.samples_deleted:
                reason = "samples were deleted, and a foreign key's cascade deletes rows the binlog does not show"
            elif table not in batch.last_change:
                return SourceVersion(
                    previous.version,
                    previous.row_count,
                    batch.position,
                    BINLOG,
                    f"no change to the table in the binlog since {previous.position.describe()}",
                )
            else:
                last = batch.last_change[table]
                return SourceVersion(
                    f"binlog-{last.server_id}-{last.binlog_file}-{last.binlog_position}",
                    previous.row_count + batch.row_delta.get(table, 0),
                    batch.position,
                    BINLOG,
                    f"last changed by the transaction that ends at {last.describe()}",
                )
    return _scanned(scan, now, reason)


def _scanned(scan: Callable[[], tuple[int, str]], position: BinlogPosition | None, reason: str) -> SourceVersion:
    row_count, version = scan()
    return SourceVersion(version, row_count, position, SCAN, reason)
