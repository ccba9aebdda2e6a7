"""The pandas DataFrame type handler, for small tables (catalogs), not bulk data: column types
from the frame's dtypes, values converted for the driver and read back as pandas expects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from dagster import InputContext, OutputContext
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice
from pymysql.constants import FIELD_TYPE
from sqlalchemy.engine import Connection, CursorResult

from lab_assets.io_manager.client import add_missing_columns, select_slice, slice_partition_condition, table_metadata
from lab_assets.io_manager.sql import delete_where_statement, drop_tables_statement
from lab_assets.io_manager.swap import swap_in
from lab_assets.mysql.catalog import column_names, table_exists
from lab_assets.mysql.sessions import transaction
from lab_assets.names import NEW_SUFFIX, helper_table
from lab_assets.sql.statements import Column, TableDefinition, insert_values_statement

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


def _column_descriptions(context: OutputContext) -> dict[str, str]:
    """Column descriptions from the output's definition metadata ``dagster/column_schema`` (a
    TableSchema, as the asset declares it), so the materialized schema keeps them."""
    schema = (context.definition_metadata or {}).get("dagster/column_schema")
    schema = getattr(schema, "value", schema)
    return {c.name: c.description for c in getattr(schema, "columns", ()) if c.description}


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
    Column types follow the dtypes (:func:`_sql_type_for`); descriptions come from the output's
    definition metadata ``dagster/column_schema``. Output metadata ``primary_key``
    (column names) gives the table a primary key, which servers with ``sql_require_primary_key``
    / ``innodb_force_primary_key`` require.

    Loading a table that does not exist yet, or no partition at all (the first partition of a
    self-dependent asset), gives an empty DataFrame, as dagster-duckdb and dagster-snowflake do."""

    @property
    def supported_types(self) -> Sequence[type[object]]:
        """Outputs and inputs typed ``pandas.DataFrame``."""
        return [pd.DataFrame]

    def handle_output(
        self, context: OutputContext, table_slice: TableSlice, obj: pd.DataFrame, connection: Connection
    ) -> Mapping[str, Any]:
        """The frame written: the whole table built aside and swapped in, or the partition's rows replaced
        in one transaction with the columns the frame adds; the table's metadata."""
        schema, table = table_slice.schema, table_slice.table
        key = tuple((context.definition_metadata or {}).get("primary_key") or ())
        unknown = [k for k in key if k not in obj.columns]
        if unknown:
            raise ValueError(
                f"{context.asset_key.to_user_string()}: primary_key names columns the frame lacks: {unknown}"
            )
        time_columns = _time_partition_columns(table_slice)
        described = _column_descriptions(context)
        columns = [
            Column(
                str(name),
                _sql_type_for(obj[name], key=name in key, time_partition=str(name).lower() in time_columns),
                described.get(str(name)),
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
                connection.exec_driver_sql(delete_where_statement(schema, table, condition), condition_params)
                if rows:
                    connection.exec_driver_sql(insert_values_statement(schema, table, definition.column_names), rows)
        else:
            added = [c.name for c in columns if present and c.name.lower() not in {p.lower() for p in present}]
            new_table = helper_table(table, NEW_SUFFIX)
            connection.exec_driver_sql(drop_tables_statement(schema, new_table))
            connection.exec_driver_sql(definition.create_statement(schema, new_table))
            try:
                if rows:
                    connection.exec_driver_sql(
                        insert_values_statement(schema, new_table, definition.column_names), rows
                    )
                swap_in(connection, schema, table)
            except BaseException:
                connection.exec_driver_sql(drop_tables_statement(schema, new_table))
                raise
        if added:
            context.log.info(f"added columns to {schema}.{table}: {', '.join(added)}")
        context.log.info(f"wrote {len(rows)} rows to {schema}.{table}")
        metadata = table_metadata(table_slice, len(rows), columns)
        if added:
            metadata["columns_added"] = ", ".join(added)
        return metadata

    def load_input(self, context: InputContext, table_slice: TableSlice, connection: Connection) -> pd.DataFrame:
        """The slice's rows as a DataFrame; no rows when the table does not exist yet or no partition is asked for."""
        if table_slice.partition_dimensions and not context.asset_partition_keys:
            return pd.DataFrame()
        if not table_exists(connection, table_slice.schema, table_slice.table):
            context.log.info(f"{table_slice.schema}.{table_slice.table} does not exist yet: loaded as no rows")
            return pd.DataFrame(columns=list(table_slice.columns or ()))
        sql, params = select_slice(table_slice)
        return _frame_from(connection.exec_driver_sql(sql, params))
