"""MySQL IO manager, built on Dagster's database IO-manager framework (DbIOManager, DbClient,
DbTypeHandler, TableSlice) like dagster-duckdb and dagster-clickhouse: schema = MySQL database,
backtick-quoted identifiers, values as bound parameters.

Outputs, each kind with one write path:

* ``pandas.DataFrame``: for small tables (the measurement-type catalog). The table is created
  even for an empty frame, columns the frame has and the table lacks are added with
  ``ALTER TABLE ... ADD COLUMN`` (schema evolution, open upstream as dagster issue 13098), and the
  slice (whole table or one partition) is replaced in one transaction.
* SQL that MySQL runs itself, so no row passes through Python (:class:`TableWrite`):
  :class:`TableBuild` (whole table, built aside and swapped in with one atomic ``RENAME TABLE``),
  :class:`KeyedRowsReplacement` (the rows of listed keys, in one transaction) and
  :class:`PartitionRows` (one partition, in one transaction).

Inputs typed :class:`SqlRelation` load as a relation to compose into the downstream asset's own
SQL, not rows; other inputs load as DataFrames.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    OutputContext,
)
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from pydantic import Field
from pymysql.constants import FIELD_TYPE
from sqlalchemy.engine import Connection, CursorResult

from lab_assets.io_manager.client import (
    MySQLDbClient,
    add_missing_columns,
    select_slice,
    slice_partition_condition,
    table_metadata,
)
from lab_assets.io_manager.kinds import KeyedRowsReplacement, PartitionRows, SqlRelation, TableBuild, TableWrite
from lab_assets.lib.bulk import chunk_select, key_ranges, missing_rows_insert, unchunked_select
from lab_assets.lib.lineage import recursion_limit_statement
from lab_assets.lib.names import NEW_SUFFIX, OLD_SUFFIX, ROWS_SUFFIX, helper_table
from lab_assets.lib.progress import logged_step
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
from lab_assets.mysql import MySQLResource, column_names, table_exists
from lab_assets.server_errors import explained
from lab_assets.sessions import is_mariadb, spare_connections, transaction

__all__ = [
    "DataFrameTypeHandler",
    "KeyedRowsReplacement",
    "KeyedRowsReplacementHandler",
    "MySQLDbClient",
    "MySQLDbIOManager",
    "MySQLIOManager",
    "PartitionRows",
    "PartitionRowsHandler",
    "SqlRelation",
    "SqlRelationTypeHandler",
    "SwapBlockedError",
    "TableBuild",
    "TableBuildHandler",
    "TableWrite",
    "add_missing_columns",
]


class _TableWriteHandler(DbTypeHandler[TableWrite]):
    """What every write kind shares: the recursion limit, the log line, the metadata and the work
    tables dropped afterwards. Subclasses implement :meth:`write`, their one write path."""

    kind: type[TableWrite]
    write_label: str

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [self.kind]

    def write(
        self, context: OutputContext, table_slice: TableSlice, obj: Any, connection: Connection
    ) -> tuple[int, int]:
        """Write ``obj``; (rows written, rows in the table afterwards)."""
        raise NotImplementedError

    def handle_output(
        self, context: OutputContext, table_slice: TableSlice, obj: TableWrite, connection: Connection
    ) -> Mapping[str, Any]:
        started = time.monotonic()
        limit = getattr(obj, "recursion_limit", None)
        if limit is not None:
            connection.exec_driver_sql(recursion_limit_statement(is_mariadb(connection), limit))
        try:
            rows_written, total = self.write(context, table_slice, obj, connection)
        except Exception as error:
            clearer = explained(error, connection)
            if clearer is error:
                raise
            raise clearer from error
        schema, table = table_slice.schema, table_slice.table
        for work_table in getattr(obj, "drop_after", ()):
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {qualified_name(schema, work_table)}")
        seconds = time.monotonic() - started
        columns = obj.definition.columns
        context.log.info(
            f"{schema}.{table}: {self.write_label}, {rows_written} rows written,"
            f" {len(columns)} columns, {seconds:.2f} s"
        )
        return {
            "write": self.write_label,
            "rows_written": rows_written,
            "build_seconds": round(seconds, 3),
            **table_metadata(table_slice, total, columns),
        }

    def load_input(self, context: InputContext, table_slice: TableSlice, connection: Connection) -> Any:
        raise TypeError(
            f"{context.asset_key.to_user_string()}: annotate the input as SqlRelation to read a table"
            f" written as {self.kind.__name__}"
        )


def _reject_partitions(context: OutputContext, table_slice: TableSlice, kind: type) -> None:
    if table_slice.partition_dimensions:
        raise TypeError(
            f"{context.asset_key.to_user_string()} is partitioned: return PartitionRows, not {kind.__name__}"
        )


class TableBuildHandler(_TableWriteHandler):
    """:class:`TableBuild`: built aside, swapped in with one ``RENAME TABLE``."""

    kind = TableBuild
    write_label = "table swapped in"

    def write(
        self, context: OutputContext, table_slice: TableSlice, obj: TableBuild, connection: Connection
    ) -> tuple[int, int]:
        _reject_partitions(context, table_slice, TableBuild)
        schema, table = table_slice.schema, table_slice.table
        new_table, old_table = helper_table(table, NEW_SUFFIX), helper_table(table, OLD_SUFFIX)
        log = context.log
        # Leftovers of a run that was killed mid-build are dropped first.
        connection.exec_driver_sql(
            f"DROP TABLE IF EXISTS {qualified_name(schema, new_table)}, {qualified_name(schema, old_table)}"
        )
        # Secondary indexes are added after the load: one sorted index build each instead of
        # maintaining them row by row (bench/RESULTS.md).
        connection.exec_driver_sql(obj.definition.create_statement(schema, new_table, with_indexes=False))
        try:
            with logged_step(log, f"filling {schema}.{new_table}"):
                row_count = _load(connection, schema, new_table, obj)
                add_indexes = add_indexes_statement(schema, new_table, obj.definition)
                if add_indexes:
                    connection.exec_driver_sql(add_indexes)
            log.info(f"swapping {schema}.{new_table} in as {schema}.{table} ({row_count} rows)")
            _swap_in(connection, schema, table)
        except BaseException:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {qualified_name(schema, new_table)}")
            raise
        for statement in obj.after_swap:
            connection.exec_driver_sql(statement)
        return row_count, row_count


# RENAME TABLE needs the table's metadata lock, which a reader's open transaction holds until it
# ends; while the rename waits, every new query on the table queues behind it. So each attempt
# waits at most SWAP_LOCK_WAIT_SECONDS (new readers stall at most that long), and after
# SWAP_ATTEMPTS the build fails, naming the cause, and keeps the old table. Chosen, not measured:
# a few seconds of stall for readers, half a minute for a reader's transaction to end.
SWAP_LOCK_WAIT_SECONDS = 5
SWAP_ATTEMPTS = 6
_LOCK_WAIT_TIMEOUT = 1205


class SwapBlockedError(RuntimeError):
    """The new table could not be swapped in: other sessions' open transactions held the table."""


