"""The output kinds a lab_assets asset returns and the input kind it reads: plain values, no
Dagster, no connection. Each :class:`TableWrite` kind has one write path
(:mod:`lab_assets.io_manager.table_writes`); :class:`SqlRelation` is what an input loads as."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lab_assets.sql.bulk import BulkBuild
from lab_assets.sql.statements import TableDefinition, qualified_name


@dataclass(frozen=True)
class SqlRelation:
    """Rows as a SELECT that MySQL evaluates (``%s`` bound parameters): what an input typed
    ``SqlRelation`` loads as, to be composed into the downstream asset's own SQL. No row passes
    through Python. Returning one as an output is an error: say how to write it with one of the
    :class:`TableWrite` kinds."""

    select_sql: str
    params: tuple[Any, ...] = ()
    # Set when the relation is a plain reference to a whole stored table (schema, table).
    table_reference: tuple[str, str] | None = field(default=None, compare=False)

    @classmethod
    def of_table(cls, schema: str, table: str) -> SqlRelation:
        """The whole stored table ``schema.table``, read by reference."""
        return cls(select_sql=f"SELECT * FROM {qualified_name(schema, table)}", table_reference=(schema, table))

    def as_from_item(self) -> str:
        """The relation as an item of a FROM clause (alias it after this)."""
        if self.table_reference is not None:
            return qualified_name(*self.table_reference)
        return f"(\n{self.select_sql}\n)"


class TableWrite:
    """Base of the output kinds the IO manager writes inside MySQL, each with one write path.

    * :class:`TableBuild`: the whole table, built aside and swapped in atomically;
    * :class:`KeyedRowsReplacement`: the rows of listed primary keys, replaced in one transaction;
    * :class:`PartitionRows`: one partition's rows, replaced in one transaction.

    Declare ``dagster_type=TableWrite`` on an output that returns one kind or another."""

    definition: TableDefinition  # the columns and keys of the table written


# What a write reports of the table it wrote, beyond the metadata every write carries: called by
# the IO manager with its connection once the table is written, its mapping added to the
# materialization's metadata (a preview of the rows, a summary; never the whole table).
Report = Callable[[Any], Mapping[str, Any]]


class ReplacementUpkeep(Protocol):
    """Keeps a summary of a table in step with a :class:`KeyedRowsReplacement`, inside its
    transaction: ``before_replace`` runs before the listed keys' rows are deleted or overwritten
    (so it can read them), ``after_replace`` once the new rows are in. Both get the IO manager's
    connection; readers see the summary change in the same commit as the rows."""

    def before_replace(self, connection: Any) -> None:
        """Read what the rows about to be replaced contribute."""
        ...

    def after_replace(self, connection: Any) -> None:
        """Bring the summary up to date with the rows just written."""
        ...


@dataclass(frozen=True, kw_only=True)
class TableBuild(TableWrite):
    """The whole table as ``select_sql`` gives it, built into ``<table>__new`` and swapped in with
    one ``RENAME TABLE``: readers see the old complete table or the new complete one, never a
    half-built, empty or missing one. A failed build drops ``<table>__new`` and leaves the table.

    ``faster_plan`` (lab_assets.sql.bulk) is an equivalent, faster way to fill the empty staging
    table; ``select_sql`` stays the complete definition. ``after_swap`` statements run once the new
    table is in place (not atomic with the swap: each must be safe to run again). ``drop_after``
    names work tables (same schema) the asset made for this build, dropped once it is written.
    ``recursion_limit`` raises the session's recursive-CTE limit first; ``report`` (:data:`Report`)
    adds what it reads of the swapped-in table to the metadata. ``before_swap`` statements run once
    ``<table>__new`` is filled and indexed (to build a companion of it aside, as
    ``<companion>__new``); ``swap_along`` names those companions (same schema), swapped in by the
    same ``RENAME TABLE`` as the table, so readers never see one without the other."""

    select_sql: str
    definition: TableDefinition
    params: tuple[Any, ...] = ()
    recursion_limit: int | None = None
    faster_plan: BulkBuild | None = field(default=None, compare=False)
    after_swap: tuple[str, ...] = ()
    before_swap: tuple[str, ...] = ()
    swap_along: tuple[str, ...] = ()
    drop_after: tuple[str, ...] = ()
    report: Report | None = field(default=None, compare=False)


@dataclass(frozen=True, kw_only=True)
class KeyedRowsReplacement(TableWrite):
    """Only the rows whose primary key is listed in ``keys_table`` (same schema, one column named
    like the table's single-column key) are replaced by ``select_sql``, which must produce exactly
    the listed keys that still exist; listed keys it does not produce are deleted. One transaction,
    with ``in_transaction`` statements run inside it after the rows are replaced and
    ``in_transaction_before`` before (reading the rows as they were), to keep a summary of the
    table in step, and ``upkeep`` (:class:`ReplacementUpkeep`) called around the replacement
    inside it where keeping the summary needs more than fixed statements.
    ``row_count_select``: a query giving the table's exact row count afterwards that is cheaper
    than ``COUNT(*)`` (default ``COUNT(*)``). The table must exist with ``definition``'s columns."""

    select_sql: str
    definition: TableDefinition
    keys_table: str
    params: tuple[Any, ...] = ()
    recursion_limit: int | None = None
    in_transaction: tuple[str, ...] = ()
    in_transaction_before: tuple[str, ...] = ()
    upkeep: ReplacementUpkeep | None = field(default=None, compare=False)
    row_count_select: str | None = None
    drop_after: tuple[str, ...] = ()
    report: Report | None = field(default=None, compare=False)


@dataclass(frozen=True, kw_only=True)
class PartitionRows(TableWrite):
    """The rows of the partition being materialized (a partitioned asset's output): the partition's
    old rows deleted and these inserted in one transaction. The table is created if missing and
    gains columns ``definition`` adds (``ALTER TABLE ... ADD COLUMN``)."""

    select_sql: str
    definition: TableDefinition
    params: tuple[Any, ...] = ()
