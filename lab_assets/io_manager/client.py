"""Dagster's ``TableSlice`` read as MySQL: :class:`MySQLDbClient` (DbIOManager's connection and
schema hooks), the slice's partition condition and SELECT, schema evolution, and the table
metadata every type handler reports.

DbIOManager deletes the slice before the type handler writes; MySQL commits implicitly around DDL,
so that delete could not share a transaction with the write. As in dagster-deltalake,
``delete_table_slice`` is therefore a no-op and each handler replaces the slice itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dagster import InputContext, OutputContext, TableColumn, TableSchema
from dagster._core.definitions.metadata.metadata_set import TableMetadataSet
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import DbClient, TableSlice
from sqlalchemy.engine import Connection

from lab_assets.io_manager.sql import (
    PartitionFilter,
    add_columns_statement,
    create_schema_statement,
    partition_condition,
    slice_select,
)
from lab_assets.mysql.catalog import column_names
from lab_assets.mysql.resource import MySQLResource
from lab_assets.sql.statements import Column


def partition_filters(table_slice: TableSlice) -> list[PartitionFilter]:
    """The slice's partition dimensions as :mod:`lab_assets.io_manager.sql` takes them."""
    filters: list[PartitionFilter] = []
    for dimension in table_slice.partition_dimensions or ():
        if isinstance(dimension.partitions, TimeWindow):
            window = (dimension.partitions.start, dimension.partitions.end)
            filters.append(PartitionFilter(dimension.partition_expr, window=window))
        else:
            filters.append(PartitionFilter(dimension.partition_expr, keys=tuple(dimension.partitions)))
    return filters


def slice_partition_condition(table_slice: TableSlice) -> tuple[str, tuple[Any, ...]]:
    """WHERE condition (with bound parameters) selecting the slice's partitions; '' for all rows."""
    return partition_condition(partition_filters(table_slice))


def select_slice(table_slice: TableSlice) -> tuple[str, tuple[Any, ...]]:
    """SELECT of the slice's columns and partitions, with its bound parameters."""
    return slice_select(table_slice.schema, table_slice.table, table_slice.columns, partition_filters(table_slice))


def add_missing_columns(connection: Connection, schema: str, table: str, wanted: Sequence[Column]) -> list[str]:
    """Schema evolution: ``ALTER TABLE ... ADD COLUMN`` for each wanted column the table lacks.
    MySQL column names are case-insensitive, so they are compared that way."""
    present = {name.lower() for name in column_names(connection, schema, table)}
    missing = [column for column in wanted if column.name.lower() not in present]
    if missing:
        connection.exec_driver_sql(add_columns_statement(schema, table, missing))
    return [column.name for column in missing]


def table_metadata(table_slice: TableSlice, row_count: int, columns: Sequence[Column]) -> dict[str, Any]:
    """Dagster's table metadata; ``row_count`` is the partition's (``dagster/partition_row_count``,
    as dagster-gcp reports it) when a partition was written, else the table's."""
    schema = TableSchema(
        columns=[TableColumn(name=c.name, type=c.sql_type, description=c.description) for c in columns]
    )
    if table_slice.partition_dimensions:
        return dict(TableMetadataSet(partition_row_count=row_count, column_schema=schema))
    return dict(TableMetadataSet(row_count=row_count, column_schema=schema))


class MySQLDbClient(DbClient[Connection]):
    """DbIOManager's hooks on MySQL: connections from the resource, a database per schema, and the
    slice's SELECT and name for the metadata."""

    def __init__(self, mysql: MySQLResource):
        """Every connection comes from ``mysql``, with its URL and session settings."""
        self._mysql = mysql

    @staticmethod
    def delete_table_slice(context: OutputContext, table_slice: TableSlice, connection: Connection) -> None:
        """No-op: the type handlers replace the slice in the same transaction as the write."""

    @staticmethod
    def ensure_schema_exists(context: OutputContext, table_slice: TableSlice, connection: Connection) -> None:
        """The slice's database, created if it does not exist, before DbIOManager writes to it."""
        connection.exec_driver_sql(create_schema_statement(table_slice.schema))

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        """The slice's SELECT as the ``Query`` metadata shows it; bound values are listed in a comment,
        never put into the SQL."""
        sql, params = select_slice(table_slice)
        return sql if not params else f"{sql} -- parameters: {list(map(str, params))}"

    @staticmethod
    def get_table_name(table_slice: TableSlice) -> str:
        """``database.table`` of the slice, for the ``dagster/table_name`` metadata."""
        return f"{table_slice.schema}.{table_slice.table}"

    @contextmanager
    def connect(  # pyright: ignore[reportIncompatibleMethodOverride] - static in DbClient, but DbIOManager calls it on this instance, which holds the resource
        self, context: OutputContext | InputContext, table_slice: TableSlice
    ) -> Iterator[Connection]:
        """A connection from the resource's pool, so the IO manager's statements get the session settings
        of every other statement."""
        with self._mysql.connect() as connection:
            yield connection