def _swap_in(connection: Connection, schema: str, table: str) -> None:
    """``<table>__new`` becomes ``table`` in one ``RENAME TABLE`` (atomic for readers: they see
    the old table or the new one, never none); the old one is dropped afterwards. Raises
    :class:`SwapBlockedError` when open transactions keep the table's metadata lock through
    every attempt (:data:`SWAP_ATTEMPTS` of :data:`SWAP_LOCK_WAIT_SECONDS`)."""
    new_table, old_table = helper_table(table, NEW_SUFFIX), helper_table(table, OLD_SUFFIX)
    replacing = table_exists(connection, schema, table)
    if replacing:
        rename = (
            f"RENAME TABLE {qualified_name(schema, table)} TO {qualified_name(schema, old_table)},"
            f" {qualified_name(schema, new_table)} TO {qualified_name(schema, table)}"
        )
    else:
        rename = f"RENAME TABLE {qualified_name(schema, new_table)} TO {qualified_name(schema, table)}"
    (previous,) = connection.exec_driver_sql("SELECT @@session.lock_wait_timeout").one()
    connection.exec_driver_sql(f"SET SESSION lock_wait_timeout = {int(SWAP_LOCK_WAIT_SECONDS)}")
    try:
        for attempt in range(1, SWAP_ATTEMPTS + 1):
            try:
                connection.exec_driver_sql(rename)
                break
            except Exception as error:
                if getattr(getattr(error, "orig", None), "args", (None,))[0] != _LOCK_WAIT_TIMEOUT:
                    raise
                if attempt == SWAP_ATTEMPTS:
                    raise SwapBlockedError(
                        f"{schema}.{table} was not replaced: for {SWAP_ATTEMPTS} x {SWAP_LOCK_WAIT_SECONDS} s,"
                        f" other sessions' open transactions held it (a reader that started a transaction"
                        f" and did not end it; SHOW PROCESSLIST shows them). The old table is unchanged;"
                        f" the next run builds it again."
                    ) from error
    finally:
        connection.exec_driver_sql(f"SET SESSION lock_wait_timeout = {int(previous)}")
    if replacing:
        connection.exec_driver_sql(f"DROP TABLE {qualified_name(schema, old_table)}")


