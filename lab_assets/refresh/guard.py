"""What every step that writes lab_assets' tables does first: check its privileges, then take the
output database's build lock for the whole step (computation and writes).

* **Privileges** (:func:`missing_privileges`): SELECT on the two source tables (by the lab's
  names); on the output
  database the privileges its DDL and writes need (:data:`OUTPUT_PRIVILEGES`). Read from
  information_schema (global, database and table grants of the current account, database-name
  wildcards included); a missing one stops the step with the GRANT that fixes it, before any
  write, instead of a raw ``1142 ... command denied``. Privileges that come through roles are not
  listed there: with an active role, missing ones are only logged.
* **Source schema** (:func:`check_sources`): every source table and column lab_assets reads is
  there, by the names the settings give them; a missing one stops the step with one sentence
  naming it, before any write.
* **Build lock** (:func:`build_lock`): a server-side advisory lock (``GET_LOCK``) per output
  database, so builds from separate Dagster instances (the daemon's sensor run, a person's CLI run)
  never work on each other's work and staging tables. The server releases it when the session
  ends, so a killed process never leaves it held. A second build waits up to
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

from lab_assets.lib.names import BUILD_LOCK_TABLE
from lab_assets.lib.sql import Column, TableDefinition
from lab_assets.lib.tables import TableLocations
from lab_assets.mysql import LAB_OUTPUT_DATABASE_ENV, MySQLResource, column_names, source_drift
from lab_assets.server_errors import explaining

# What the output database's tables need: CREATE/DROP/ALTER/INDEX for staging tables, swaps
# (RENAME TABLE needs ALTER and DROP on the old name, CREATE and INSERT on the new) and indexes
# added after a load; SELECT/INSERT/UPDATE/DELETE for the writes and upserts.
OUTPUT_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX")
SOURCE_PRIVILEGES = ("SELECT",)
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


def _grantee_and_role(connection: Connection) -> tuple[str, bool]:
    """The current account as information_schema spells grantees (``'user'@'host'``), and whether
    a role is active (whose privileges information_schema does not list)."""
    (account,) = connection.exec_driver_sql("SELECT CURRENT_USER()").one()
    user, _, host = str(account).rpartition("@")
    try:
        (role,) = connection.exec_driver_sql("SELECT CURRENT_ROLE()").one()
    except Exception:  # noqa: BLE001 - a server without roles
        role = None
    return f"'{user}'@'{host}'", role not in (None, "", "NONE")


def _privileges_on(connection: Connection, grantee: str, database: str, table: str | None) -> set[str]:
    """Privileges the grantee holds on ``database`` (and ``table``): global, database-level
    (wildcard patterns matched as the server does, with LIKE) and table-level."""
    held = {
        str(row[0])
        for row in connection.exec_driver_sql(
            "SELECT privilege_type FROM information_schema.user_privileges WHERE grantee = %s"
            " UNION SELECT privilege_type FROM information_schema.schema_privileges"
            " WHERE grantee = %s AND %s LIKE table_schema",
            (grantee, grantee, database),
        )
    }
    if table is not None:
        held |= {
            str(row[0])
            for row in connection.exec_driver_sql(
                "SELECT privilege_type FROM information_schema.table_privileges"
                " WHERE grantee = %s AND table_schema = %s AND table_name = %s",
                (grantee, database, table),
            )
        }
    return held


def missing_privileges(connection: Connection, tables: TableLocations) -> tuple[list[str], str, bool]:
    """(missing privileges as ``PRIVILEGE on db[.table]``, the grantee, whether a role is active)."""
    grantee, role_active = _grantee_and_role(connection)
    missing = [
        f"{privilege} on {tables.source_database}.{table}"
        for table in (source.name for source in tables.sources)
        for privilege in SOURCE_PRIVILEGES
        if privilege not in _privileges_on(connection, grantee, tables.source_database, table)
    ]
    on_output = _privileges_on(connection, grantee, tables.output_database, None)
    missing += [f"{p} on {tables.output_database}.*" for p in OUTPUT_PRIVILEGES if p not in on_output]
    return missing, grantee, role_active


def check_privileges(log: DagsterLogManager, mysql: MySQLResource) -> None:
    """Raises ``Failure`` naming each missing privilege and the GRANTs that add them."""
    tables = mysql.tables
    with mysql.connect() as connection:
        missing, grantee, role_active = missing_privileges(connection, tables)
    if not missing:
        return
    output = [m.removesuffix(f" on {tables.output_database}.*") for m in missing if m.endswith(".*")]
    grants = [
        f"GRANT SELECT ON {_shown(tables.source_database)}.{_shown(t)} TO {grantee};"
        for t in (source.name for source in tables.sources)
        if any(m.endswith(f".{t}") for m in missing)
    ]
    if output:
        # Every privilege, not only the missing ones: the server applies the one database-level
        # grant whose name matches most specifically, never the sum of overlapping ones.
        grants.append(
            f"GRANT {', '.join(OUTPUT_PRIVILEGES)} ON {_database_pattern(tables.output_database)}.* TO {grantee};"
        )
    message = (
        f"{grantee} lacks privileges lab_assets needs: {'; '.join(missing)}. A DBA can add them with: "
        + " ".join(grants)
        + " (README.md, 'Pointing lab_assets at a production lab system')"
    )
    if output and not tables.separate:
        message += (
            f". Or set {LAB_OUTPUT_DATABASE_ENV} to a database of lab_assets' own and grant these there,"
            f" leaving {tables.source_database} read-only"
        )
    elif output and not _database_exists(mysql, tables.output_database):
        message += (
            f". Database {tables.output_database} does not exist: create it (CREATE DATABASE"
            f" {_shown(tables.output_database)}) or correct {LAB_OUTPUT_DATABASE_ENV}"
        )
    if role_active:
        log.warning(f"{message}. A role is active, whose privileges information_schema does not list: continuing")
        return
    raise Failure(description=message, metadata={"missing_privileges": missing, "grantee": grantee})


def _shown(name: str) -> str:
    """An identifier backtick-quoted for a statement shown to a DBA (not run here)."""
    return "`" + name.replace("`", "``") + "`"


def _database_pattern(database: str) -> str:
    """``database`` as a database-level GRANT names it: ``_`` and ``%`` are wildcards there, so
    they are escaped to grant on this database only."""
    return _shown(database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%"))


def _database_exists(mysql: MySQLResource, database: str) -> bool:
    return bool(mysql.fetch_all("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (database,)))


def check_sources(mysql: MySQLResource) -> None:
    """Raises ``Failure`` with one sentence naming a missing source table or column (the
    variable that names it, what the table has instead), before anything is written: a lab
    that renamed a column would otherwise meet a raw ``1054 Unknown column`` in the middle of a
    build. After the grant check, since information_schema hides what the account may not read."""
    tables = mysql.tables
    with mysql.connect() as connection:
        drift = source_drift(connection, tables)
    if drift is not None:
        raise Failure(
            description=f"{drift}; nothing was written.", metadata={"source_database": tables.source_database}
        )


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


@contextmanager
def guarded_build(
    log: DagsterLogManager, mysql: MySQLResource, run_id: str, step: str, io_manager_schema: str | None = None
) -> Iterator[Callable[[], None]]:
    """Privileges checked, output database present, build lock held: wrap every step that writes.
    Yields :func:`build_lock`'s check, to call before each write. ``io_manager_schema``: where the
    IO manager writes these assets' tables, which must be the resource's output database (the
    refresh's work tables live there too)."""
    with explaining():
        output = mysql.tables.output_database  # reads the server (the parent index)
    if io_manager_schema is not None and io_manager_schema != output:
        raise Failure(
            description=f"the IO manager writes into database {io_manager_schema} but lab_assets' refresh works"
            f" in {output}: set the output database once, with LAB_OUTPUT_DATABASE (MySQLResource.output_database),"
            " and leave MySQLIOManager's schema unset. Nothing was written."
        )
    with explaining():
        check_privileges(log, mysql)
        check_sources(mysql)
        mysql.ensure_output_database()
        with build_lock(log, mysql, holder_of(run_id, step)) as still_held:
            yield still_held
