"""MySQL IO manager, built on Dagster's database IO-manager framework (DbIOManager, DbClient,
DbTypeHandler, TableSlice) like dagster-duckdb and dagster-clickhouse: schema = MySQL database,
backtick-quoted identifiers, values as bound parameters.

Two kinds of output:

* ``pandas.DataFrame``: for small tables (the measurement-type catalog). The table is created
  even for an empty frame, columns the frame has and the table lacks are added with
  ``ALTER TABLE ... ADD COLUMN`` (schema evolution, open upstream as dagster issue 13098), and the
  slice (whole table or one partition) is replaced in one transaction.
* :class:`SqlRelation`: a SELECT that MySQL runs itself, so no row passes through Python. A whole
  table is built into ``<table>__new`` and swapped in with one atomic ``RENAME TABLE``: readers see
  the old complete table or the new complete one, never a half-built, empty or missing one. A
  partition is replaced with delete-then-insert in one transaction. Loading such an asset gives
  the downstream asset a relation to compose into its own SQL, not rows.

DbIOManager deletes the slice before the type handler writes; MySQL commits implicitly around DDL,
so that delete could not share a transaction with the write. As in dagster-deltalake,
``delete_table_slice`` is therefore a no-op and each handler replaces the slice itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    OutputContext,
    TableColumn,
    TableSchema,
)
from dagster._core.definitions.metadata.metadata_set import TableMetadataSet
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import DbClient, DbIOManager, DbTypeHandler, TableSlice
from sqlalchemy.engine import Connection

from lab_assets.defs.resources import MySQLResource, transaction
from lab_assets.lib.bulk import BulkBuild, chunk_select, key_ranges, missing_rows_insert, unchunked_select
from lab_assets.lib.lineage import recursion_limit_statement
from lab_assets.lib.naming import staging_table_name
from lab_assets.lib.progress import InfoLogger, logged_step
from lab_assets.lib.sql import (
    Column,
    TableDefinition,
    add_indexes_statement,
    insert_select_statement,
    insert_values_statement,
    qualified_name,
    quote_identifier,
    upsert_select_statement,
)


@dataclass(frozen=True)
class SqlRelation:
    """A table's rows as a SELECT that MySQL evaluates (with ``%s`` bound parameters).

    As an asset's output it needs ``definition`` (the columns and keys of the table to build).
    ``recursion_limit``, when set, raises the server's recursive-CTE limit for the build.
    ``bulk``, when set, is an equivalent faster plan for whole-table builds (lab_assets.lib.bulk);
    ``select_sql`` stays the complete definition used everywhere else.
    """

    select_sql: str
    params: tuple[Any, ...] = ()
    definition: TableDefinition | None = None
    recursion_limit: int | None = None
    # Incremental write: replace only the rows whose primary key is listed in this table (same
    # schema, one column named like the key), delete-then-insert in one transaction. The SELECT
    # must produce exactly the listed keys that still exist.
    only_keys_in: str | None = None
    # A work table (same schema) emptied in the same transaction as the write: the keys this
    # build has consumed.
    consume_keys_in: str | None = None
    # Statements run after the write, to keep a summary of the table in step with it: in the
    # write's transaction for an incremental write (only_keys_in), after the swap for a whole table.
    after_write: tuple[str, ...] = ()
    # Work tables (same schema) the asset made for this build, dropped once the write is done.
    drop_after_write: tuple[str, ...] = ()
    # For an incremental write: a query giving the table's exact row count afterwards that is
    # cheaper than COUNT(*) over it (a sum over a summary table kept in the write's transaction).
    row_count_select: str | None = None
    # Optional faster plan for whole-table builds (lab_assets.lib.bulk); select_sql stays the
    # complete definition used everywhere else.
    bulk: BulkBuild | None = field(default=None, compare=False)
    # Set when the relation is a plain reference to a whole stored table.
    table_reference: tuple[str, str] | None = field(default=None, compare=False)

    @classmethod
    def of_table(cls, schema: str, table: str) -> "SqlRelation":
        return cls(select_sql=f"SELECT * FROM {qualified_name(schema, table)}", table_reference=(schema, table))

    def as_from_item(self) -> str:
        """The relation as an item of a FROM clause (alias it after this)."""
        if self.table_reference is not None:
            return qualified_name(*self.table_reference)
        return f"(\n{self.select_sql}\n)"


def _partition_condition(table_slice: TableSlice) -> tuple[str, tuple[Any, ...]]:
    """WHERE condition (with bound parameters) selecting the slice's partitions; '' for all rows."""
    conditions: list[str] = []
    params: list[Any] = []
    for dimension in table_slice.partition_dimensions or ():
        expression = dimension.partition_expr
        if expression.isidentifier():
            expression = quote_identifier(expression)
        if isinstance(dimension.partitions, TimeWindow):
            conditions.append(f"{expression} >= %s AND {expression} < %s")
            params += [dimension.partitions.start.replace(tzinfo=None), dimension.partitions.end.replace(tzinfo=None)]
        else:
            keys = list(dimension.partitions)
            if not keys:
                conditions.append("1 = 0")
                continue
            conditions.append(f"{expression} IN ({', '.join(['%s'] * len(keys))})")
            params += keys
    return " AND ".join(f"({c})" for c in conditions), tuple(params)