def _load(connection: Connection, schema: str, new_table: str, build: TableBuild) -> int:
    """Fill the empty staging table with the build's rows; the row count."""
    columns = build.definition.column_names
    plan = build.faster_plan
    if plan is None:
        insert = insert_select_statement(schema, new_table, columns, build.select_sql)
        return connection.exec_driver_sql(insert, build.params).rowcount
    if plan.chunk_key is None:
        selects = [unchunked_select(plan.select_sql)]
    else:
        assert plan.chunk_bounds_sql is not None
        low, high = connection.exec_driver_sql(plan.chunk_bounds_sql).one()
        selects = [
            chunk_select(plan.select_sql, plan.chunk_key, lo, hi) for lo, hi in key_ranges(low, high, plan.chunk_width)
        ]
    # Each statement commits on its own (AUTOCOMMIT): the staging table is invisible to
    # readers until the RENAME, and a failed build drops it, so the swap stays atomic.
    inserts = [insert_select_statement(schema, new_table, columns, select) for select in selects]
    # Side by side only on connections the account's and the server's limits leave now; else on
    # this one, chunk after chunk (slower, the same rows).
    workers = min(plan.parallel, len(inserts), spare_connections(connection)) if plan.parallel > 1 else 1
    if workers > 1:
        row_count = _insert_in_parallel(connection, inserts, plan.params, workers)
    else:
        row_count = sum(connection.exec_driver_sql(insert, plan.params).rowcount for insert in inserts)
    if plan.missing_rows_sql is not None:
        fill = missing_rows_insert(schema, new_table, columns, build.definition.primary_key, plan.missing_rows_sql)
        row_count += connection.exec_driver_sql(fill).rowcount
    return row_count


def _insert_in_parallel(connection: Connection, inserts: list[str], params: tuple[Any, ...], workers: int) -> int:
    """Run the chunk INSERTs on ``workers`` connections of the same engine (so with the same
    session settings as ``connection``, which the engine gives every connection it opens), each
    taking every workers-th chunk; the first error is raised after all workers stop."""

    def run(share: list[str]) -> int:
        with connection.engine.connect() as worker:
            return sum(worker.exec_driver_sql(insert, params).rowcount for insert in share)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bulk-insert") as pool:
        futures = [pool.submit(run, inserts[i::workers]) for i in range(workers)]
    return sum(future.result() for future in futures)


