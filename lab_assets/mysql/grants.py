"""The account's privileges, checked before a step writes: SELECT on the two source tables (by the
lab's names); on the output database the privileges its DDL and writes need
(:data:`OUTPUT_PRIVILEGES`). Read from information_schema (global, database and table grants of
the current account, database-name wildcards included); a missing one stops the step with the
GRANT that fixes it, before any write, instead of a raw ``1142 ... command denied``. Privileges
that come through roles are not listed there: with an active role, missing ones are only logged.
"""

from __future__ import annotations

from dagster import DagsterLogManager, Failure
from sqlalchemy.engine import Connection

from lab_assets.mysql.resource import LAB_OUTPUT_DATABASE_ENV, MySQLResource
from lab_assets.sources.locations import TableLocations


def _shown(name: str) -> str:
    """An identifier backtick-quoted for a statement shown to a DBA (not run here)."""
    return "`" + name.replace("`", "``") + "`"


def _database_pattern(database: str) -> str:
    """``database`` as a database-level GRANT names it: ``_`` and ``%`` are wildcards there, so
    they are escaped to grant on this database only."""
    return _shown(database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%"))


def _database_exists(mysql: MySQLResource, database: str) -> bool:
    return bool(mysql.fetch_all("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (database,)))


# What the output database's tables need: CREATE/DROP/ALTER/INDEX for staging tables, swaps
# (RENAME TABLE needs ALTER and DROP on the old name, CREATE and INSERT on the new) and indexes
# added after a load; SELECT/INSERT/UPDATE/DELETE for the writes and upserts.
OUTPUT_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX")

SOURCE_PRIVILEGES = ("SELECT",)


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