def _select_slice(table_slice: TableSlice) -> tuple[str, tuple[Any, ...]]:
    columns = ", ".join(map(quote_identifier, table_slice.columns)) if table_slice.columns else "*"
    sql = f"SELECT {columns} FROM {qualified_name(table_slice.schema, table_slice.table)}"
    condition, params = _partition_condition(table_slice)
    return (f"{sql} WHERE {condition}" if condition else sql), params


def _table_exists(connection: Connection, schema: str, table: str) -> bool:
    return (
        connection.exec_driver_sql(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        ).first()
        is not None
    )


def existing_columns(connection: Connection, schema: str, table: str) -> list[str]:
    rows = connection.exec_driver_sql(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()
    return [row[0] for row in rows]


def add_missing_columns(
    connection: Connection, schema: str, table: str, wanted: Sequence[Column]
) -> list[str]:
    """Schema evolution: ``ALTER TABLE ... ADD COLUMN`` for each wanted column the table lacks.
    MySQL column names are case-insensitive, so they are compared that way."""
    present = {name.lower() for name in existing_columns(connection, schema, table)}
    missing = [column for column in wanted if column.name.lower() not in present]
    if missing:
        additions = ", ".join(f"ADD COLUMN {column.definition()}" for column in missing)
        connection.exec_driver_sql(f"ALTER TABLE {qualified_name(schema, table)} {additions}")
    return [column.name for column in missing]


def _table_metadata(table_slice: TableSlice, row_count: int, columns: Sequence[Column]) -> dict[str, Any]:
    schema = TableSchema(columns=[TableColumn(name=c.name, type=c.sql_type) for c in columns])
    return dict(TableMetadataSet(row_count=row_count, column_schema=schema))


class MySQLDbClient(DbClient[Connection]):
    def __init__(self, mysql: MySQLResource):
        self._mysql = mysql

    def delete_table_slice(self, context: OutputContext, table_slice: TableSlice, connection: Connection) -> None:
        """No-op: the type handlers replace the slice in the same transaction as the write."""

    def ensure_schema_exists(self, context: OutputContext, table_slice: TableSlice, connection: Connection) -> None:
        connection.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(table_slice.schema)}")

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        sql, params = _select_slice(table_slice)
        return sql if not params else f"{sql} -- parameters: {list(map(str, params))}"

    @staticmethod
    def get_table_name(table_slice: TableSlice) -> str:
        return f"{table_slice.schema}.{table_slice.table}"

    @contextmanager
    def connect(self, context: OutputContext | InputContext, table_slice: TableSlice) -> Iterator[Connection]:
        with self._mysql.connect() as connection:
            yield connection


