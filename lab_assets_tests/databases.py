"""The test server and its throwaway databases: one per test that needs one, all named after this
session (``<LAB_TEST_DB_PREFIX>_<session>_<n>``, by default ``labtest_...``) so parallel sessions
never meet and leftovers are easy to spot.
conftest.py turns these into fixtures; modules that need the server directly import from here."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import TypedDict

import pymysql
import sqlalchemy as sa
from dagster import DagsterInstance, materialize

from lab_assets.defs.assets import LAB_ASSETS
from lab_assets.io_manager import MySQLIOManager
from lab_assets.local_lab import source_schema_statements
from lab_assets.mysql.resource import MySQLResource
from lab_assets_tests import lab_data

# The server the tests use; its database part is ignored (each test gets its own database).
SERVER_URL = sa.make_url(os.environ.get("LAB_TEST_SERVER_URL", "mysql+pymysql://root@127.0.0.1:3306"))
# Every database a session creates starts with LAB_TEST_DB_PREFIX (default ``labtest``), then the
# session's random part: ``<prefix>_<session>_<n>``. Letters, digits and "_" only, at most 24
# characters, so the longest name the tests make stays within MySQL's 64.
DB_PREFIX = os.environ.get("LAB_TEST_DB_PREFIX", "labtest")
if not (DB_PREFIX.replace("_", "").isalnum() and DB_PREFIX.isascii() and len(DB_PREFIX) <= 24):
    raise ValueError(f"LAB_TEST_DB_PREFIX must be ASCII letters, digits and '_', at most 24 characters: {DB_PREFIX!r}")
SESSION_PREFIX = f"{DB_PREFIX}_{secrets.token_hex(3)}"


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
            LAB_ASSETS,
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


# A lab with table and column names of its own (test_lab_schema.py, test_production_lims.py).
class LabNames(TypedDict):
    """MySQLResource's table and column names for a lab whose tables are named its own way."""

    samples_table: str
    measurements_table: str
    sample_columns: str
    measurement_columns: str


LAB_NAMES: LabNames = {
    "samples_table": "lims_sample",
    "measurements_table": "lims_result",
    "sample_columns": "id=sample_pk,parent_id=derived_from,experiment_id=study_id",
    "measurement_columns": "sample_id=sample_fk,measurement_type=assay,value=result",
}
# The lab's own tables (index and constraint names of its own too), loaded from the seed schema's.
RENAMED_SCHEMA = (
    "CREATE TABLE lims_sample (notes VARCHAR(40) NOT NULL DEFAULT 'n', sample_pk INT PRIMARY KEY AUTO_INCREMENT,"
    " derived_from INT, study_id INT, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " KEY lims_sample_made_from (derived_from),"
    " CONSTRAINT lims_sample_parent FOREIGN KEY (derived_from) REFERENCES lims_sample (sample_pk) ON DELETE CASCADE)",
    "CREATE TABLE lims_result (sample_fk INT, assay VARCHAR(10), result DECIMAL(16,6), extra INT DEFAULT 7,"
    " KEY lims_result_sample (sample_fk),"
    " CONSTRAINT lims_result_sample FOREIGN KEY (sample_fk) REFERENCES lims_sample (sample_pk) ON DELETE CASCADE)",
    "SET SESSION foreign_key_checks = 0",
    "INSERT INTO lims_sample (sample_pk, derived_from, study_id) SELECT id, parent_id, experiment_id FROM samples",
    "INSERT INTO lims_result (sample_fk, assay, result)"
    " SELECT sample_id, measurement_type, value FROM sample_measurements",
    "DROP TABLE sample_measurements, samples",
)
