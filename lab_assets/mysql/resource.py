"""The MySQL resource: how to reach the lab database (LAB_DB_URL), where its tables live, and the
connections, statements and catalog reads (lab_assets.mysql.catalog) everything else asks
through it."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from dagster import ConfigurableResource, Failure
from pydantic import Field
from sqlalchemy.engine import Connection

from lab_assets.mysql.catalog import (
    ColumnInfo,
    index_starting_with,
    sample_id_span,
    source_drift,
    table_columns,
)
from lab_assets.mysql.errors import connection_problem
from lab_assets.mysql.sessions import (
    LAB_DB_URL_ENV,
    LabUrlError,
    engine_for,
    is_mariadb,
    parse_url,
    recursion_limit_statement,
    spare_connections,
)
from lab_assets.names import SAMPLE_MEASUREMENTS, SAMPLES, SOURCE_TABLES
from lab_assets.sources.locations import (
    COLUMN_VARIABLES,
    LAB_OUTPUT_DATABASE_ENV,
    TABLE_VARIABLES,
    SourceTable,
    TableLocations,
    source_tables,
)
from lab_assets.sql.statements import quote_identifier

# (url, source database, the lab's samples table and parent column) -> (monotonic time read, its
# index starting with that column): read at most once a minute, so the many `tables` lookups of a
# run cost no query, and a changed index is seen soon.
_PARENT_INDEX_CACHE: dict[tuple[str, str, str, str], tuple[float, str | None]] = {}
_PARENT_INDEX_SECONDS = 60.0


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
        " (from any Dagster instance) to end before it stops (bench/RESULTS.md, Growth: how long builds take).",
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
        """The URL's database; a URL lab_assets cannot use raises ``Failure`` with the sentence
        that says why (:func:`lab_assets.mysql.sessions.parse_url`)."""
        try:
            parsed = parse_url(self.url)
        except LabUrlError as error:
            raise Failure(description=str(error)) from None  # the parse error may quote the password
        if not parsed.database:
            raise Failure(
                description=f"{LAB_DB_URL_ENV} must name a database, e.g. mysql+pymysql://root@127.0.0.1:3306/lab "
                f"(got {parsed.render_as_string(hide_password=True)})"
            )
        return parsed.database

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
        """A connection of this resource's engine, with lab_assets' session settings
        (:func:`session_settings`, applied where the engine opens each connection). A connection
        that cannot be opened raises ``Failure`` whose description is one sentence naming
        LAB_DB_URL (password hidden), what failed and what to check
        (:func:`lab_assets.mysql.errors.connection_problem`), the driver's error chained: the first
        line a step failure, the sensor's skip reason and local_lab show. Only the opening is
        translated: errors of statements keep their own explanations."""
        try:
            connection = engine_for(self.url, self.temp_table_memory_mb).connect()
        except LabUrlError as error:
            raise Failure(description=str(error)) from None  # the parse error may quote the password
        except Exception as error:
            raise Failure(description=connection_problem(error, self.url)) from error
        with connection:
            yield connection

    def side_by_side(self, wanted: int) -> int:
        """How many connections to use at once for ``wanted`` independent statements: ``wanted``
        when the account's and the server's limits leave room for them now, else as many as they
        leave, at least one (the statements then take turns; :func:`spare_connections`)."""
        with self.connect() as connection:
            spare = spare_connections(connection)
        return max(1, min(wanted, spare + 1))  # + 1: the connection just returned to the pool

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
        """The one row of a query; ``ValueError`` naming the query when it returns none or several."""
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
