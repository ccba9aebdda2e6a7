"""The atomic swap: a table built aside as ``<table>__new`` takes the table's place in one
``RENAME TABLE``, so readers see the old complete table or the new complete one, never a
half-built, empty or missing one. Used by every whole-table write (TableBuild and DataFrames)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Connection

from lab_assets.io_manager.sql import swap_statement
from lab_assets.mysql.catalog import table_exists
from lab_assets.mysql.errors import LOCK_WAIT_TIMEOUT, server_error_code
from lab_assets.names import NEW_SUFFIX, OLD_SUFFIX, helper_table
from lab_assets.sql.statements import qualified_name

# RENAME TABLE needs the table's metadata lock, which a reader's open transaction holds until it
# ends; while the rename waits, every new query on the table queues behind it. So each attempt
# waits at most SWAP_LOCK_WAIT_SECONDS (new readers stall at most that long), and after
# SWAP_ATTEMPTS the build fails, naming the cause, and keeps the old table. Chosen, not measured:
# a few seconds of stall for readers, half a minute for a reader's transaction to end.
SWAP_LOCK_WAIT_SECONDS = 5
SWAP_ATTEMPTS = 6


class SwapBlockedError(RuntimeError):
    """The new table could not be swapped in: other sessions' open transactions held the table."""


def swap_in(connection: Connection, schema: str, table: str, along: Sequence[str] = ()) -> None:
    """``<table>__new`` becomes ``table`` in one ``RENAME TABLE`` (atomic for readers: they see
    the old table or the new one, never none); the old one is dropped afterwards. Each table of
    ``along`` is swapped with its own ``__new`` by the same statement. Raises
    :class:`SwapBlockedError` when open transactions keep the table's metadata lock through
    every attempt (:data:`SWAP_ATTEMPTS` of :data:`SWAP_LOCK_WAIT_SECONDS`)."""
    new_table, old_table = helper_table(table, NEW_SUFFIX), helper_table(table, OLD_SUFFIX)
    replacing = table_exists(connection, schema, table)
    companions = [
        (name, helper_table(name, NEW_SUFFIX), helper_table(name, OLD_SUFFIX), table_exists(connection, schema, name))
        for name in along
    ]
    rename = swap_statement(schema, table, new_table, old_table, replacing, companions)
    (previous,) = connection.exec_driver_sql("SELECT @@session.lock_wait_timeout").one()
    connection.exec_driver_sql(f"SET SESSION lock_wait_timeout = {int(SWAP_LOCK_WAIT_SECONDS)}")
    try:
        for attempt in range(1, SWAP_ATTEMPTS + 1):
            try:
                connection.exec_driver_sql(rename)
                break
            except Exception as error:
                if server_error_code(error) != LOCK_WAIT_TIMEOUT:
                    raise
                if attempt == SWAP_ATTEMPTS:
                    raise SwapBlockedError(
                        f"{schema}.{table} was not replaced: for {SWAP_ATTEMPTS} x {SWAP_LOCK_WAIT_SECONDS} s,"
                        f" other sessions' open transactions held it (a reader that started a transaction"
                        f" and did not end it; SHOW PROCESSLIST shows them). The old table is unchanged;"
                        f" the next run builds it again."
                    ) from error
    finally:
        connection.exec_driver_sql(f"SET SESSION lock_wait_timeout = {int(previous)}")
    if replacing:
        connection.exec_driver_sql(f"DROP TABLE {qualified_name(schema, old_table)}")
    for _, _, old, replaced in companions:
        if replaced:
            connection.exec_driver_sql(f"DROP TABLE {qualified_name(schema, old)}")
