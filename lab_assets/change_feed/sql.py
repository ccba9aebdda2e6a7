"""The change feed's SQL text: the binlog position table, its statements, and the statements that
tell whether the account may read the binlog. No Dagster, no SQLAlchemy, no connection.

Values travel as bound parameters (``%s``); identifiers are quoted with
:func:`~lab_assets.sql.statements.quote_identifier`. Result rows are read by position, never by label
(MySQL 8 and MariaDB label some of them differently).

MySQL 8 vs MariaDB, as their manuals give them:

* The binlog position: MySQL 8.2+ ``SHOW BINARY LOG STATUS`` (8.4 no longer accepts ``SHOW
  MASTER STATUS``); MariaDB keeps ``SHOW MASTER STATUS`` (10.5.2+ also ``SHOW BINLOG STATUS``) and
  has no ``SHOW BINARY LOG STATUS``. Both need REPLICATION CLIENT (MariaDB 10.5.2+: BINLOG
  MONITOR, of which REPLICATION CLIENT is an alias), as does ``SHOW BINARY LOGS``.
* Reading the binlog (COM_BINLOG_DUMP) needs REPLICATION SLAVE on both.
* Server identity: MySQL has ``@@server_uuid``; MariaDB has none (its GTIDs name a domain and a
  server id instead), so the feed compares ``@@server_id`` there, and the uuid too on MySQL.
"""

from __future__ import annotations

from lab_assets.lineage.sql import RECORDED_PARENT_INDEX
from lab_assets.names import CHANGE_FEED_POSITION, SAMPLE_LINEAGE
from lab_assets.sources.locations import TableLocations
from lab_assets.sql.statements import Column, TableDefinition, qualified_name, quote_identifier

# The one row's key: the table holds one binlog position, the one every row of lab_assets'
# derived tables is exact up to.
POSITION_ROW = 1

POSITION_DEFINITION = TableDefinition(
    columns=(
        Column("position_row", "TINYINT UNSIGNED NOT NULL", "always 1: the table holds one binlog position"),
        Column("server_id", "BIGINT UNSIGNED NOT NULL", "@@server_id of the server whose binlog this is"),
        Column("server_uuid", "VARCHAR(64) NULL", "@@server_uuid of that server (MySQL; NULL on MariaDB)"),
        Column("binlog_file", "VARCHAR(512) NOT NULL", "the binlog file the position is in"),
        Column("binlog_position", "BIGINT UNSIGNED NOT NULL", "byte offset of a transaction boundary in that file"),
        Column("gtid", "TEXT NULL", "the server's GTID set or position there, when it has one"),
        Column("updated_at", "TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)", "when the position was stored"),
    ),
    primary_key=("position_row",),
)


def create_position_table_statement(output_database: str) -> str:
    """CREATE TABLE IF NOT EXISTS for the position table, in the output database."""
    return POSITION_DEFINITION.create_statement(output_database, CHANGE_FEED_POSITION, if_not_exists=True)


def position_upsert_statement(output_database: str) -> str:
    """Store the position: binds server_id, server_uuid, binlog_file, binlog_position, gtid.

    One statement, so the stored position is always a whole one (never a file from one call and
    an offset from another). REPLACE, not INSERT ... ON DUPLICATE KEY UPDATE with ``VALUES()``
    (deprecated by MySQL 8.0.20) or a row alias (MariaDB lacks it): on a one-row table keyed by a
    constant it is the same change on both servers."""
    table = qualified_name(output_database, CHANGE_FEED_POSITION)
    names = ("position_row", "server_id", "server_uuid", "binlog_file", "binlog_position", "gtid")
    return (
        f"REPLACE INTO {table} ({', '.join(map(quote_identifier, names))}) VALUES ({POSITION_ROW}, %s, %s, %s, %s, %s)"
    )


def position_select_statement(output_database: str) -> str:
    """The stored position: server_id, server_uuid, binlog_file, binlog_position, gtid (no row: none)."""
    table = qualified_name(output_database, CHANGE_FEED_POSITION)
    return (
        "SELECT `server_id`, `server_uuid`, `binlog_file`, `binlog_position`, `gtid`"
        f" FROM {table} WHERE `position_row` = {POSITION_ROW}"
    )


# --- access: server settings and grants -----------------------------------------------------------

# @@log_bin (1 when the binlog is on), @@binlog_format, @@binlog_row_image, @@server_id.
SERVER_SETTINGS_SELECT = "SELECT @@global.log_bin, @@global.binlog_format, @@global.binlog_row_image, @@server_id"


