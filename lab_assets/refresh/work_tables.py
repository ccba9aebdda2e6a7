"""Change detection into work tables, set-based inside MySQL (the SQL is in lib/refresh.py):

1. :func:`fill_candidates`: the ids of the buckets whose live sums differ from the bucket table;
2. then, per state table, the changed ids among them (:func:`fill_work_table` with the state
   table's comparison) and, for digests, the candidates' live digests (:func:`fill_live_digests`).
"""

from __future__ import annotations

from functools import partial

from sqlalchemy.engine import Connection

from lab_assets.lib.bulk import chunk_select, key_ranges
from lab_assets.lib.refresh import (
    BUCKET_SUMS_DEFINITION,
    CHANGE_SET_DEFINITION,
    DIGEST_TABLE_DEFINITION,
    bucket_table_build_statements,
    candidate_digests_select,
    changed_bucket_members_select,
)
from lab_assets.lib.sql import TableDefinition, qualified_name
from lab_assets.lib.threads import completed_in_threads
from lab_assets.lib.value_types import ValueType
from lab_assets.mysql import MySQLResource, column_names
from lab_assets.refresh.state_tables import StateTable
from lab_assets.server_errors import raise_on_lost_values


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


def fill_candidates(mysql: MySQLResource, state: StateTable, live_sums_select: str) -> None:
    """The first level of the diff: the ids of the buckets whose live sums (``live_sums_select``,
    one scan of the source) differ from the state table's bucket table, into its candidates work
    table. A bucket table that is missing (a whole-table build was cut short) or of an older
    layout is summed again from the state table first."""
    tables = mysql.tables
    with mysql.connect() as connection:
        if column_names(connection, tables.output_database, state.buckets_table) != list(
            BUCKET_SUMS_DEFINITION.column_names
        ):
            for statement in bucket_table_build_statements(tables, state.buckets_table, state.stored_sums_select):
                connection.exec_driver_sql(statement)
        fill_work_table(
            connection,
            tables.output_database,
            state.candidates_table,
            changed_bucket_members_select(tables, state.buckets, live_sums_select, state.buckets_table),
        )


def fill_live_digests(mysql: MySQLResource, state: StateTable, value_type: ValueType) -> None:
    """The candidates' live digests into the state's live work table, the two halves of the
    candidate id range side by side on two connections: by now the source scans are usually done
    and the second core would idle (bench/RESULTS.md)."""
    tables = mysql.tables
    live_table = tables.qualified(state.extra_table)
    select_sql = candidate_digests_select(tables, state.candidates_table, value_type)
    with mysql.connect() as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {live_table}")
        connection.exec_driver_sql(DIGEST_TABLE_DEFINITION.create_statement(tables.output_database, state.extra_table))
        low, high = connection.exec_driver_sql(
            f"SELECT MIN(sample_id), MAX(sample_id) FROM {tables.qualified(state.candidates_table)}"
        ).one()
    if low is None:
        return
    halves = key_ranges(low, high, (high - low) // 2 + 1)
    inserts = {
        f"{first}..{last}": partial(
            mysql.execute, f"INSERT INTO {live_table} {chunk_select(select_sql, 'm.sample_id', first, last)}"
        )
        for first, last in halves
    }
    # Both halves end before anything is raised: no statement is left running on its own.
    done = completed_in_threads(inserts, at_most=mysql.side_by_side(len(inserts)))
    errors = [error for _, _, error in done if error is not None]
    if errors:
        raise errors[0]