class KeyedRowsReplacementHandler(_TableWriteHandler):
    """:class:`KeyedRowsReplacement`: listed keys' rows replaced in one transaction."""

    kind = KeyedRowsReplacement
    write_label = "rows replaced"

    def write(
        self, context: OutputContext, table_slice: TableSlice, obj: KeyedRowsReplacement, connection: Connection
    ) -> tuple[int, int]:
        """The new rows are built first into ``<table>__rows``; then, in one transaction, listed keys
        the build did not produce are deleted and the built rows are upserted. An upsert changes a
        row in place, and touches a secondary index only where that column's value changed:
        measured faster than deleting and re-inserting every listed row (bench/RESULTS.md)."""
        _reject_partitions(context, table_slice, KeyedRowsReplacement)
        schema, table = table_slice.schema, table_slice.table
        definition = obj.definition
        (key,) = definition.primary_key
        key_column = quote_identifier(key)
        rows_table = helper_table(table, ROWS_SUFFIX)
        target, keys, rows = (qualified_name(schema, t) for t in (table, obj.keys_table, rows_table))
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {rows}")
        connection.exec_driver_sql(definition.create_statement(schema, rows_table, with_indexes=False))
        try:
            with logged_step(context.log, f"replacing changed rows of {schema}.{table}"):
                row_count = connection.exec_driver_sql(
                    insert_select_statement(schema, rows_table, definition.column_names, obj.select_sql),
                    obj.params,
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
                    for statement in obj.in_transaction:
                        connection.exec_driver_sql(statement)
        finally:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {rows}")
        (total,) = connection.exec_driver_sql(obj.row_count_select or f"SELECT COUNT(*) FROM {target}").one()
        return row_count, int(total)


class PartitionRowsHandler(_TableWriteHandler):
    """:class:`PartitionRows`: the partition's rows replaced in one transaction."""

    kind = PartitionRows
    write_label = "partition replaced"

    def write(
        self, context: OutputContext, table_slice: TableSlice, obj: PartitionRows, connection: Connection
    ) -> tuple[int, int]:
        if not table_slice.partition_dimensions:
            raise TypeError(
                f"{context.asset_key.to_user_string()} is not partitioned: return TableBuild, not PartitionRows"
            )
        schema, table = table_slice.schema, table_slice.table
        if not table_exists(connection, schema, table):
            connection.exec_driver_sql(obj.definition.create_statement(schema, table))
        add_missing_columns(connection, schema, table, obj.definition.columns)
        condition, condition_params = slice_partition_condition(table_slice)
        insert = insert_select_statement(schema, table, obj.definition.column_names, obj.select_sql)
        with transaction(connection), logged_step(context.log, f"replacing partition rows of {schema}.{table}"):
            connection.exec_driver_sql(
                f"DELETE FROM {qualified_name(schema, table)} WHERE {condition}", condition_params
            )
            row_count = connection.exec_driver_sql(insert, obj.params).rowcount
        return row_count, row_count


class SqlRelationTypeHandler(DbTypeHandler[SqlRelation]):
    """Loads inputs typed :class:`SqlRelation`: the whole table by reference, or a SELECT of the
    requested columns and partitions."""

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [SqlRelation]

    def handle_output(
        self, context: OutputContext, table_slice: TableSlice, obj: SqlRelation, connection: Connection
    ) -> Mapping[str, Any]:
        raise TypeError(
            f"{context.asset_key.to_user_string()} returned a SqlRelation, which only says what to read:"
            " return TableBuild (whole table), KeyedRowsReplacement (listed keys) or PartitionRows"
            " (partitioned asset) with the table's TableDefinition"
        )

    def load_input(self, context: InputContext, table_slice: TableSlice, connection: Connection) -> SqlRelation:
        if not table_slice.columns and not table_slice.partition_dimensions:
            return SqlRelation.of_table(table_slice.schema, table_slice.table)
        sql, params = select_slice(table_slice)
        return SqlRelation(select_sql=sql, params=params)


# Column types of a DataFrame's columns, from pandas' own reading of the values
# (pandas.api.types.infer_dtype, as pandas.DataFrame.to_sql uses): what each kind is stored as.
_SQL_TYPES = {
    "boolean": "BOOLEAN",  # TINYINT(1); read back as bool (_frame_from)
    "integer": "BIGINT",
    "floating": "DOUBLE",
    "mixed-integer-float": "DOUBLE",
    "date": "DATE",
    "datetime": "DATETIME(6)",  # tz-aware values stored in UTC (_python_values)
    "datetime64": "DATETIME(6)",
}
_TIME_TYPES = ("DATE", "DATETIME(6)")


def _sql_type_for(series: pd.Series, key: bool = False, time_partition: bool = False) -> str:
    """The column type for a frame's column: BOOLEAN, BIGINT, DOUBLE, DATE, DATETIME(6) or TEXT
    (strings, and columns with no values or mixed ones), from the dtype or, for object columns,
    the values (``pandas.api.types.infer_dtype``). A time-window partition column is DATE or
    DATETIME(6) whatever it holds (text like ``2022-01-01`` is converted by the server), so the
    window's bounds compare as times. A primary-key column is NOT NULL and its text is
    VARCHAR(255) (InnoDB cannot key a TEXT column whole)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        sql_type = "BOOLEAN"
    elif pd.api.types.is_datetime64_any_dtype(series.dtype):
        sql_type = "DATETIME(6)"
    else:
        sql_type = _SQL_TYPES.get(pd.api.types.infer_dtype(series, skipna=True), "TEXT")
    if time_partition and sql_type not in _TIME_TYPES:
        sql_type = "DATETIME(6)"
    if key:
        return ("VARCHAR(255)" if sql_type == "TEXT" else sql_type) + " NOT NULL"
    return sql_type


def _python_values(series: pd.Series) -> list[Any]:
    """Column values as plain Python objects for the driver: NaN/None/NaT/NA as None, tz-aware
    times converted to UTC and stored without their zone (DATETIME has none)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    elif series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) == "datetime":
        if any(getattr(value, "tzinfo", None) is not None for value in series):
            series = pd.to_datetime(series, utc=True).dt.tz_localize(None)
    return series.astype(object).where(series.notna(), None).tolist()


