"""Connection code: the MySQL resource (how to reach the lab database) and the catalog reads
(information_schema) everything else asks through it.

Below ``defs/`` and ``io_manager``: both import from here, nothing here imports from them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from lab_assets.lib.lineage import recursion_limit_statement
from lab_assets.lib.names import SAMPLE_MEASUREMENTS, SAMPLES, SOURCE_TABLES
from lab_assets.lib.sql import quote_identifier
from lab_assets.lib.tables import COLUMN_VARIABLES, TABLE_VARIABLES, SourceTable, TableLocations, source_tables

LAB_DB_URL_ENV = "LAB_DB_URL"
LAB_OUTPUT_DATABASE_ENV = "LAB_OUTPUT_DATABASE"
# MySQL's and MariaDB's default wait_timeout (8 hours, documented): the floor every lab_assets
# session sets for itself, so a connection that waits while others load data is not dropped by a
# server configured with a short global wait_timeout.
SESSION_WAIT_TIMEOUT_SECONDS = 28800


_ENCODING_HINT = (
    "If the password holds any of @ : / % # ? or spaces, URL-encode it, e.g."
    " python -c 'import urllib.parse, getpass; print(urllib.parse.quote(getpass.getpass(), safe=\"\"))'"
    " (@ is %40, / is %2F, : is %3A, % is %25)."
)


def parse_url(url: str, variable: str = LAB_DB_URL_ENV) -> sa.URL:
    """The SQLAlchemy URL in ``url``; ``ValueError`` naming ``variable`` and how to encode a
    password if it cannot be read unambiguously. No message shows any part of the password: a
    parse error (which quotes the text it failed on) is replaced, and a URL with two ``@`` or an
    odd host (an unencoded password split at its own ``@``, whose pieces would show up as host or
    database names in connection errors) is refused before anything connects."""
    problem = None
    try:
        parsed = sa.make_url(url)
    except Exception:  # noqa: BLE001 - its message quotes a piece of the URL (maybe of the password)
        parsed, problem = None, "it cannot be parsed (the part after the last ':' of the host is not a port)"
    if parsed is not None and url.split("://", 1)[-1].count("@") > 1:
        problem = "it holds more than one '@'"
    elif parsed is not None and parsed.host and any(c in parsed.host for c in "@/:%"):
        problem = "its host name holds '@', '/', ':' or '%'"
    if parsed is None or problem is not None:
        raise ValueError(
            f"{variable} is not a valid URL such as mysql+pymysql://user:password@host:3306/lab: {problem}."
            f" {_ENCODING_HINT}"
        ) from None
    return parsed


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine(url: str) -> Engine:
    """One engine (connection pool) per URL for the process."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = _new_engine(url)
        return engine


