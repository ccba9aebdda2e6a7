"""Change detection into work tables, set-based inside MySQL (the SQL is in lab_assets.state.sql).

1. :func:`fill_candidates`: the ids of the buckets whose live sums differ from the bucket table;
2. then, per state table, the changed ids among them (:func:`fill_work_table` with the state
   table's comparison) and, for digests, the candidates' live digests (:func:`fill_live_digests`).
"""

from __future__ import annotations

import threading

from sqlalchemy.engine import Connection

from lab_assets.mysql.catalog import column_names
from lab_assets.mysql.errors import raise_on_lost_values
from lab_assets.mysql.resource import MySQLResource
from lab_assets.names import STATE_ROW_COUNTS
from lab_assets.sources.locations import TableLocations
from lab_assets.sql.statements import TableDefinition, qualified_name
from lab_assets.state.bucket_sql import (
    STATE_ROW_COUNTS_DEFINITION,
    bucket_table_build_statements,
    row_count_store_statements,
    state_row_count_select,
)
from lab_assets.state.sql import (
    BUCKET_SUMS_DEFINITION,
    CHANGE_SET_DEFINITION,
    StateTable,
    changed_bucket_members_select,
)


def fill_work_table(
    connection: Connection,
    database: str,
    table: str,
    select_sql: str,
    definition: TableDefinition = CHANGE_SET_DEFINITION,
    params: tuple[object, ...] = (),
) -> int:
    """(Re)create the work table ``table`` in ``database`` (the output database) holding the rows
    ``select_sql`` (with ``params``) produces (by default sample ids); its size."""
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {qualified_name(database, table)}")
    connection.exec_driver_sql(definition.create_statement(database, table))
    return add_to_work_table(connection, database, table, select_sql, params)


def add_to_work_table(
    connection: Connection, database: str, table: str, select_sql: str, params: tuple[object, ...] = ()
) -> int:
    """Adds the keys ``select_sql`` produces to the work table; its size afterwards."""
    connection.exec_driver_sql(f"INSERT IGNORE INTO {qualified_name(database, table)} {select_sql}", params)
    raise_on_lost_values(connection)
    (count,) = connection.exec_driver_sql(f"SELECT COUNT(*) FROM {qualified_name(database, table)}").one()
    return int(count)


def fill_candidates(mysql: MySQLResource, state: StateTable, live_sums_select: str, feed_ids_table: str | None) -> None:
    """The first level of the diff into the state's candidates work table: the ids of the
    buckets whose live sums (``live_sums_select``, one scan of the source) differ from the state
    table's bucket table; or, with the binlog as the change feed, the ids it named
    (``feed_ids_table``), read without touching the source. A bucket table that is missing (a
    full refresh was cut short) or of an older layout is summed again from the state table
    first: the incremental write keeps it exact for the touched buckets either way."""
    tables = mysql.tables
    with mysql.connect() as connection:
        if not buckets_ready(connection, tables, state):
            for statement in bucket_table_build_statements(tables, state):
                connection.exec_driver_sql(statement)
        fill_work_table(
            connection,
            tables.output_database,
            state.candidates_table,
            f"SELECT sample_id FROM {tables.qualified(feed_ids_table)}"
            if feed_ids_table is not None
            else changed_bucket_members_select(tables, state.buckets, live_sums_select, state.buckets_table),
        )


# The lineage and the digests are computed side by side, each calling buckets_ready: one at a
# time looks at the row counts' table and makes it again, so two never drop it under each other.
# (Runs in other processes are kept apart by the build lock.)
_ROW_COUNTS_CHECKED = threading.Lock()


def buckets_ready(connection: Connection, tables: TableLocations, state: StateTable) -> bool:
    """Whether the state table's bucket table exists with the current layout; where it does, the
    state table's row count is stored beside it (summed from the bucket table where a version
    without the row counts left none), so every reader of the count may trust it."""
    layout = column_names(connection, tables.output_database, state.buckets_table)
    if layout != list(BUCKET_SUMS_DEFINITION.column_names):
        return False
    with _ROW_COUNTS_CHECKED:
        stored = column_names(connection, tables.output_database, STATE_ROW_COUNTS)
        if stored == list(STATE_ROW_COUNTS_DEFINITION.column_names):
            if connection.exec_driver_sql(state_row_count_select(tables, state)).first() is not None:
                return True
        elif stored:  # another layout: made again (every state table's row is stored again by its own refresh)
            connection.exec_driver_sql(f"DROP TABLE {tables.qualified(STATE_ROW_COUNTS)}")
        for statement in row_count_store_statements(tables, state):
            connection.exec_driver_sql(statement)
    return True