def _time_partition_columns(table_slice: TableSlice) -> set[str]:
    """Frame columns (lower-cased) that a time-window dimension's ``partition_expr`` names."""
    return {
        dimension.partition_expr.lower()
        for dimension in table_slice.partition_dimensions or ()
        if isinstance(dimension.partitions, TimeWindow) and dimension.partition_expr.isidentifier()
    }


def _frame_from(result: CursorResult[Any]) -> pd.DataFrame:
    """The rows as a DataFrame: DATETIME as datetime64 (naive, UTC for values written tz-aware),
    DATE as ``datetime.date``, BOOLEAN (TINYINT(1)) as bool (nullable ``boolean`` when it holds
    NULL), NULL as NaN/NaT/None as pandas reads them."""
    description = result.cursor.description if result.cursor is not None else None
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    # PyMySQL's description: (name, type_code, display_size, internal_size, ...); TINYINT(1),
    # which BOOLEAN is, has internal_size 1.
    for position, (_, type_code, _, size, *_) in enumerate(description or ()):
        column = frame.iloc[:, position]
        if type_code == FIELD_TYPE.TINY and size == 1:
            frame.isetitem(position, column.astype("boolean" if column.isna().any() else bool))
        elif type_code in (FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP):
            frame.isetitem(position, pd.to_datetime(column))
    return frame