class SqlRelationTypeHandler(DbTypeHandler[SqlRelation]):
    """Builds :class:`SqlRelation` outputs inside MySQL; loads inputs as relations."""

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [SqlRelation]

    def handle_output(
        self, context: OutputContext, table_slice: TableSlice, obj: SqlRelation, connection: Connection
    ) -> Mapping[str, Any]:
        if obj.definition is None:
            raise ValueError(
                f"{context.asset_key.to_user_string()}: a SqlRelation output needs a TableDefinition"
                " (its columns and keys) so the table can be created"
            )
        started = time.monotonic()
        if obj.recursion_limit is not None:
            connection.exec_driver_sql(recursion_limit_statement(connection.dialect.is_mariadb, obj.recursion_limit))
        schema, table = table_slice.schema, table_slice.table
        if table_slice.partition_dimensions:
            write = "partition replaced"
            row_count = self._replace_partition(connection, table_slice, obj, context.log)
        elif obj.only_keys_in:
            write = "rows replaced"
            row_count = self._replace_keyed_rows(connection, schema, table, obj, context.log)
        else:
            write = "table swapped in"
            row_count = self._build_and_swap(connection, schema, table, obj, context.log)
        for work_table in obj.drop_after_write:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {qualified_name(schema, work_table)}")
        seconds = time.monotonic() - started
        context.log.info(
            f"{schema}.{table}: {write}, {row_count} rows written, {len(obj.definition.columns)} columns, {seconds:.2f} s"
        )
        metadata = {"write": write, "rows_written": row_count, "build_seconds": round(seconds, 3)}
        if write == "rows replaced":
            count_sql = obj.row_count_select or f"SELECT COUNT(*) FROM {qualified_name(schema, table)}"
            (total,) = connection.exec_driver_sql(count_sql).one()
            return {**metadata, **_table_metadata(table_slice, int(total), obj.definition.columns)}
        return {**metadata, **_table_metadata(table_slice, row_count, obj.definition.columns)}

    @staticmethod
    def _build_and_swap(
        connection: Connection, schema: str, table: str, relation: SqlRelation, log: InfoLogger
    ) -> int:
        assert relation.definition is not None
        new_table, old_table = staging_table_name(table, "new"), staging_table_name(table, "old")
        # Leftovers of a run that was killed mid-build are dropped first.
        connection.exec_driver_sql(
            f"DROP TABLE IF EXISTS {qualified_name(schema, new_table)}, {qualified_name(schema, old_table)}"
        )
        # Secondary indexes are added after the load: one sorted index build each instead of
        # maintaining them row by row (bench/RESULTS.md).
        connection.exec_driver_sql(relation.definition.create_statement(schema, new_table, with_indexes=False))
        try:
            with logged_step(log, f"filling {schema}.{new_table}"):
                row_count = SqlRelationTypeHandler._load(connection, schema, new_table, relation)
                add_indexes = add_indexes_statement(schema, new_table, relation.definition)
                if add_indexes:
                    connection.exec_driver_sql(add_indexes)
            log.info(f"swapping {schema}.{new_table} in as {schema}.{table} ({row_count} rows)")
            if _table_exists(connection, schema, table):
                connection.exec_driver_sql(
                    f"RENAME TABLE {qualified_name(schema, table)} TO {qualified_name(schema, old_table)},"
                    f" {qualified_name(schema, new_table)} TO {qualified_name(schema, table)}"
                )
                connection.exec_driver_sql(f"DROP TABLE {qualified_name(schema, old_table)}")
            else:
                connection.exec_driver_sql(
                    f"RENAME TABLE {qualified_name(schema, new_table)} TO {qualified_name(schema, table)}"
                )
        except BaseException:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {qualified_name(schema, new_table)}")
            raise
        for statement in relation.after_write:
            connection.exec_driver_sql(statement)
        if relation.consume_keys_in:
            # After the swap, not atomic with it: a crash in between only rebuilds rows again.
            connection.exec_driver_sql(f"DELETE FROM {qualified_name(schema, relation.consume_keys_in)}")
        return row_count

    @staticmethod
    def _replace_keyed_rows(
        connection: Connection, schema: str, table: str, relation: SqlRelation, log: InfoLogger
    ) -> int:
        """Replace the rows whose keys are listed in ``relation.only_keys_in``.

        The new rows are built first into ``<table>__rows``; then, in one transaction, listed keys
        the build did not produce are deleted and the built rows are upserted. An upsert changes a
        row in place, and touches a secondary index only where that column's value changed:
        measured about twice as fast as deleting and re-inserting every listed row."""
        assert relation.definition is not None and relation.only_keys_in is not None
        definition = relation.definition
        (key,) = definition.primary_key
        key_column = quote_identifier(key)
        rows_table = staging_table_name(table, "rows")
        target, keys, rows = (qualified_name(schema, t) for t in (table, relation.only_keys_in, rows_table))
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {rows}")
        connection.exec_driver_sql(definition.create_statement(schema, rows_table, with_indexes=False))
        try:
            with logged_step(log, f"replacing changed rows of {schema}.{table}"):
                row_count = connection.exec_driver_sql(
                    insert_select_statement(schema, rows_table, definition.column_names, relation.select_sql),
                    relation.params,
                ).rowcount
                with transaction(connection):
                    # The keys that are gone are found first (a derived table of the few listed
                    # keys the build did not produce), so only their rows are read and locked in
                    # the target: joining the target to every listed key locked all of them.
                    # NO_MERGE keeps MySQL 8 from merging the derived table back into the join
                    # (MariaDB reads the hint as a comment and materializes it anyway).
                    connection.exec_driver_sql(
                        f"DELETE /*+ NO_MERGE(gone) */ target FROM {target} AS target JOIN ("
                        f"SELECT k.{key_column} FROM {keys} AS k LEFT JOIN {rows} AS fresh"
                        f" ON fresh.{key_column} = k.{key_column} WHERE fresh.{key_column} IS NULL"
                        f") AS gone ON gone.{key_column} = target.{key_column}"
                    )
                    connection.exec_driver_sql(upsert_select_statement(schema, table, definition, rows_table))
                    for statement in relation.after_write:
                        connection.exec_driver_sql(statement)
                    if relation.consume_keys_in:
                        connection.exec_driver_sql(f"DELETE FROM {qualified_name(schema, relation.consume_keys_in)}")
        finally:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {rows}")
        return row_count

    @staticmethod
    def _load(connection: Connection, schema: str, new_table: str, relation: SqlRelation) -> int:
        """Fill the empty staging table with the relation's rows; the row count."""
        assert relation.definition is not None
        columns = relation.definition.column_names
        bulk = relation.bulk
        if bulk is None:
            insert = insert_select_statement(schema, new_table, columns, relation.select_sql)
            return connection.exec_driver_sql(insert, relation.params).rowcount
        if bulk.chunk_key is None:
            selects = [unchunked_select(bulk.select_sql)]
        else:
            assert bulk.chunk_bounds_sql is not None
            low, high = connection.exec_driver_sql(bulk.chunk_bounds_sql).one()
            selects = [chunk_select(bulk.select_sql, bulk.chunk_key, lo, hi) for lo, hi in key_ranges(low, high, bulk.chunk_width)]
        # Each statement commits on its own (AUTOCOMMIT): the staging table is invisible to
        # readers until the RENAME, and a failed build drops it, so the swap stays atomic.
        inserts = [insert_select_statement(schema, new_table, columns, select) for select in selects]
        if bulk.parallel > 1 and len(inserts) > 1:
            row_count = SqlRelationTypeHandler._insert_in_parallel(connection, inserts, bulk.params, bulk.parallel)
        else:
            row_count = sum(connection.exec_driver_sql(insert, bulk.params).rowcount for insert in inserts)
        if bulk.missing_rows_sql is not None:
            fill = missing_rows_insert(schema, new_table, columns, relation.definition.primary_key, bulk.missing_rows_sql)
            row_count += connection.exec_driver_sql(fill).rowcount
        return row_count

    @staticmethod
    def _insert_in_parallel(connection: Connection, inserts: list[str], params: tuple[Any, ...], workers: int) -> int:
        """Run the chunk INSERTs on ``workers`` connections of the same engine (AUTOCOMMIT like
        ``connection``), each taking every workers-th chunk; the first error is raised after all
        workers stop."""

        def run(share: list[str]) -> int:
            with connection.engine.connect() as worker:
                return sum(worker.exec_driver_sql(insert, params).rowcount for insert in share)

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bulk-insert") as pool:
            futures = [pool.submit(run, inserts[i::workers]) for i in range(workers)]
        return sum(future.result() for future in futures)

    @staticmethod
    def _replace_partition(
        connection: Connection, table_slice: TableSlice, relation: SqlRelation, log: InfoLogger
    ) -> int:
        assert relation.definition is not None
        schema, table = table_slice.schema, table_slice.table
        if not _table_exists(connection, schema, table):
            connection.exec_driver_sql(relation.definition.create_statement(schema, table))
        add_missing_columns(connection, schema, table, relation.definition.columns)
        condition, condition_params = _partition_condition(table_slice)
        insert = insert_select_statement(schema, table, relation.definition.column_names, relation.select_sql)
        with transaction(connection), logged_step(log, f"replacing partition rows of {schema}.{table}"):
            connection.exec_driver_sql(f"DELETE FROM {qualified_name(schema, table)} WHERE {condition}", condition_params)
            return connection.exec_driver_sql(insert, relation.params).rowcount

    def load_input(self, context: InputContext, table_slice: TableSlice, connection: Connection) -> SqlRelation:
        if not table_slice.columns and not table_slice.partition_dimensions:
            return SqlRelation.of_table(table_slice.schema, table_slice.table)
        sql, params = _select_slice(table_slice)
        return SqlRelation(select_sql=sql, params=params)


