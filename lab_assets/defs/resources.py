"""The MySQL resource: one place that knows how to reach the lab database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

import sqlalchemy as sa
from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy.engine import Connection, Engine

from lab_assets.lib.lineage import recursion_limit_statement

LAB_DB_URL_ENV = "LAB_DB_URL"


@lru_cache(maxsize=None)
def _engine(url: str) -> Engine:
    # AUTOCOMMIT: MySQL commits implicitly around DDL anyway, so transactions are opened
    # explicitly (see `transaction`) exactly where a change must be all-or-nothing.
    return sa.create_engine(
        url,
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


class MySQLResource(ConfigurableResource):
    """Connection settings for the lab's MySQL (or MariaDB) database.

    ``url`` is a SQLAlchemy URL such as ``mysql+pymysql://root@127.0.0.1:3306/lab``; its database
    holds ``samples`` and ``sample_measurements``. Checks, sensors and the IO manager all connect
    through this resource.
    """

    url: str = Field(description="SQLAlchemy URL of the lab database, e.g. mysql+pymysql://user@host:3306/lab")
    temp_table_memory_mb: int = Field(
        default=256,
        description="Session tmp_table_size / max_heap_table_size in MiB: in-database intermediate"
        " results (the lineage CTE, GROUP BY of measurements) up to this size stay in memory.",
    )

    @property
    def database(self) -> str:
        database = sa.make_url(self.url).database
        if not database:
            raise ValueError(
                f"{LAB_DB_URL_ENV} must name a database, e.g. mysql+pymysql://root@127.0.0.1:3306/lab "
                f"(got {sa.make_url(self.url).render_as_string(hide_password=True)})"
            )
        return database

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with _engine(self.url).connect() as connection:
            # Session only, never global. Spilled to disk, MariaDB's lookups into the lineage
            # CTE's intermediate table made the lineage build 10x slower at 1M samples.
            memory = self.temp_table_memory_mb * 1024 * 1024
            connection.exec_driver_sql(f"SET SESSION tmp_table_size = {memory}, max_heap_table_size = {memory}")
            yield connection

    def fetch_all(self, sql: str, params: Sequence[object] = (), *, recursion_limit: int | None = None) -> list[tuple]:
        """Rows of one query. ``recursion_limit`` first raises the session's recursive-CTE limit
        (MariaDB ``max_recursive_iterations``, MySQL 8 ``cte_max_recursion_depth``)."""
        with self.connect() as connection:
            if recursion_limit is not None:
                connection.exec_driver_sql(recursion_limit_statement(connection.dialect.is_mariadb, recursion_limit))
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