class DataFrameTypeHandler(DbTypeHandler[pd.DataFrame]):
    """Stores small pandas DataFrames; meant for catalogs, not for bulk data.

    A whole table is built aside and swapped in (readers never see it half-written; its columns
    follow the frame, so a table created from another frame's types is replaced, not appended
    to); a partition's rows are replaced in one transaction, columns the frame adds are added.
    Column types follow the dtypes (:func:`_sql_type_for`). Output metadata ``primary_key``
    (column names) gives the table a primary key, which servers with ``sql_require_primary_key``
    / ``innodb_force_primary_key`` require.

    Loading a table that does not exist yet, or no partition at all (the first partition of a
    self-dependent asset), gives an empty DataFrame, as dagster-duckdb and dagster-snowflake do."""

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [pd.DataFrame]

    def handle_output(
        self, context: OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection: Connection
    ) -> Mapping[str, Any]:
        schema, table = table_slice.schema, table_slice.table
        key = tuple((context.definition_metadata or {}).get("primary_key") or ())
        unknown = [k for k in key if k not in obj.columns]
        if unknown:
            raise ValueError(
                f"{context.asset_key.to_user_string()}: primary_key names columns the frame lacks: {unknown}"
            )
        time_columns = _time_partition_columns(table_slice)
        columns = [
            Column(
                str(name), _sql_type_for(obj[name], key=name in key, time_partition=str(name).lower() in time_columns)
            )
            for name in obj.columns
        ]
        definition = TableDefinition(columns=tuple(columns), primary_key=key)
        rows = list(zip(*(_python_values(obj[name]) for name in obj.columns), strict=True))
        present = column_names(connection, schema, table)
        if table_slice.partition_dimensions:
            if not present:
                connection.exec_driver_sql(definition.create_statement(schema, table))
            added = add_missing_columns(connection, schema, table, columns)
            condition, condition_params = slice_partition_condition(table_slice)
            with transaction(connection):
                connection.exec_driver_sql(
                    f"DELETE FROM {qualified_name(schema, table)} WHERE {condition}", condition_params
                )
                if rows:
                    connection.exec_driver_sql(insert_values_statement(schema, table, definition.column_names), rows)
        else:
            added = [c.name for c in columns if present and c.name.lower() not in {p.lower() for p in present}]
            new_table = helper_table(table, NEW_SUFFIX)
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {qualified_name(schema, new_table)}")
            connection.exec_driver_sql(definition.create_statement(schema, new_table))
            try:
                if rows:
                    connection.exec_driver_sql(
                        insert_values_statement(schema, new_table, definition.column_names), rows
                    )
                _swap_in(connection, schema, table)
            except BaseException:
                connection.exec_driver_sql(f"DROP TABLE IF EXISTS {qualified_name(schema, new_table)}")
                raise
        if added:
            context.log.info(f"added columns to {schema}.{table}: {', '.join(added)}")
        context.log.info(f"wrote {len(rows)} rows to {schema}.{table}")
        metadata = table_metadata(table_slice, len(rows), columns)
        if added:
            metadata["columns_added"] = ", ".join(added)
        return metadata

    def load_input(self, context: InputContext, table_slice: TableSlice, connection: Connection) -> pd.DataFrame:
        if table_slice.partition_dimensions and not context.asset_partition_keys:
            return pd.DataFrame()
        if not table_exists(connection, table_slice.schema, table_slice.table):
            context.log.info(f"{table_slice.schema}.{table_slice.table} does not exist yet: loaded as no rows")
            return pd.DataFrame(columns=list(table_slice.columns or ()))
        sql, params = select_slice(table_slice)
        return _frame_from(connection.exec_driver_sql(sql, params))


class MySQLDbIOManager(DbIOManager):
    """DbIOManager that says where an asset with no schema of its own (no key prefix, no
    ``schema`` metadata) is written (``schema``), so lab_assets' writing steps can check it is
    the output database their refresh works in."""

    def __init__(self, *, schema: str | None, default_schema: str, **kwargs: Any) -> None:
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