def _sql_type_for(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(series):
        return "BIGINT"
    if pd.api.types.is_float_dtype(series):
        return "DOUBLE"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "DATETIME(6)"
    return "TEXT"


def _python_values(series: pd.Series) -> list[Any]:
    """Column values as plain Python objects (NaN/NaT/NA as None) for the driver."""
    return series.astype(object).where(series.notna(), None).tolist()


class DataFrameTypeHandler(DbTypeHandler[pd.DataFrame]):
    """Stores small pandas DataFrames; meant for catalogs, not for bulk data."""

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [pd.DataFrame]

    def handle_output(
        self, context: OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection: Connection
    ) -> Mapping[str, Any]:
        schema, table = table_slice.schema, table_slice.table
        columns = [Column(str(name), _sql_type_for(obj[name])) for name in obj.columns]
        if not _table_exists(connection, schema, table):
            connection.exec_driver_sql(TableDefinition(columns=tuple(columns)).create_statement(schema, table))
            added: list[str] = []
        else:
            added = add_missing_columns(connection, schema, table, columns)
            if added:
                context.log.info(f"added columns to {schema}.{table}: {', '.join(added)}")
        condition, condition_params = _partition_condition(table_slice)
        rows = list(zip(*(_python_values(obj[name]) for name in obj.columns)))
        with transaction(connection):
            delete = f"DELETE FROM {qualified_name(schema, table)}"
            connection.exec_driver_sql(f"{delete} WHERE {condition}" if condition else delete, condition_params)
            if rows:
                connection.exec_driver_sql(
                    insert_values_statement(schema, table, [c.name for c in columns]), rows
                )
        context.log.info(f"wrote {len(rows)} rows to {schema}.{table}")
        metadata = _table_metadata(table_slice, len(rows), columns)
        if added:
            metadata["columns_added"] = ", ".join(added)
        return metadata

    def load_input(self, context: InputContext, table_slice: TableSlice, connection: Connection) -> pd.DataFrame:
        sql, params = _select_slice(table_slice)
        result = connection.exec_driver_sql(sql, params)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


class MySQLIOManager(ConfigurableIOManagerFactory):
    """Stores assets as tables in MySQL/MariaDB: DataFrames for small tables, SqlRelations for
    tables built inside the database. Shares its connection settings with ``MySQLResource``."""

    mysql: MySQLResource

    def create_io_manager(self, context) -> DbIOManager:
        # lab_assets' own tables live next to the sources, in the URL's database; an asset can
        # still name another database with metadata={"schema": ...}.
        schema = self.mysql.database
        return DbIOManager(
            type_handlers=[SqlRelationTypeHandler(), DataFrameTypeHandler()],
            db_client=MySQLDbClient(self.mysql),
            database=schema,
            schema=schema,
            io_manager_name="MySQLIOManager",
            default_load_type=pd.DataFrame,
        )
