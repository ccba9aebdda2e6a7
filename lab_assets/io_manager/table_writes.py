"""The type handlers of outputs written inside MySQL, one per :class:`TableWrite` kind, each with
one write path, and of inputs read as :class:`SqlRelation`. No row passes through Python."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import InputContext, OutputContext
from dagster._core.storage.db_io_manager import DbTypeHandler, TableSlice
from sqlalchemy.engine import Connection

from lab_assets.io_manager.client import add_missing_columns, select_slice, slice_partition_condition, table_metadata
from lab_assets.io_manager.fill import fill_staging_table
from lab_assets.io_manager.kinds import KeyedRowsReplacement, PartitionRows, SqlRelation, TableBuild, TableWrite
from lab_assets.io_manager.progress import logged_step
from lab_assets.io_manager.sql import delete_where_statement, drop_tables_statement, gone_keys_delete, row_count_select
from lab_assets.io_manager.swap import swap_in
from lab_assets.mysql.catalog import table_exists
from lab_assets.mysql.errors import explained
from lab_assets.mysql.sessions import is_mariadb, recursion_limit_statement, transaction
from lab_assets.names import NEW_SUFFIX, OLD_SUFFIX, ROWS_SUFFIX, helper_table
from lab_assets.sql.statements import add_indexes_statement, insert_select_statement, upsert_select_statement


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
            connection.exec_driver_sql(drop_tables_statement(schema, work_table))
        seconds = time.monotonic() - started
        columns = obj.definition.columns
        report = getattr(obj, "report", None)
        reported = dict(report(connection)) if report is not None else {}
        context.log.info(
            f"{schema}.{table}: {self.write_label}, {rows_written} rows written,"
            f" {len(columns)} columns, {seconds:.2f} s"
        )
        return {
            "write": self.write_label,
            "rows_written": rows_written,
            "build_seconds": round(seconds, 3),
            **table_metadata(table_slice, total, columns),
            **reported,
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
        """The table built into ``<table>__new``, indexed after the load and swapped in with one
        ``RENAME TABLE``; a failed build drops ``<table>__new`` and leaves the table as it was."""
        _reject_partitions(context, table_slice, TableBuild)
        schema, table = table_slice.schema, table_slice.table
        new_table, old_table = helper_table(table, NEW_SUFFIX), helper_table(table, OLD_SUFFIX)
        staged = [new_table, *(helper_table(name, NEW_SUFFIX) for name in obj.swap_along)]
        log = context.log
        # Leftovers of a run that was killed mid-build are dropped first.
        leftovers = [*staged, old_table, *(helper_table(name, OLD_SUFFIX) for name in obj.swap_along)]
        connection.exec_driver_sql(drop_tables_statement(schema, *leftovers))
        # Secondary indexes are added after the load: one sorted index build each instead of
        # maintaining them row by row (bench/RESULTS.md, "What was slow and what changed").
        connection.exec_driver_sql(obj.definition.create_statement(schema, new_table, with_indexes=False))
        try:
            with logged_step(log, f"filling {schema}.{new_table}"):
                row_count = fill_staging_table(connection, schema, new_table, obj)
                add_indexes = add_indexes_statement(schema, new_table, obj.definition)
                if add_indexes:
                    connection.exec_driver_sql(add_indexes)
                for statement in obj.before_swap:
                    connection.exec_driver_sql(statement)
            log.info(f"swapping {schema}.{new_table} in as {schema}.{table} ({row_count} rows)")
            swap_in(connection, schema, table, obj.swap_along)
        except BaseException:
            connection.exec_driver_sql(drop_tables_statement(schema, *staged))
            raise
        for statement in obj.after_swap:
            connection.exec_driver_sql(statement)
        return row_count, row_count


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
        measured faster than deleting and re-inserting every listed row (bench/RESULTS.md,
        "Results on main after two-level change detection")."""
        _reject_partitions(context, table_slice, KeyedRowsReplacement)
        schema, table = table_slice.schema, table_slice.table
        definition = obj.definition
        (key,) = definition.primary_key
        rows_table = helper_table(table, ROWS_SUFFIX)
        # Only the gone keys' rows are read and locked in the target (gone_keys_delete).
        delete_gone = gone_keys_delete(schema, table, obj.keys_table, rows_table, key)
        connection.exec_driver_sql(drop_tables_statement(schema, rows_table))
        connection.exec_driver_sql(definition.create_statement(schema, rows_table, with_indexes=False))
        try:
            with logged_step(context.log, f"replacing changed rows of {schema}.{table}"):
                row_count = connection.exec_driver_sql(
                    insert_select_statement(schema, rows_table, definition.column_names, obj.select_sql),
                    obj.params,
                ).rowcount
                with transaction(connection):
                    for statement in obj.in_transaction_before:
                        connection.exec_driver_sql(statement)
                    if obj.upkeep is not None:
                        obj.upkeep.before_replace(connection)
                    connection.exec_driver_sql(delete_gone)
                    connection.exec_driver_sql(upsert_select_statement(schema, table, definition, rows_table))
                    for statement in obj.in_transaction:
                        connection.exec_driver_sql(statement)
                    if obj.upkeep is not None:
                        obj.upkeep.after_replace(connection)
        finally:
            connection.exec_driver_sql(drop_tables_statement(schema, rows_table))
        (total,) = connection.exec_driver_sql(obj.row_count_select or row_count_select(schema, table)).one()
        return row_count, int(total)


class PartitionRowsHandler(_TableWriteHandler):
    """:class:`PartitionRows`: the partition's rows replaced in one transaction."""

    kind = PartitionRows
    write_label = "partition replaced"

    def write(
        self, context: OutputContext, table_slice: TableSlice, obj: PartitionRows, connection: Connection
    ) -> tuple[int, int]:
        """The partition's rows deleted and inserted again in one transaction; the table is created, and
        the columns it lacks added, first."""
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
            connection.exec_driver_sql(delete_where_statement(schema, table, condition), condition_params)
            row_count = connection.exec_driver_sql(insert, obj.params).rowcount
        return row_count, row_count


class SqlRelationTypeHandler(DbTypeHandler[SqlRelation]):
    """Loads inputs typed :class:`SqlRelation`: the whole table by reference, or a SELECT of the
    requested columns and partitions."""

    @property
    def supported_types(self) -> Sequence[type[object]]:
        """Inputs typed :class:`SqlRelation`."""
        return [SqlRelation]

    def handle_output(
        self, context: OutputContext, table_slice: TableSlice, obj: SqlRelation, connection: Connection
    ) -> Mapping[str, Any]:
        """Refused: a SqlRelation only says what to read, so an output names its write kind instead."""
        raise TypeError(
            f"{context.asset_key.to_user_string()} returned a SqlRelation, which only says what to read:"
            " return TableBuild (whole table), KeyedRowsReplacement (listed keys) or PartitionRows"
            " (partitioned asset) with the table's TableDefinition"
        )

    def load_input(self, context: InputContext, table_slice: TableSlice, connection: Connection) -> SqlRelation:
        """The whole table by reference, or a SELECT of the requested columns and partitions; no rows read."""
        if not table_slice.columns and not table_slice.partition_dimensions:
            return SqlRelation.of_table(table_slice.schema, table_slice.table)
        sql, params = select_slice(table_slice)
        return SqlRelation(select_sql=sql, params=params)
