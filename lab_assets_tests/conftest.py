"""Fixtures: a real MariaDB/MySQL server, one throwaway database per test that needs one
(lab_assets_tests/databases.py); tests that reach the server are marked ``integration``; tests
marked ``browser`` are skipped, saying what to install, where Chromium or Playwright is missing."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# The shared helpers assert too: pytest explains their failures as it does the tests' own, if it
# rewrites them, which it must be told before they are first imported (below).
pytest.register_assert_rewrite("lab_assets_tests.lab_data", "lab_assets_tests.runs")

from lab_assets.mysql.sessions import dispose_engines  # noqa: E402
from lab_assets_tests.databases import (  # noqa: E402
    SESSION_PREFIX,
    LabDatabase,
    create_lab_database,
    server_connection,
)
from lab_assets_tests.webserver import browser_missing  # noqa: E402

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
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
            (_like_prefix(SESSION_PREFIX),),
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f"DROP DATABASE `{name.replace('`', '``')}`")


@pytest.fixture(autouse=True)
def _close_pooled_connections() -> Iterator[None]:
    """Each test's databases are done with once it ends: their pooled connections are closed."""
    yield
    dispose_engines()


@pytest.fixture(autouse=True)
def _browser_present(request: pytest.FixtureRequest) -> None:
    """A ``browser`` test without its browser is skipped with the reason, before any database is
    made for it; on CI (``CI`` set, as .ci/run runs) it fails instead: CI installs Chromium so that
    the test runs there, and a skip would hide that it did not."""
    if request.node.get_closest_marker("browser") is None or (missing := browser_missing()) is None:
        return
    if os.environ.get("CI"):
        pytest.fail(missing)
    pytest.skip(missing)


@pytest.fixture
def lab_db() -> LabDatabase:
    """A fresh lab database with the source schema and the 20 fixed samples."""
    return create_lab_database(seed_rows=True)


@pytest.fixture
def empty_lab_db() -> LabDatabase:
    """A fresh lab database with the source schema and no rows."""
    return create_lab_database(seed_rows=False)


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern for the names that start with ``prefix`` + "_" ("_" is a LIKE wildcard)."""
    return prefix.replace("_", "\\_") + "\\_%"