def server_identity_select(is_mariadb: bool) -> str:
    """@@server_id and @@server_uuid (NULL on MariaDB, which has none) and the server's GTID
    position (MariaDB ``gtid_binlog_pos``, MySQL ``gtid_executed``), for the stored position."""
    if is_mariadb:
        return "SELECT @@server_id, NULL, @@global.gtid_binlog_pos"
    return "SELECT @@server_id, @@server_uuid, @@global.gtid_executed"


GRANTS_STATEMENT = "SHOW GRANTS FOR CURRENT_USER()"
BINARY_LOGS_STATEMENT = "SHOW BINARY LOGS"  # Log_name, File_size (REPLICATION CLIENT / BINLOG MONITOR)


def binlog_status_statements(is_mariadb: bool) -> tuple[str, ...]:
    """The statements that give the binlog's current file and position, to try in order (the next
    one only on a syntax error, 1064): MySQL 8.2+ renamed ``SHOW MASTER STATUS``, 8.4 removed it."""
    if is_mariadb:
        return ("SHOW MASTER STATUS",)
    return ("SHOW BINARY LOG STATUS", "SHOW MASTER STATUS")


# The grants the feed needs on *.* (global privileges only exist there): the binlog dump, and the
# statements that show the binlog's files and position.
READ_GRANT = "REPLICATION SLAVE"
MONITOR_GRANTS = {True: "BINLOG MONITOR", False: "REPLICATION CLIENT"}  # by is_mariadb
# What SHOW GRANTS lists that covers each (MariaDB shows REPLICATION CLIENT as BINLOG MONITOR from
# 10.5.2 on; older servers and MySQL show REPLICATION CLIENT; ALL PRIVILEGES covers both).
GRANT_SYNONYMS = {
    READ_GRANT: ("REPLICATION SLAVE", "ALL PRIVILEGES"),
    "BINLOG MONITOR": ("BINLOG MONITOR", "REPLICATION CLIENT", "ALL PRIVILEGES"),
    "REPLICATION CLIENT": ("REPLICATION CLIENT", "ALL PRIVILEGES"),
}


def grant_fix_statement(privileges: tuple[str, ...], account: str) -> str:
    """``GRANT <privileges> ON *.* TO <account>``, ``account`` as CURRENT_USER() gives it
    (``user@host``), written back quoted as GRANT wants it."""
    user, _, host = account.rpartition("@")
    return f"GRANT {', '.join(privileges)} ON *.* TO {_quote_account_part(user)}@{_quote_account_part(host)}"


def _quote_account_part(part: str) -> str:
    return "'" + part.replace("\\", "\\\\").replace("'", "''") + "'"


def source_columns_select() -> str:
    """Binds the source database and the two source tables' names: table_name, column_name and
    ordinal_position of their columns. The binlog's row events hold columns by position, and
    a server without ``binlog_row_metadata=FULL`` (both servers' default) logs no names."""
    return (
        "SELECT table_name, column_name, ordinal_position FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name IN (%s, %s) ORDER BY table_name, ordinal_position"
    )


def feed_ids_insert_statement(qualified_ids_table: str) -> str:
    """One changed sample id (bound) into the feed's work table of ids."""
    return f"INSERT IGNORE INTO {qualified_ids_table} (sample_id) VALUES (%s)"


def recorded_descendants_select(tables: TableLocations, seeds_table: str) -> str:
    """The seeds (deleted samples) and every sample ``sample_lineage`` recorded under them, down
    its recorded parent links (the ``parent_id`` index, forced as every walk here forces it): a
    foreign key's cascade may have deleted those rows and their measurements with no row event
    in the binlog. UNION ends the walk on a recorded cycle."""
    lineage = tables.qualified(SAMPLE_LINEAGE)
    return f"""WITH RECURSIVE down (sample_id) AS (
  SELECT sample_id FROM {tables.qualified(seeds_table)}
  UNION
  SELECT recorded.sample_id FROM down
  STRAIGHT_JOIN {lineage} AS recorded FORCE INDEX ({quote_identifier(RECORDED_PARENT_INDEX)})
    ON recorded.parent_id = down.sample_id
)
SELECT sample_id FROM down"""


def position_table_exists_select(output_database: str) -> tuple[str, tuple[str, str]]:
    """Whether the position table exists (information_schema, no DDL), with its bound values."""
    return (
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
        (output_database, CHANGE_FEED_POSITION),
    )
