"""Which change feed a refresh uses, and the binlog position it stores once its writes are done.

``LAB_CHANGE_FEED`` (lab_assets.change_feed.mode) chooses: ``scan`` finds changes by scanning the
sources (bucket sums, lab_assets.state.sql); ``binlog`` requires the binlog and stops naming the
missing grant or setting; ``auto`` uses the binlog when the account may read it, else scans, and
says which and why. With the binlog, the refresh's candidates are the sample ids the binlog
names since the stored position (plus, for deleted samples, every sample recorded under them: a
foreign key's cascade deletes children and measurements without a binlog row event), so nothing
reads a source table whole.

The position is only ever advanced after the rows it covers are written: the step that computes
the derived tables stores it after its last output is written and its pending marks are made, so
the flat table's step consumes those marks whether or not it runs in the same run. A scan (the
first refresh, a full refresh, or any fallback) takes the server's current position *before* it
reads the sources and stores that, so the next read starts at or before the scan's snapshot;
reading a change twice is harmless, because ids are recomputed from live data, not replayed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dagster import DagsterLogManager, Failure
from sqlalchemy.engine import Connection

from lab_assets.change_feed.access import check_binlog_access
from lab_assets.change_feed.mode import LAB_CHANGE_FEED_ENV, ChangeFeedMode, change_feed_mode
from lab_assets.change_feed.position import (
    BinlogPosition,
    current_position,
    load_position,
    store_position,
)
from lab_assets.change_feed.reader import read_changes
from lab_assets.change_feed.sql import feed_ids_insert_statement, recorded_descendants_select
from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.sessions import is_mariadb, recursion_limit, recursion_limit_statement
from lab_assets.names import CHANGE_FEED_IDS, DELETED_SUFFIX, SAMPLE_LINEAGE, helper_table
from lab_assets.state.sql import CHANGE_SET_DEFINITION
from lab_assets.state.work_tables import add_to_work_table

BINLOG, SCAN = "binlog", "scan"


@dataclass(frozen=True)
class FeedPlan:
    """How this refresh finds its changes. ``ids_table``: the work table of changed sample ids
    (the binlog path), or None to scan. ``position``: what to store once the writes are done
    (None: store nothing; the feed is off or unusable). ``feed`` and ``reason``: said in the log
    and the run's metadata."""

    feed: str
    reason: str
    ids_table: str | None = None
    position: BinlogPosition | None = None
    changed: int | None = None
    # The binlog says no measurement row came or went (nor got another sample or type), nor did a
    # sample go: the catalog and the orphaned measurements are as the last refresh found them.
    rows_kept: bool = False

    @property
    def metadata(self) -> dict[str, str]:
        """The feed, why it was chosen and the binlog position it will store, as the run's metadata shows them."""
        shown: dict[str, str] = {"change_feed": self.feed, "change_feed_reason": self.reason}
        if self.position is not None:
            shown["binlog_position"] = self.position.describe()
        return shown


def plan_feed(log: DagsterLogManager, mysql: MySQLResource, scan_asked: str | None = None) -> FeedPlan:
    """Reads the binlog from the stored position when the feed may be used (one replication
    connection, only new events), or decides to scan; logs which and why. ``scan_asked``: why the
    run asks for a scan (lab_assets.change_feed.mode.scan_asked), or None."""
    mode = change_feed_mode(os.environ)
    plan = _planned(mysql, mode, scan_asked)
    log.info(f"change feed: {plan.feed} ({plan.reason})")
    return plan


def _planned(mysql: MySQLResource, mode: ChangeFeedMode, scan_asked: str | None) -> FeedPlan:
    if mode is ChangeFeedMode.SCAN:
        return FeedPlan(SCAN, f"{LAB_CHANGE_FEED_ENV}=scan")
    tables = mysql.tables
    with mysql.connect() as connection:
        access = check_binlog_access(connection)
        if not access.usable:
            if mode is ChangeFeedMode.BINLOG:
                raise Failure(description=f"{LAB_CHANGE_FEED_ENV}=binlog, but {access.problem}")
            return FeedPlan(SCAN, f"the binlog cannot be used: {access.problem}")
        stored = load_position(connection, tables)
        # Taken before anything reads the sources: a scan covers every change up to here.
        now = current_position(connection)
        if scan_asked is not None:
            return FeedPlan(SCAN, scan_asked, position=now)
        if stored is None:
            return FeedPlan(SCAN, "no binlog position recorded yet: this refresh scans once", position=now)
        batch = read_changes(connection, tables, stored)
        if batch.fallback is not None:
            return FeedPlan(SCAN, f"the binlog cannot say what changed: {batch.fallback}", position=now)
        changed = _fill_ids(connection, mysql, batch.changed_sample_ids, batch.deleted_sample_ids)
    caught = "" if batch.caught_up else "; more events follow, read by the next refresh"
    return FeedPlan(
        BINLOG,
        f"{len(batch.changed_sample_ids)} sample ids from {batch.row_events} row events since"
        f" {stored.describe()}{caught}",
        ids_table=CHANGE_FEED_IDS,
        position=batch.position,
        changed=changed,
        rows_kept=not batch.rows_came_or_went,
    )


def _fill_ids(connection: Connection, mysql: MySQLResource, changed: frozenset[int], deleted: frozenset[int]) -> int:
    """The changed ids into the feed's work table, with every sample recorded under a deleted
    one (their rows may be gone by cascade, unseen by the binlog); its size. Ids go in as bound
    rows of one executemany (PyMySQL sends them as multi-row INSERTs)."""
    tables = mysql.tables
    seeds = helper_table(CHANGE_FEED_IDS, DELETED_SUFFIX)
    for name, ids in ((CHANGE_FEED_IDS, changed), (seeds, deleted)):
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {tables.qualified(name)}")
        connection.exec_driver_sql(CHANGE_SET_DEFINITION.create_statement(tables.output_database, name))
        if ids:
            connection.exec_driver_sql(feed_ids_insert_statement(tables.qualified(name)), [(i,) for i in sorted(ids)])
    if deleted and mysql.column_names(SAMPLE_LINEAGE):
        limit = recursion_limit(mysql.sample_id_span())
        connection.exec_driver_sql(recursion_limit_statement(is_mariadb(connection), limit))
        add_to_work_table(
            connection, tables.output_database, CHANGE_FEED_IDS, recorded_descendants_select(tables, seeds)
        )
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {tables.qualified(seeds)}")
    (count,) = connection.exec_driver_sql(f"SELECT COUNT(*) FROM {tables.qualified(CHANGE_FEED_IDS)}").one()
    return int(count)


def store_after_refresh(mysql: MySQLResource, plan: FeedPlan) -> None:
    """Stores the plan's position: call only after every output it covers is written."""
    if plan.position is None:
        return
    with mysql.connect() as connection:
        store_position(connection, mysql.tables, plan.position)
        if plan.ids_table is not None:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {mysql.tables.qualified(plan.ids_table)}")