def dispose_engines() -> None:
    """Closes every pooled connection this process holds (tests call it after each test, so a
    session touching hundreds of databases stays far below the server's max_connections)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        engine.dispose()


# MariaDB's EMPTY_STRING_IS_NULL turns a bound '' (a measurement type spelled as the empty
# string) into NULL, so the pivot would look for a NULL type and publish NULL cells. Every
# connection of lab_assets drops that one mode from its session, keeping the rest of the server's.
WITHOUT_EMPTY_STRING_IS_NULL = (
    "SET SESSION sql_mode = TRIM(BOTH ',' FROM"
    " REPLACE(CONCAT(',', @@session.sql_mode, ','), ',EMPTY_STRING_IS_NULL,', ','))"
)


def _without_empty_string_is_null(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute(WITHOUT_EMPTY_STRING_IS_NULL)


def _new_engine(url: str) -> Engine:
    engine = _create_engine(url)
    # On every new connection, the bulk loads' worker connections included.
    event.listen(engine, "connect", _without_empty_string_is_null)
    return engine


def _create_engine(url: str) -> Engine:
    # AUTOCOMMIT: MySQL commits implicitly around DDL anyway, so transactions are opened
    # explicitly (see `transaction`) exactly where a change must be all-or-nothing.
    return sa.create_engine(
        parse_url(url),
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=True,
        # One idle connection kept per database; the few more a step opens side by side
        # (lab_source_derivations) are closed when returned, so a process that reaches many
        # databases (a code server, the test session) holds few connections.
        pool_size=1,
        max_overflow=8,
        connect_args={"connect_timeout": 10},
    )


@contextmanager
def transaction(connection: Connection) -> Iterator[Connection]:
    """An explicit transaction on an AUTOCOMMIT connection: COMMIT on success, else ROLLBACK."""
    connection.exec_driver_sql("START TRANSACTION")
    try:
        yield connection
    except BaseException:
        connection.exec_driver_sql("ROLLBACK")
        raise
    connection.exec_driver_sql("COMMIT")


# Server errors whose cause is usually a server setting or a grant, with what to look at.
_LIKELY_CAUSES = {
    2006: "the server closed the connection: wait_timeout (idle connections; lab_assets raises its own"
    f" sessions' to at least {SESSION_WAIT_TIMEOUT_SECONDS} s), max_allowed_packet, a server restart, or a proxy's"
    " idle timeout",
    2013: "the connection was lost during a statement: max_execution_time (MySQL 8), net_write_timeout /"
    " net_read_timeout, a KILL by a DBA or a monitoring tool, or a proxy's timeout",
    1205: "a lock wait timed out (innodb_lock_wait_timeout): lab_assets reads the sources at READ COMMITTED"
    " without row locks, so the lock was on one of its own tables: another writer of the output database",
    1665: "the server logs statements (binlog_format=STATEMENT), which InnoDB refuses for INSERT ... SELECT at"
    " READ COMMITTED: ask the DBA for binlog_format=ROW or MIXED (MySQL 8 and MariaDB defaults)",
    1969: "a statement ran past the account's or the server's max_statement_time (MariaDB); lab_assets"
    " lifts it for its own sessions, so it was set where a session cannot change it (a DBA's limit"
    " on the account: MAX_STATEMENT_TIME in GRANT)",
    3024: "a statement ran past max_execution_time (MySQL 8); lab_assets lifts it for its own sessions",
    1142: "a privilege is missing (README.md, 'Pointing lab_assets at a production lab system')",
    1044: "a privilege is missing (README.md, 'Pointing lab_assets at a production lab system')",
}


def server_error_code(error: BaseException) -> int | None:
    """The MySQL error number of a PyMySQL or SQLAlchemy error, else None."""
    original = getattr(error, "orig", error)
    args = getattr(original, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


class LabDatabaseError(RuntimeError):
    """A server error with its likely cause named (the original is chained as ``__cause__``)."""


def explained(error: BaseException) -> BaseException:
    """``error``, or a :class:`LabDatabaseError` that names its likely server setting first."""
    code = server_error_code(error)
    cause = _LIKELY_CAUSES.get(code) if code is not None else None
    if cause is None:
        return error
    explanation = LabDatabaseError(f"MySQL error {code}: {cause}. Server message: {getattr(error, 'orig', error)}")
    explanation.__cause__ = error
    return explanation


@dataclass(frozen=True)
class ColumnInfo:
    """One column as information_schema describes it."""

    name: str
    column_type: str  # e.g. "int(11)" (MariaDB) or "int" (MySQL 8.0.19+): shown, never parsed
    nullable: bool
    character_set: str | None  # None for non-text columns
    collation: str | None


def is_mariadb(connection: Connection) -> bool:
    """MariaDB or MySQL: a few session variables are named differently (lab_assets.lib.sql)."""
    return bool(getattr(connection.dialect, "is_mariadb", False))


def table_columns(connection: Connection, schema: str, table: str) -> list[ColumnInfo]:
    """The table's columns in their order; empty if the table does not exist. Read by position:
    MySQL 8 labels information_schema's result columns in upper case, MariaDB as written."""
    rows = connection.exec_driver_sql(
        "SELECT column_name, column_type, is_nullable, character_set_name, collation_name"
        " FROM information_schema.columns WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()
    return [ColumnInfo(str(r[0]), str(r[1]), r[2] == "YES", r[3], r[4]) for r in rows]


def column_names(connection: Connection, schema: str, table: str) -> list[str]:
    """The table's column names in their order; empty if the table does not exist."""
    return [column.name for column in table_columns(connection, schema, table)]


def table_exists(connection: Connection, schema: str, table: str) -> bool:
    return (
        connection.exec_driver_sql(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        ).first()
        is not None
    )


def index_starting_with(connection: Connection, schema: str, table: str, column: str) -> str | None:
    """The name of an index of ``table`` whose first column is ``column`` (a unique one first),
    or None."""
    row = connection.exec_driver_sql(
        "SELECT index_name FROM information_schema.statistics"
        " WHERE table_schema = %s AND table_name = %s AND column_name = %s AND seq_in_index = 1"
        " ORDER BY non_unique, index_name LIMIT 1",
        (schema, table, column),
    ).first()
    return None if row is None else str(row[0])


# (url, source database, the lab's samples table and parent column) -> (monotonic time read, its
# index starting with that column): read at most once a minute, so the many `tables` lookups of a
# run cost no query, and a changed index is seen soon.
_PARENT_INDEX_CACHE: dict[tuple[str, str, str, str], tuple[float, str | None]] = {}
_PARENT_INDEX_SECONDS = 60.0


def sample_id_span(connection: Connection, tables: TableLocations) -> int:
    """``MAX(id) - MIN(id) + 1`` of samples (0 when empty): at least the number of samples, exactly
    that while ids are dense, read from the primary key's two ends instead of counting every row.
    The one bound used for recursion limits and for the share of changed samples."""
    sample_id = quote_identifier(tables.source(SAMPLES).column("id"))
    (span,) = connection.exec_driver_sql(
        f"SELECT COALESCE(MAX({sample_id}) - MIN({sample_id}) + 1, 0) FROM {tables.qualified(SAMPLES)}"
    ).one()
    return int(span)


def source_drift(connection: Connection, tables: TableLocations) -> str | None:
    """One sentence naming what the source tables lack of what lab_assets reads (a missing table
    or column, the variable that names it, what is there instead), or None. Read from
    information_schema, which shows only what the account may read (so a table without SELECT
    looks missing; the grant check runs first)."""
    database = tables.source_database
    names = [source.name for source in tables.sources]
    rows = connection.exec_driver_sql(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name IN (%s, %s) ORDER BY ordinal_position",
        (database, *names),
    ).fetchall()
    present: dict[str, list[str]] = {}
    for table, column in rows:  # keyed in lower case: lower_case_table_names may fold the names
        present.setdefault(str(table).lower(), []).append(str(column))
    problems: list[str] = []
    for source in tables.sources:
        if source.name.lower() not in present:
            there = sorted(
                str(row[0])
                for row in connection.exec_driver_sql(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (database,)
                )
            )
            problems.append(str(source.drift(database, None, there)))
        elif (problem := source.drift(database, present[source.name.lower()], ())) is not None:
            problems.append(problem)
    return "; ".join(problems) or None


class MySQLResource(ConfigurableResource):
    """Connection settings for the lab's MySQL (or MariaDB) database.

    ``url`` is a SQLAlchemy URL such as ``mysql+pymysql://root@127.0.0.1:3306/lab``; its database
    (the source database) holds ``samples`` and ``sample_measurements``, which lab_assets only
    reads. ``output_database`` names the database on the same server where lab_assets creates and
    writes every table of its own; unset, the source database. Checks, sensors and the IO manager
    all connect through this resource; :attr:`tables` says where each table lives.

    Every session reads at READ COMMITTED: a statement that reads the sources (``INSERT ... SELECT``
    included) takes a consistent snapshot and no row locks, so it neither waits on a lab
    transaction nor holds one up (under REPEATABLE READ, InnoDB share-locks the rows an
    ``INSERT ... SELECT`` reads).
    """

    url: str = Field(description="SQLAlchemy URL of the lab database, e.g. mysql+pymysql://user@host:3306/lab")
    output_database: str | None = Field(
        default=None,
        description="Database (same server) for every table lab_assets creates; default: the URL's database."
        f" Set from {LAB_OUTPUT_DATABASE_ENV} by lab_assets.definitions.",
    )
    build_lock_timeout_seconds: int = Field(
        default=1800,
        description="How long a build waits for another lab_assets build of the same output database"
        " (from any Dagster instance) to end before it stops; a 1M-sample build takes about a minute"
        " (bench/RESULTS.md).",
    )
    samples_table: str = Field(
        default=SAMPLES,
        description=f"The lab's samples table in the URL's database. Set from {TABLE_VARIABLES[SAMPLES]}.",
    )
    measurements_table: str = Field(
        default=SAMPLE_MEASUREMENTS,
        description=f"The lab's measurements table. Set from {TABLE_VARIABLES[SAMPLE_MEASUREMENTS]}.",
    )
    sample_columns: str = Field(
        default="",
        description="The lab's names of the samples columns lab_assets reads, where they differ, e.g."
        f" id=sample_pk,parent_id=derived_from,experiment_id=study_id. Set from {COLUMN_VARIABLES[SAMPLES]}.",
    )
    measurement_columns: str = Field(
        default="",
        description="The lab's names of the measurement columns lab_assets reads, where they differ, e.g."
        " sample_id=sample_fk,measurement_type=assay,value=result."
        f" Set from {COLUMN_VARIABLES[SAMPLE_MEASUREMENTS]}.",
    )
    temp_table_memory_mb: int = Field(
        default=256,
        description="Session tmp_table_size / max_heap_table_size in MiB: in-database intermediate"
        " results (the lineage CTE, GROUP BY of measurements) up to this size stay in memory.",
    )

    @property
    def database(self) -> str:
        parsed = parse_url(self.url)
        if not parsed.database:
            raise ValueError(
                f"{LAB_DB_URL_ENV} must name a database, e.g. mysql+pymysql://root@127.0.0.1:3306/lab "
                f"(got {parsed.render_as_string(hide_password=True)})"
            )
        database = parsed.database
        return database

    @property
    def sources(self) -> tuple[SourceTable, SourceTable]:
        """The lab's names of its two tables and the columns lab_assets reads (``ValueError``
        naming the variable if a setting is malformed)."""
        return source_tables(self.samples_table, self.measurements_table, self.sample_columns, self.measurement_columns)

    @property
    def tables(self) -> TableLocations:
        """Where each table lives and what the lab calls the sources: sources in the URL's
        database, lab_assets' own in the output one; with the source's index on samples.parent_id
        (the lab's names) that recursive walks step through."""
        source = self.database
        sources = self.sources
        samples = sources[0]
        key = (self.url, source, samples.name, samples.column("parent_id"))
        cached = _PARENT_INDEX_CACHE.get(key)
        if cached is None or time.monotonic() - cached[0] > _PARENT_INDEX_SECONDS:
            with self.connect() as connection:
                index = index_starting_with(connection, source, samples.name, samples.column("parent_id"))
            cached = _PARENT_INDEX_CACHE[key] = (time.monotonic(), index)
        return TableLocations(source, self.output_database or source, parent_index=cached[1], sources=sources)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with _engine(self.url).connect() as connection:
            # Session only, never global. Spilled to disk, MariaDB's lookups into the lineage
            # CTE's intermediate table made the lineage build many times slower (bench/RESULTS.md).
            memory = self.temp_table_memory_mb * 1024 * 1024
            connection.exec_driver_sql(
                f"SET SESSION tmp_table_size = {memory}, max_heap_table_size = {memory},"
                f" wait_timeout = GREATEST(@@session.wait_timeout, {SESSION_WAIT_TIMEOUT_SECONDS})"
            )
            connection.exec_driver_sql("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            # A server-wide statement time limit (a DBA's guard for interactive queries) would cut
            # a build's long INSERT ... SELECT short; lab_assets' sessions run without one.
            limit = "max_statement_time" if is_mariadb(connection) else "max_execution_time"
            connection.exec_driver_sql(f"SET SESSION {limit} = 0")
            yield connection

    def fetch_all(self, sql: str, params: Sequence[object] = (), *, recursion_limit: int | None = None) -> list[tuple]:
        """Rows of one query. ``recursion_limit`` first raises the session's recursive-CTE limit
        (MariaDB ``max_recursive_iterations``, MySQL 8 ``cte_max_recursion_depth``)."""
        with self.connect() as connection:
            if recursion_limit is not None:
                connection.exec_driver_sql(recursion_limit_statement(is_mariadb(connection), recursion_limit))
            return [tuple(row) for row in connection.exec_driver_sql(sql, tuple(params)).fetchall()]

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one statement; returns the affected row count."""
        with self.connect() as connection:
            return connection.exec_driver_sql(sql, tuple(params)).rowcount

    def fetch_one(self, sql: str, params: Sequence[object] = (), *, recursion_limit: int | None = None) -> tuple:
        rows = self.fetch_all(sql, params, recursion_limit=recursion_limit)
        if len(rows) != 1:
            raise ValueError(f"expected one row, got {len(rows)} from: {sql}")
        return rows[0]

    # --- catalog reads ------------------------------------------------------------------------

    def table_columns(self, table: str) -> list[ColumnInfo]:
        """Columns of ``table`` where it lives (:attr:`tables`; :func:`table_columns`); for a
        source table (``samples``, ``sample_measurements``) the lab's table, by the lab's names."""
        tables = self.tables
        name = tables.source(table).name if table in SOURCE_TABLES else table
        with self.connect() as connection:
            return table_columns(connection, tables.database_of(table), name)

    def column_names(self, table: str) -> list[str]:
        """Column names of ``table`` where it lives, in order; empty if it does not exist."""
        return [column.name for column in self.table_columns(table)]

    def column(self, table: str, column: str) -> ColumnInfo:
        """One column of a table in this database (of a source table: the lab's column that
        lab_assets reads as ``column``); ``LookupError`` naming both if it is missing."""
        if table in SOURCE_TABLES:
            table_name, column = self.tables.source(table).name, self.tables.source(table).column(column)
        else:
            table_name = table
        for info in self.table_columns(table):
            if info.name.lower() == column.lower():
                return info
        raise LookupError(f"{self.tables.database_of(table)}.{table_name} has no column {column}")

    def ensure_output_database(self) -> None:
        """Creates the output database if it does not exist yet (needs CREATE on it; a DBA may
        create it instead, README, "Pointing lab_assets at a production lab system")."""
        output = self.tables.output_database
        with self.connect() as connection:
            exists = connection.exec_driver_sql(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (output,)
            ).first()
            if exists is None:
                connection.exec_driver_sql(f"CREATE DATABASE {quote_identifier(output)}")

    def sample_id_span(self) -> int:
        """:func:`sample_id_span` of this database's samples."""
        tables = self.tables
        with self.connect() as connection:
            return sample_id_span(connection, tables)

    def source_drift(self) -> str | None:
        """:func:`source_drift` of this resource's source tables."""
        tables = self.tables
        with self.connect() as connection:
            return source_drift(connection, tables)
