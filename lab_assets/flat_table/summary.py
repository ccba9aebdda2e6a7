"""``lab_column_summary`` kept exact with ``experiment_measurements`` by the flat table's one
write path per output kind.

The SQL and the reasoning are in :mod:`lab_assets.flat_table.summary_sql`.

* a full refresh aggregates the staging table whole into ``lab_column_summary__new`` before the
  swap, and the IO manager swaps both in with one ``RENAME TABLE`` (:func:`full_refresh_summary`);
* an incremental refresh updates it by delta inside the transaction that replaces the pending
  samples' rows (:class:`ColumnSummaryUpkeep`, the write's ``upkeep``), so a reader sees the
  summary of exactly the rows committed with it. A summary that is missing or names other columns
  (first run after an upgrade, a table changed by hand) is aggregated whole in that transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from lab_assets.flat_table.summary_sql import (
    apply_delta_statement,
    clear_statement,
    delta_table_statement,
    merge_statement,
    new_rows_statement,
    old_rows_statement,
    recompute_select,
    recompute_statement,
    rows_of_keys,
    store_whole_statement,
    stored_value_type,
    summary_names_select,
    summary_table_statement,
    whole_table,
)
from lab_assets.mysql.resource import MySQLResource
from lab_assets.names import COLUMN_SUMMARY, DELTA_SUFFIX, NEW_SUFFIX, helper_table
from lab_assets.sources.value_types import ValueType, declared_type
from lab_assets.sql.statements import qualified_name

DELTA_TABLE = helper_table(COLUMN_SUMMARY, DELTA_SUFFIX)


def full_refresh_summary(
    schema: str, staged_table: str, columns: Sequence[str], value_type: ValueType
) -> tuple[str, ...]:
    """The statements (a TableBuild's ``before_swap``) that build ``lab_column_summary__new`` from
    the filled staging table ``staged_table``, in one pass over it."""
    staged_summary = helper_table(COLUMN_SUMMARY, NEW_SUFFIX)
    store = store_whole_statement(schema, staged_summary, columns, value_type, whole_table(schema, staged_table))
    return (
        f"DROP TABLE IF EXISTS {qualified_name(schema, staged_summary)}",
        summary_table_statement(schema, staged_summary, value_type),
        *((store,) if store else ()),
    )


def prepare_incremental_summary(mysql: MySQLResource, value_type: ValueType) -> None:
    """Before an incremental refresh (DDL, outside its transaction): the summary table created
    where it is missing, created again empty where its values have another type (then aggregated
    whole in the transaction), and the delta work table created empty (the write drops it)."""
    schema = mysql.tables.output_database
    stored = {
        c.name: declared_type(c.column_type, c.character_set, c.collation) for c in mysql.table_columns(COLUMN_SUMMARY)
    }
    if stored.get("min_value", "").upper() != stored_value_type(value_type).upper():
        mysql.execute(f"DROP TABLE IF EXISTS {qualified_name(schema, COLUMN_SUMMARY)}")
        mysql.execute(summary_table_statement(schema, COLUMN_SUMMARY, value_type))
    mysql.execute(f"DROP TABLE IF EXISTS {qualified_name(schema, DELTA_TABLE)}")
    mysql.execute(delta_table_statement(schema, DELTA_TABLE, value_type))


@dataclass
class ColumnSummaryUpkeep:
    """The summary's delta for a KeyedRowsReplacement of the flat table's rows whose sample ids
    ``keys_table`` lists (lab_assets.io_manager.kinds.ReplacementUpkeep). The rows are read by
    primary key of the listed ids, before they are replaced and after; the whole table only for a
    column whose minimum or maximum went with a replaced row (one pass for all such columns)."""

    schema: str
    table: str
    keys_table: str
    columns: tuple[str, ...]
    value_type: ValueType
    # Whether the stored summary has a row for exactly the table's columns, as before_replace
    # found it; nothing but after_replace writes the summary in between (one transaction).
    trusted: bool = field(default=False, init=False)

    def _run(self, connection: Connection, statement: str | None) -> None:
        if statement is not None:
            connection.exec_driver_sql(statement)

    def before_replace(self, connection: Connection) -> None:
        """The aggregates of the rows about to be replaced, into the delta table."""
        self._run(connection, clear_statement(self.schema, DELTA_TABLE))
        names = connection.exec_driver_sql(summary_names_select(self.schema, COLUMN_SUMMARY)).fetchall()
        self.trusted = {row[0] for row in names} == set(self.columns)
        if self.trusted:
            replaced = rows_of_keys(self.schema, self.table, self.keys_table)
            self._run(connection, old_rows_statement(self.schema, DELTA_TABLE, self.columns, self.value_type, replaced))

    def after_replace(self, connection: Connection) -> None:
        """The summary brought up to date: by delta, the columns that lost their minimum or
        maximum aggregated again; a summary not trusted before the replacement aggregated whole."""
        schema, columns, value_type = self.schema, self.columns, self.value_type
        if not self.trusted:
            self._run(connection, clear_statement(schema, COLUMN_SUMMARY))
            whole = whole_table(schema, self.table)
            self._run(connection, store_whole_statement(schema, COLUMN_SUMMARY, columns, value_type, whole))
            return
        written = rows_of_keys(schema, self.table, self.keys_table)
        self._run(connection, new_rows_statement(schema, DELTA_TABLE, columns, value_type, written))
        self._run(connection, merge_statement(schema, DELTA_TABLE, COLUMN_SUMMARY))
        self._run(connection, apply_delta_statement(schema, COLUMN_SUMMARY, DELTA_TABLE))
        lost = [row[0] for row in connection.exec_driver_sql(recompute_select(schema, DELTA_TABLE)).fetchall()]
        if lost:
            whole = whole_table(schema, self.table)
            self._run(connection, recompute_statement(schema, COLUMN_SUMMARY, lost, value_type, whole))
