"""MySQL IO manager, built on Dagster's database IO-manager framework (DbIOManager, DbClient,
DbTypeHandler, TableSlice) like dagster-duckdb and dagster-clickhouse: schema = MySQL database,
backtick-quoted identifiers, values as bound parameters.

Outputs, each kind with one write path:

* ``pandas.DataFrame``: for small tables (the measurement-type catalog). The table is created
  even for an empty frame, columns the frame has and the table lacks are added with
  ``ALTER TABLE ... ADD COLUMN`` (schema evolution, which DbIOManager itself does not do), and
  the slice (whole table or one partition) is replaced in one transaction.
* SQL that MySQL runs itself, so no row passes through Python (:class:`TableWrite`):
  :class:`TableBuild` (whole table, built aside and swapped in with one atomic ``RENAME TABLE``),
  :class:`KeyedRowsReplacement` (the rows of listed keys, in one transaction) and
  :class:`PartitionRows` (one partition, in one transaction).

Inputs typed :class:`SqlRelation` load as a relation to compose into the downstream asset's own
SQL, not rows; other inputs load as DataFrames.

Modules, each importing only those listed after it:

* ``factory``: :class:`MySQLIOManager` (what ``defs`` configures) and :class:`MySQLDbIOManager`;
* ``dataframes``: the DataFrame type handler and its pandas dtypes;
* ``table_writes``: the handlers of the :class:`TableWrite` kinds and of :class:`SqlRelation`;
* ``fill``: a TableBuild's staging table filled, chunks side by side where connections allow;
* ``swap``: the atomic ``RENAME TABLE`` swap of a table built aside;
* ``client``: :class:`MySQLDbClient`, a ``TableSlice`` as SQL, schema evolution, table metadata;
* ``kinds``: the output and input kinds, plain values;
* ``sql``: the statements' text, no Dagster and no connection (unit-tested without a server).
"""

from lab_assets.io_manager.client import MySQLDbClient, add_missing_columns
from lab_assets.io_manager.dataframes import DataFrameTypeHandler
from lab_assets.io_manager.factory import MySQLDbIOManager, MySQLIOManager
from lab_assets.io_manager.kinds import KeyedRowsReplacement, PartitionRows, SqlRelation, TableBuild, TableWrite
from lab_assets.io_manager.swap import SwapBlockedError
from lab_assets.io_manager.table_writes import (
    KeyedRowsReplacementHandler,
    PartitionRowsHandler,
    SqlRelationTypeHandler,
    TableBuildHandler,
)

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
