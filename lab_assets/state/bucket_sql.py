"""SQL that keeps a state table's bucket table (lab_assets.state.sql) equal to the sums over the
whole state table: built whole after a full refresh, and kept by delta in the transaction of each
incremental write.

An incremental write replaces, adds or deletes the state rows of a few ids. Summing each touched
bucket again would look up every id of it (the bucket width per touched bucket, most of them
unchanged); the delta reads only the written ids' rows by primary key, once before the write (the
old rows, subtracted) and once after it (the new rows, added), both with the sums of
:class:`RowSums` that build the table whole.

The state table's row count is kept beside it in :data:`STATE_ROW_COUNTS` (one row per state
table), equal to the sum of the bucket table's ``state_rows``: stored when the bucket table is
built whole, and moved in the same transaction as every write to the bucket table by the
difference of the touched buckets' ``state_rows`` (summed before the write and after it), so the
materialization's row count reads one row, not a bucket table of n/4 rows.
"""

from __future__ import annotations

from lab_assets.names import NEW_SUFFIX, STATE_ROW_COUNTS, helper_table
from lab_assets.sources.locations import TableLocations
from lab_assets.sql.statements import Column, TableDefinition
from lab_assets.state.sql import (
    BUCKET_SUMS,
    BUCKET_SUMS_DEFINITION,
    BucketScheme,
    RowSums,
    StateTable,
    buckets_of_ids_select,
)

STATE_ROW_COUNTS_DEFINITION = TableDefinition(
    columns=(Column("state_table", "VARCHAR(64) NOT NULL"), Column("state_rows", "BIGINT NOT NULL")),
    primary_key=("state_table",),
)


def _name_literal(state: StateTable) -> str:
    """The state table's name as an SQL string: one of lab_assets' own names, checked."""
    if not state.name.replace("_", "").isalnum():
        raise ValueError(f"unexpected state table name {state.name!r}")
    return f"'{state.name}'"


def state_row_count_select(tables: TableLocations, state: StateTable) -> str:
    """The number of rows of a state table, as stored beside its bucket table (no row: not stored)."""
    return f"SELECT state_rows FROM {tables.qualified(STATE_ROW_COUNTS)} WHERE state_table = {_name_literal(state)}"


def row_count_forget_statements(tables: TableLocations, state: StateTable) -> tuple[str, ...]:
    """The state table's stored row count deleted: run before its bucket table is dropped or
    replaced, so that a build cut short leaves no count beside a bucket table it does not sum
    (the next refresh then stores it again from the bucket table it finds)."""
    return (
        STATE_ROW_COUNTS_DEFINITION.create_statement(tables.output_database, STATE_ROW_COUNTS, if_not_exists=True),
        f"DELETE FROM {tables.qualified(STATE_ROW_COUNTS)} WHERE state_table = {_name_literal(state)}",
    )


def row_count_store_statements(tables: TableLocations, state: StateTable) -> tuple[str, ...]:
    """The state table's row count summed over its bucket table (just built whole) and stored."""
    return (
        *row_count_forget_statements(tables, state),
        f"INSERT INTO {tables.qualified(STATE_ROW_COUNTS)} (state_table, state_rows)"
        f" SELECT {_name_literal(state)}, COALESCE(SUM(state_rows), 0) FROM {tables.qualified(state.buckets_table)}",
    )


def _row_count_moved(tables: TableLocations, state: StateTable, touched_select: str, sign: str) -> str:
    """The stored row count moved by the touched buckets' ``state_rows``: subtracted (``-``) before
    a write to the bucket table, added (``+``) after it; one primary-key lookup per touched bucket."""
    return f"""UPDATE {tables.qualified(STATE_ROW_COUNTS)} SET state_rows = state_rows {sign} (
  SELECT COALESCE(SUM(b.state_rows), 0) FROM {tables.qualified(state.buckets_table)} AS b
  JOIN ({touched_select}) AS touched ON touched.bucket = b.bucket
) WHERE state_table = {_name_literal(state)}"""


def bucket_table_build_statements(tables: TableLocations, state: StateTable) -> tuple[str, ...]:
    """(Re)build the state's bucket table from the whole state table, aside and renamed in, so an
    interrupted build leaves no partial table."""
    buckets_table = state.buckets_table
    staging_table = helper_table(buckets_table, NEW_SUFFIX)
    staging = tables.qualified(staging_table)
    return (
        *row_count_forget_statements(tables, state),
        f"DROP TABLE IF EXISTS {staging}",
        BUCKET_SUMS_DEFINITION.create_statement(tables.output_database, staging_table),
        f"INSERT INTO {staging} {state.stored_sums_select(tables)}",
        f"DROP TABLE IF EXISTS {tables.qualified(buckets_table)}",
        f"RENAME TABLE {staging} TO {tables.qualified(buckets_table)}",
        *row_count_store_statements(tables, state),
    )


