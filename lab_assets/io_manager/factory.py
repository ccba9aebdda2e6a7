"""The IO manager itself: :class:`MySQLIOManager`, the configurable factory ``defs`` and callers
use, and :class:`MySQLDbIOManager`, Dagster's DbIOManager with lab_assets' default database."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dagster import ConfigurableIOManagerFactory, InputContext, OutputContext
from dagster._core.storage.db_io_manager import DbIOManager, TableSlice
from pydantic import Field

from lab_assets.io_manager.client import MySQLDbClient
from lab_assets.io_manager.dataframes import DataFrameTypeHandler
from lab_assets.io_manager.table_writes import (
    KeyedRowsReplacementHandler,
    PartitionRowsHandler,
    SqlRelationTypeHandler,
    TableBuildHandler,
)
from lab_assets.mysql.resource import MySQLResource


class MySQLDbIOManager(DbIOManager):
    """DbIOManager that says where an asset with no schema of its own (no key prefix, no
    ``schema`` metadata) is written (``schema``), so lab_assets' writing steps can check it is
    the output database their refresh works in."""

    def __init__(self, *, schema: str | None, default_schema: str, **kwargs: Any) -> None:
        """``schema``: the IO manager's ``schema`` setting, if any; ``default_schema``: where an asset
        with no schema of its own is written."""
        super().__init__(schema=schema, **kwargs)
        self.default_schema = default_schema
        self.schema = schema or default_schema

    def _get_table_slice(self, context: OutputContext | InputContext, output_context: OutputContext) -> TableSlice:
        """DbIOManager's naming (output metadata ``schema``, else the ``schema`` setting, else the
        asset key's prefix), except that an output with none of the three goes to
        ``default_schema`` instead of DbIOManager's "public"."""
        table_slice = super()._get_table_slice(context, output_context)
        own_schema = (
            (output_context.definition_metadata or {}).get("schema")
            or self._schema
            or (context.has_asset_key and len(context.asset_key.path) > 1)
        )
        return table_slice if own_schema else table_slice._replace(schema=self.default_schema)


class MySQLIOManager(ConfigurableIOManagerFactory):
    """Stores assets as tables in MySQL/MariaDB: DataFrames for small tables, SqlRelations for
    tables built inside the database. Shares its connection settings with ``MySQLResource``.

    The table is named after the asset (an op's output: after the output) and lives in the
    database (MySQL's schema) named, as in dagster-duckdb, dagster-snowflake and dagster-gcp, by
    the output's ``schema`` metadata, else this IO manager's ``schema`` setting, else the asset
    key's prefix (``["a", "t"]``: ``a.t``), else the resource's output database
    (``LAB_OUTPUT_DATABASE``), else the URL's database; a database that does not exist is
    created. lab_assets' own assets have no prefix, so they live in the output database."""

    mysql: MySQLResource
    # `schema` as in dagster-snowflake / dagster-duckdb (pydantic's BaseModel.schema is taken).
    schema_: str | None = Field(
        default=None,
        alias="schema",
        description="Database for every asset that does not name one in its metadata (before its key"
        " prefix); default: the key prefix, else the resource's output database (LAB_OUTPUT_DATABASE,"
        ' else the URL\'s database). An asset can name another with metadata={"schema": ...}.',
    )

    def create_io_manager(self, context) -> MySQLDbIOManager:
        """The IO manager with one type handler per output kind; creating it does not connect."""
        # Not `mysql.tables`: that reads the server; creating the IO manager must not connect.
        return MySQLDbIOManager(
            type_handlers=[
                TableBuildHandler(),
                KeyedRowsReplacementHandler(),
                PartitionRowsHandler(),
                SqlRelationTypeHandler(),
                DataFrameTypeHandler(),
            ],
            db_client=MySQLDbClient(self.mysql),
            database=self.mysql.database,
            schema=self.schema_,
            default_schema=self.mysql.output_database or self.mysql.database,
            io_manager_name="MySQLIOManager",
            default_load_type=pd.DataFrame,
        )
