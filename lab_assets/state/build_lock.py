"""The output database's build lock: a server-side advisory lock (``GET_LOCK``) per output
database, so builds from separate Dagster instances (the daemon's sensor run, a person's CLI run)
never work on each other's work and staging tables. The server releases it when the session ends,
so a killed process never leaves it held. A second build waits up to
``MySQLResource.build_lock_timeout_seconds`` and then stops naming the build that holds it
(recorded in ``lab_build_lock``) and since when.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dagster import DagsterLogManager, Failure
from sqlalchemy.engine import Connection

from lab_assets.mysql.catalog import column_names
from lab_assets.mysql.resource import MySQLResource
from lab_assets.names import BUILD_LOCK_TABLE
from lab_assets.sources.locations import TableLocations
from lab_assets.sql.statements import Column, TableDefinition

BUILD_LOCK_DEFINITION = TableDefinition(
    columns=(
        Column("lock_name", "VARCHAR(64) NOT NULL"),
        Column("holder", "VARCHAR(255) NOT NULL"),
        Column("since", "DATETIME(6) NOT NULL"),
        # The source database the output database's tables are built from: a build reading
        # another one is refused (its tables and the first build's would mix).
        Column("source_database", "VARCHAR(64) NOT NULL"),
    ),
    primary_key=("lock_name",),
)

_MYSQL_LOCK_NAME_LIMIT = 64  # characters (MySQL 8 reference, GET_LOCK)


def build_lock_name(output_database: str) -> str:
    """The advisory lock of one output database (hashed when the name would pass the limit)."""
    name = f"lab_assets.build.{output_database}"
    if len(name) > _MYSQL_LOCK_NAME_LIMIT:
        name = f"lab_assets.build.{hashlib.sha1(output_database.encode()).hexdigest()}"
    return name


def _holder_description(connection: Connection, tables: TableLocations, lock: str) -> str:
    try:
        row = connection.exec_driver_sql(
            f"SELECT holder, since FROM {tables.qualified(BUILD_LOCK_TABLE)} WHERE lock_name = %s", (lock,)
        ).first()
    except Exception:  # noqa: BLE001 - no record table yet: say what is known
        row = None
    return f"{row[0]}, since {row[1]} (server time)" if row else "holder not recorded"


@contextmanager
def build_lock(log: DagsterLogManager, mysql: MySQLResource, holder: str) -> Iterator[Callable[[], None]]:
    """Holds the output database's build lock for the block, on a connection of its own; waits
    at most ``mysql.build_lock_timeout_seconds`` for it, then raises ``Failure``. Yields a check
    to call before each write: it raises ``Failure`` if the lock was lost (its session ended: a
    KILL, a proxy's timeout), so another build may be working on the same tables."""
    tables = mysql.tables
    lock = build_lock_name(tables.output_database)
    timeout = mysql.build_lock_timeout_seconds
    with mysql.connect() as connection:
        (got,) = connection.exec_driver_sql("SELECT GET_LOCK(%s, 0)", (lock,)).one()
        if got != 1:
            started = time.monotonic()
            log.info(
                f"waiting up to {timeout} s for another lab_assets build of {tables.output_database}:"
                f" {_holder_description(connection, tables, lock)}"
            )
            (got,) = connection.exec_driver_sql("SELECT GET_LOCK(%s, %s)", (lock, timeout)).one()
            if got != 1:
                raise Failure(
                    description=f"another lab_assets build of database {tables.output_database} is running"
                    f" ({_holder_description(connection, tables, lock)}); waited {time.monotonic() - started:.0f} s"
                    f" (build_lock_timeout_seconds={timeout}). This run wrote nothing; run it again once that"
                    " build has ended.",
                    metadata={"lock": lock, "waited_seconds": round(time.monotonic() - started, 1)},
                )
            log.info(f"build lock of {tables.output_database} taken after {time.monotonic() - started:.1f} s")

        def still_held() -> None:
            try:
                (held,) = connection.exec_driver_sql("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (lock,)).one()
            except Exception as error:  # noqa: BLE001 - a lost session is a lost lock
                held = f"its session is gone ({error.__class__.__name__})"
            if held != 1:
                raise Failure(
                    description=f"the build lock of {tables.output_database} was lost ({held}): another build"
                    " may be writing the same tables, so this one stops before writing; run it again."
                )

        try:
            _record_holder(connection, tables, lock, holder)
            yield still_held
        finally:
            try:
                connection.exec_driver_sql("SELECT RELEASE_LOCK(%s)", (lock,))
            except Exception:  # noqa: BLE001 - a lost session has released it already
                log.warning(f"could not release the build lock of {tables.output_database}: its session is gone")


def _record_holder(connection: Connection, tables: TableLocations, lock: str, holder: str) -> None:
    """Records who holds the lock; refuses a build from another source database than the one
    the output database's tables were built from."""
    record = tables.qualified(BUILD_LOCK_TABLE)
    present = column_names(connection, tables.output_database, BUILD_LOCK_TABLE)
    if present and present != list(BUILD_LOCK_DEFINITION.column_names):
        connection.exec_driver_sql(f"DROP TABLE {record}")  # an older layout: only records, made again
    connection.exec_driver_sql(
        BUILD_LOCK_DEFINITION.create_statement(tables.output_database, BUILD_LOCK_TABLE, if_not_exists=True)
    )
    row = connection.exec_driver_sql(f"SELECT source_database FROM {record} WHERE lock_name = %s", (lock,)).first()
    if row is not None and row[0] != tables.source_database:
        raise Failure(
            description=f"database {tables.output_database} holds lab_assets tables built from source database"
            f" {row[0]}; this build reads {tables.source_database}. Give each lab database an output database of"
            f" its own (LAB_OUTPUT_DATABASE), or drop {tables.output_database}'s tables to start over. Nothing"
            " was written.",
            metadata={"built_from": row[0], "this_build_reads": tables.source_database},
        )
    connection.exec_driver_sql(
        f"REPLACE INTO {record} (lock_name, holder, since, source_database) VALUES (%s, %s, NOW(6), %s)",
        (lock, holder[:255], tables.source_database),
    )


def holder_of(run_id: str, step: str) -> str:
    """How a build names itself in ``lab_build_lock``."""
    return f"run {run_id} step {step} on {socket.gethostname()} pid {os.getpid()}"