def bucket_table_update_statements(
    tables: TableLocations,
    state: StateTable,
    id_tables: tuple[str, ...],
    new_sums_select: str,
    except_buckets_of: tuple[str, ...] = (),
) -> tuple[str, ...]:
    """Bring the state's bucket table up to date for the buckets of the ids in the work tables
    ``id_tables`` but those of the ids in ``except_buckets_of``: their rows are replaced by
    ``new_sums_select`` (the same sums over the state table just written, for those buckets), and
    the stored row count moved with them; run in the write's transaction. A bucket left without
    state rows disappears."""
    buckets = tables.qualified(state.buckets_table)
    touched = buckets_of_ids_select(tables, state.buckets, id_tables, except_buckets_of)
    return (
        _row_count_moved(tables, state, touched, "-"),
        f"""DELETE b FROM {buckets} AS b
JOIN ({touched}) AS touched
ON touched.bucket = b.bucket""",
        f"INSERT INTO {buckets} {new_sums_select}",
        _row_count_moved(tables, state, touched, "+"),
    )


def stale_bucket_repair_statements(tables: TableLocations, state: StateTable, candidates_table: str) -> tuple[str, ...]:
    """The buckets of the candidates (members of the buckets whose sums differed from the source)
    that hold no changed id summed again from the state table: their stored sums were stale (as
    after a change of the row hash, say), or a change was put back before its ids were compared.
    Without this such a bucket would be compared id by id on every refresh. Normally none; run
    after the write, in its transaction, beside :func:`bucket_delta_statements` (which touches
    only the buckets of changed ids: a stale bucket that also holds a changed id stays stale by
    its delta, and is repaired by the first refresh that finds it without one)."""
    return bucket_table_update_statements(
        tables,
        state,
        (candidates_table,),
        state.stored_sums_select(tables, (candidates_table,), (state.changes_table,)),
        except_buckets_of=(state.changes_table,),
    )


def listed_rows_bucket_sums_select(
    tables: TableLocations, scheme: BucketScheme, state_table: str, row_sums: RowSums, keys_table: str
) -> str:
    """Bucket sums of only the rows of ``state_table`` (alias ``state``) whose ids the work table
    ``keys_table`` lists: one primary-key lookup per listed id."""
    bucket = scheme.bucket_of("state.sample_id")
    return f"""SELECT {bucket} AS bucket, {row_sums.sums()}
FROM {tables.qualified(keys_table)} AS k
JOIN {tables.qualified(state_table)} AS state ON state.sample_id = k.sample_id
GROUP BY {bucket}"""


def bucket_delta_statements(
    tables: TableLocations, state: StateTable, keys_table: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(before, after) a write that replaces, adds or deletes the state rows of the ids in
    ``keys_table``, both run in the write's transaction: before, those ids' old rows subtracted
    from their buckets; after, the buckets they enter added empty, their new rows added, and the
    buckets left without state rows deleted; the stored row count moved with them. A bucket table
    equal to the sums over the state table before the write equals them after it.

    UPDATE ... JOIN and an anti-joined INSERT rather than ``ON DUPLICATE KEY UPDATE c = c +
    VALUES(c)``: MySQL 8.0.20+ deprecates ``VALUES()`` there and MariaDB lacks the ``AS new``
    alias that replaces it."""
    buckets = tables.qualified(state.buckets_table)
    listed = listed_rows_bucket_sums_select(tables, state.buckets, state.name, state.row_sums, keys_table)
    touched = buckets_of_ids_select(tables, state.buckets, (keys_table,))

    def applied(sign: str) -> str:
        columns = (*BUCKET_SUMS, "state_rows")
        return f"""UPDATE {buckets} AS b JOIN (
{listed}
) AS delta ON delta.bucket = b.bucket
SET {", ".join(f"b.{c} = b.{c} {sign} delta.{c}" for c in columns)}"""

    entered = f"""INSERT INTO {buckets} (bucket, {", ".join(BUCKET_SUMS)}, state_rows)
SELECT touched.bucket, 0, 0, 0, 0 FROM ({touched}) AS touched
LEFT JOIN {buckets} AS b ON b.bucket = touched.bucket WHERE b.bucket IS NULL"""
    emptied = f"""DELETE b FROM {buckets} AS b JOIN ({touched}) AS touched ON touched.bucket = b.bucket
WHERE b.state_rows = 0"""
    return (
        (_row_count_moved(tables, state, touched, "-"), applied("-")),
        (entered, applied("+"), emptied, _row_count_moved(tables, state, touched, "+")),
    )
