"""Fixtures: a real MariaDB/MySQL server, one throwaway database per test that needs one, all
named after this session so parallel sessions never meet and leftovers are easy to spot."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pymysql
import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, materialize

from lab_assets.defs.assets import LAB_ASSETS
from lab_assets.defs.checks import ALL_CHECKS
from lab_assets.io_manager import MySQLIOManager
from lab_assets.local_lab import source_schema_statements
from lab_assets.mysql import MySQLResource
from lab_assets_tests import lab_data

# The server the tests use; its database part is ignored (each test gets its own database).
SERVER_URL = sa.make_url(os.environ.get("LAB_TEST_SERVER_URL", "mysql+pymysql://root@127.0.0.1:3306"))
SESSION_PREFIX = f"labtest_{secrets.token_hex(3)}"


def server_connection(database: str | None = None) -> pymysql.connections.Connection:
    return lab_data.server_connection(SERVER_URL, database)


@dataclass
class LabDatabase:
    name: str

    @property
    def url(self) -> str:
        return SERVER_URL.set(database=self.name).render_as_string(hide_password=False)

    def connect(self) -> pymysql.connections.Connection:
        return server_connection(self.name)

    def execute(self, *statements: str) -> None:
        with self.connect() as connection, connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.connect() as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [tuple(r) for r in cursor.fetchall()]

    def resources(self) -> dict[str, object]:
        mysql = MySQLResource(url=self.url)
        return {"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql)}

    def materialize_all(self, instance: DagsterInstance | None = None, raise_on_error: bool = True, tags=None):
        return materialize(
            [*LAB_ASSETS, *ALL_CHECKS],
            tags=tags,
            resources=self.resources(),
            instance=instance,
            raise_on_error=raise_on_error,
        )


_counter = iter(range(1_000_000))


def create_lab_database(seed_rows: bool = True) -> LabDatabase:
    """A new database holding only the lab's two source tables (and the 20 fixed samples)."""
    database = LabDatabase(f"{SESSION_PREFIX}_{next(_counter)}")
    with server_connection() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{database.name}`")
    statements = source_schema_statements()
    if not seed_rows:
        statements = [s for s in statements if not s.upper().startswith("INSERT")]
    database.execute(*statements)
    return database


# Fixtures that reach the server: a test using any of them (directly or through another fixture)
# is marked ``integration``, as are the tests marked so in their module.
SERVER_FIXTURES = {"lab_db", "empty_lab_db", "mysql_dagster_home"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _drop_session_databases(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not any(item.get_closest_marker("integration") for item in request.session.items):
        return  # nothing here reached the server (e.g. pytest -m "not integration")
    with server_connection() as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s", (SESSION_PREFIX + "\\_%",)
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f"DROP DATABASE `{name}`")


@pytest.fixture
def lab_db() -> LabDatabase:
    """A fresh lab database with the source schema and the 20 fixed samples."""
    return create_lab_database(seed_rows=True)


@pytest.fixture
def empty_lab_db() -> LabDatabase:
    """A fresh lab database with the source schema and no rows."""
    return create_lab_database(seed_rows=False)
