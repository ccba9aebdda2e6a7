"""The SQL text the IO manager runs, built from names and values only: no Dagster, no connection,
so every statement here is tested without a server (``lab_assets_tests/test_io_manager_sql.py``).

Identifiers are backtick-quoted and values travel as bound parameters (``%s``), as everywhere in
lab_assets (:mod:`lab_assets.sql.statements`). The IO manager's modules turn Dagster's ``TableSlice``
into the :class:`PartitionFilter` values these functions take.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lab_assets.sql.statements import Column, qualified_name, quote_identifier


@dataclass(frozen=True)
class PartitionFilter:
    """One partition dimension of a slice: the SQL expression that holds the partition (a column
    name or any expression) and either a time window ``[start, end)`` or the partition keys."""

    expression: str
    window: tuple[datetime, datetime] | None = None
    keys: tuple[Any, ...] = ()


def partition_expression(expression: str) -> str:
    """A column name is quoted; any other SQL has its ``%`` doubled: every statement goes through
    PyMySQL's %-formatting (:func:`~lab_assets.sql.statements.quote_identifier`), so a ``%`` of the
    expression (``STR_TO_DATE(key, '%Y-%m-%d')``) reaches the server as written."""
    return quote_identifier(expression) if expression.isidentifier() else expression.replace("%", "%%")


def partition_condition(filters: Sequence[PartitionFilter]) -> tuple[str, tuple[Any, ...]]:
    """WHERE condition (with bound parameters) selecting the slice's partitions; '' for all rows.
    A time window's bounds are compared without their zone (DATETIME has none); a dimension
    with no keys matches nothing."""
    conditions: list[str] = []
    params: list[Any] = []
    for dimension in filters:
        expression = partition_expression(dimension.expression)
        if dimension.window is not None:
            start, end = dimension.window
            conditions.append(f"{expression} >= %s AND {expression} < %s")
            params += [start.replace(tzinfo=None), end.replace(tzinfo=None)]
        else:
            keys = list(dimension.keys)
            if not keys:
                conditions.append("1 = 0")
                continue
            conditions.append(f"{expression} IN ({', '.join(['%s'] * len(keys))})")
            params += keys
    return " AND ".join(f"({c})" for c in conditions), tuple(params)


def slice_select(
    schema: str, table: str, columns: Sequence[str] | None, filters: Sequence[PartitionFilter]
) -> tuple[str, tuple[Any, ...]]:
    """SELECT of the requested columns (all when none are named) of the slice's partitions."""
    column_list = ", ".join(map(quote_identifier, columns)) if columns else "*"
    sql = f"SELECT {column_list} FROM {qualified_name(schema, table)}"
    condition, params = partition_condition(filters)
    return (f"{sql} WHERE {condition}" if condition else sql), params


def delete_where_statement(schema: str, table: str, condition: str) -> str:
    """DELETE of the rows a :func:`partition_condition` selects (its parameters bound with it)."""
    return f"DELETE FROM {qualified_name(schema, table)} WHERE {condition}"


def create_schema_statement(schema: str) -> str:
    """The database (MySQL's schema) ``schema``, created unless it exists."""
    return f"CREATE DATABASE IF NOT EXISTS {quote_identifier(schema)}"


def drop_tables_statement(schema: str, *tables: str) -> str:
    """The ``tables`` of ``schema`` dropped, those that do not exist ignored."""
    return f"DROP TABLE IF EXISTS {', '.join(qualified_name(schema, table) for table in tables)}"


def add_columns_statement(schema: str, table: str, columns: Sequence[Column]) -> str:
    """``ALTER TABLE ... ADD COLUMN`` for each of ``columns`` in one statement."""
    additions = ", ".join(f"ADD COLUMN {column.definition()}" for column in columns)
    return f"ALTER TABLE {qualified_name(schema, table)} {additions}"


def swap_statement(
    schema: str,
    table: str,
    new_table: str,
    old_table: str,
    replacing: bool,
    along: Sequence[tuple[str, str, str, bool]] = (),
) -> str:
    """One ``RENAME TABLE`` putting ``new_table`` in ``table``'s place (``table`` moved aside to
    ``old_table`` when it exists): atomic, so readers see the old table or the new one, never none.
    ``along``: more (table, new_table, old_table, replacing) swapped by the same statement."""
    renames = []
    for name, new, old, replaces in ((table, new_table, old_table, replacing), *along):
        if replaces:
            renames.append(f"{qualified_name(schema, name)} TO {qualified_name(schema, old)}")
        renames.append(f"{qualified_name(schema, new)} TO {qualified_name(schema, name)}")
    return f"RENAME TABLE {', '.join(renames)}"


def gone_keys_delete(schema: str, table: str, keys_table: str, rows_table: str, key: str) -> str:
    """DELETE of the rows of ``table`` whose key is listed in ``keys_table`` but absent from the
    freshly built ``rows_table``. The gone keys are found first (a derived table of the few listed
    keys the build did not produce), so only their rows are read and locked in the target:
    joining the target to every listed key locked all of them. NO_MERGE keeps MySQL 8 from
    merging the derived table back into the join (MariaDB reads the hint as a comment and
    materializes it anyway)."""
    key_column = quote_identifier(key)
    target, keys, rows = (qualified_name(schema, t) for t in (table, keys_table, rows_table))
    return (
        f"DELETE /*+ NO_MERGE(gone) */ target FROM {target} AS target JOIN ("
        f"SELECT k.{key_column} FROM {keys} AS k LEFT JOIN {rows} AS fresh"
        f" ON fresh.{key_column} = k.{key_column} WHERE fresh.{key_column} IS NULL"
        f") AS gone ON gone.{key_column} = target.{key_column}"
    )


def row_count_select(schema: str, table: str) -> str:
    """The row count of ``schema.table``."""
    return f"SELECT COUNT(*) FROM {qualified_name(schema, table)}"
