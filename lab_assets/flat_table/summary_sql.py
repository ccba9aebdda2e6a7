"""SQL of ``lab_column_summary``: each measurement column's non-NULL count, minimum and maximum,
kept beside ``experiment_measurements`` so that a materialization's ``column_summary`` reads a few
rows instead of aggregating the whole table after every write.

The minimum and maximum are stored as ``ValueType.ordered`` compares them (numbers in the
column's own type, text as its bytes in a LONGBLOB), so ``MIN``, ``LEAST``, ``<`` and ``=`` on the
stored values order exactly as the whole-table aggregate does, and DECIMAL, DOUBLE, FLOAT and text
values are kept bit for bit. Every aggregate is one pass over its rows (:func:`aggregates_select`:
one wide aggregate row, turned into one row per column by a join with the column list), so the
rows of an incremental refresh are read once, by primary key, however many columns there are.

An incremental refresh keeps the summary in step inside the transaction that replaces the rows
(lab_assets.flat_table.summary): the replaced rows' aggregates are read before they go (the delta
table's ``old_*``), the new rows' after they are written (``new_*``); the count is
stored - old + new, the minimum the smaller of the stored and the new one; only a column whose
stored minimum or maximum was held by a replaced row and is not reached again by a new row is
aggregated again over the whole table. Column names enter the SQL text as literals only after
:func:`name_literal` has checked they are plain identifiers (lab_assets.catalog.naming's)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from lab_assets.sources.value_types import ValueType
from lab_assets.sql.statements import qualified_name, quote_identifier

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
NAME_TYPE = "VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"


def name_literal(name: str) -> str:
    """A column name as an SQL string literal; only plain identifiers (the catalog's names) are accepted."""
    if not _PLAIN_NAME.fullmatch(name):
        raise ValueError(f"not a plain column name: {name!r}")
    return f"'{name}'"


def stored_value_type(value_type: ValueType) -> str:
    """The type of the stored minimum and maximum: the column's own for numbers, LONGBLOB (the
    bytes ``ordered`` compares) for text."""
    return "LONGBLOB" if value_type.is_text else value_type.ddl


def summary_table_statement(schema: str, table: str, value_type: ValueType) -> str:
    """CREATE TABLE of the summary: one row per measurement column."""
    stored = stored_value_type(value_type)
    return (
        f"CREATE TABLE {qualified_name(schema, table)} (\n"
        f"  column_name {NAME_TYPE} NOT NULL PRIMARY KEY,\n"
        "  non_null_count BIGINT NOT NULL,\n"
        f"  min_value {stored} NULL,\n"
        f"  max_value {stored} NULL\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    )


def delta_table_statement(schema: str, table: str, value_type: ValueType) -> str:
    """CREATE TABLE of an incremental refresh's work table: per column the replaced rows'
    aggregates (``old_*``), the new rows' (``new_*``), the merged result (``*_after``) and whether
    the column must be aggregated again over the whole table (``recompute``)."""
    stored = stored_value_type(value_type)
    return (
        f"CREATE TABLE {qualified_name(schema, table)} (\n"
        f"  column_name {NAME_TYPE} NOT NULL PRIMARY KEY,\n"
        f"  old_count BIGINT NOT NULL, old_min {stored} NULL, old_max {stored} NULL,\n"
        f"  new_count BIGINT NOT NULL DEFAULT 0, new_min {stored} NULL, new_max {stored} NULL,\n"
        f"  count_after BIGINT NULL, min_after {stored} NULL, max_after {stored} NULL,\n"
        "  recompute TINYINT NOT NULL DEFAULT 0\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    )


def whole_table(schema: str, table: str) -> str:
    """A FROM clause of every row of ``table`` (alias ``f``): one scan."""
    return f"{qualified_name(schema, table)} AS f"


def rows_of_keys(schema: str, table: str, keys_table: str) -> str:
    """A FROM clause of the rows of ``table`` (alias ``f``) whose sample_id ``keys_table`` lists:
    the listed ids read first, each row then found by its primary key (STRAIGHT_JOIN keeps that
    order), never a scan of ``table``."""
    return (
        f"{qualified_name(schema, keys_table)} AS k STRAIGHT_JOIN {qualified_name(schema, table)} AS f"
        " ON f.sample_id = k.sample_id"
    )


def aggregates_select(columns: Sequence[str], value_type: ValueType, from_clause: str) -> str | None:
    """Rows (column_name, non_null_count, min_value, max_value), one per column of ``columns``,
    aggregated in one pass over ``from_clause`` (alias ``f``); min and max as stored
    (:func:`stored_value_type`). None without columns."""
    if not columns:
        return None
    aggregates, names = [], []
    for position, name in enumerate(columns):
        ordered = value_type.ordered(f"f.{quote_identifier(name)}")
        aggregates.append(
            f"COUNT(f.{quote_identifier(name)}) AS n{position}, MIN({ordered}) AS lo{position},"
            f" MAX({ordered}) AS hi{position}"
        )
        names.append(f"SELECT {position} AS position, {name_literal(name)} AS column_name")

    def pick(prefix: str) -> str:
        branches = " ".join(f"WHEN {p} THEN a.{prefix}{p}" for p in range(len(columns)))
        return f"CASE c.position {branches} END"

    return (
        f"SELECT c.column_name, {pick('n')} AS non_null_count, {pick('lo')} AS min_value, {pick('hi')} AS max_value\n"
        f"FROM (SELECT {', '.join(aggregates)} FROM {from_clause}) AS a\n"
        f"CROSS JOIN ({' UNION ALL '.join(names)}) AS c"
    )


def _insert(schema: str, table: str, columns: str, select_sql: str | None) -> str | None:
    return None if select_sql is None else f"INSERT INTO {qualified_name(schema, table)} ({columns})\n{select_sql}"


def store_whole_statement(
    schema: str, summary: str, columns: Sequence[str], value_type: ValueType, from_clause: str
) -> str | None:
    """INSERT of every column's aggregates over ``from_clause`` into an empty ``summary``."""
    select_sql = aggregates_select(columns, value_type, from_clause)
    return _insert(schema, summary, "column_name, non_null_count, min_value, max_value", select_sql)


def old_rows_statement(
    schema: str, delta: str, columns: Sequence[str], value_type: ValueType, from_clause: str
) -> str | None:
    """INSERT into the empty ``delta`` of the aggregates of the rows about to be replaced."""
    select_sql = aggregates_select(columns, value_type, from_clause)
    return _insert(schema, delta, "column_name, old_count, old_min, old_max", select_sql)


def new_rows_statement(
    schema: str, delta: str, columns: Sequence[str], value_type: ValueType, from_clause: str
) -> str | None:
    """``delta``'s ``new_*`` set to the aggregates of the rows just written."""
    select_sql = aggregates_select(columns, value_type, from_clause)
    if select_sql is None:
        return None
    return (
        f"UPDATE {qualified_name(schema, delta)} AS d JOIN (\n{select_sql}\n) AS a ON a.column_name = d.column_name\n"
        "SET d.new_count = a.non_null_count, d.new_min = a.min_value, d.new_max = a.max_value"
    )


def merge_statement(schema: str, delta: str, summary: str) -> str:
    """``delta``'s ``*_after`` and ``recompute`` from the stored summary and the two aggregates.
    Where no stored value remains (stored count = old count) the new rows' are the result;
    otherwise the stored minimum stays unless a new one is smaller, and the column is marked for
    recomputing when a replaced row held the stored minimum and no new row reaches it (the same
    for the maximum). Only ``delta`` is written, so every expression reads the values before it."""
    remaining = "(s.non_null_count - d.old_count)"

    def after(new: str, stored: str, beats: str) -> str:
        return f"CASE WHEN {remaining} = 0 THEN {new} WHEN {new} {beats} {stored} THEN {new} ELSE {stored} END"

    def lost(old: str, new: str, stored: str, beats: str) -> str:
        return f"({old} <=> {stored} AND NOT COALESCE({new} {beats}= {stored}, FALSE))"

    return (
        f"UPDATE {qualified_name(schema, delta)} AS d JOIN {qualified_name(schema, summary)} AS s"
        " ON s.column_name = d.column_name\n"
        f"SET d.count_after = {remaining} + d.new_count,\n"
        f"  d.min_after = {after('d.new_min', 's.min_value', '<')},\n"
        f"  d.max_after = {after('d.new_max', 's.max_value', '>')},\n"
        f"  d.recompute = {remaining} > 0 AND ({lost('d.old_min', 'd.new_min', 's.min_value', '<')}"
        f" OR {lost('d.old_max', 'd.new_max', 's.max_value', '>')})"
    )


def apply_delta_statement(schema: str, summary: str, delta: str) -> str:
    """The summary set to ``delta``'s merged values (reads only ``delta``)."""
    return (
        f"UPDATE {qualified_name(schema, summary)} AS s JOIN {qualified_name(schema, delta)} AS d"
        " ON d.column_name = s.column_name\n"
        "SET s.non_null_count = d.count_after, s.min_value = d.min_after, s.max_value = d.max_after"
    )


def recompute_select(schema: str, delta: str) -> str:
    """The columns the merge marked for aggregating again over the whole table."""
    return f"SELECT column_name FROM {qualified_name(schema, delta)} WHERE recompute = 1 ORDER BY column_name"


def recompute_statement(
    schema: str, summary: str, columns: Sequence[str], value_type: ValueType, from_clause: str
) -> str | None:
    """The summary rows of ``columns`` set to their aggregates over ``from_clause`` (one pass)."""
    select_sql = aggregates_select(columns, value_type, from_clause)
    if select_sql is None:
        return None
    return (
        f"UPDATE {qualified_name(schema, summary)} AS s JOIN (\n{select_sql}\n) AS a ON a.column_name = s.column_name\n"
        "SET s.non_null_count = a.non_null_count, s.min_value = a.min_value, s.max_value = a.max_value"
    )


def summary_names_select(schema: str, summary: str) -> str:
    """The columns the summary holds a row for."""
    return f"SELECT column_name FROM {qualified_name(schema, summary)}"


def summary_rows_select(schema: str, summary: str, value_type: ValueType) -> str:
    """Every summary row as the metadata shows it: min and max turned back into values of the type."""
    low, high = value_type.from_ordered("min_value"), value_type.from_ordered("max_value")
    return f"SELECT column_name, non_null_count, {low}, {high} FROM {qualified_name(schema, summary)}"


def clear_statement(schema: str, table: str) -> str:
    """Every row of ``table`` deleted (inside a transaction, unlike TRUNCATE)."""
    return f"DELETE FROM {qualified_name(schema, table)}"
