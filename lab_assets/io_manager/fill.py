"""Filling the empty staging table of a :class:`~lab_assets.io_manager.kinds.TableBuild`: its
``select_sql`` in one ``INSERT ... SELECT``, or its faster plan (:mod:`lab_assets.sql.bulk`):
chunk after chunk, or chunks side by side on connections the server's limits leave."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Connection

from lab_assets.io_manager.kinds import TableBuild
from lab_assets.mysql.sessions import spare_connections
from lab_assets.sql.bulk import chunk_select, key_ranges, missing_rows_insert, unchunked_select
from lab_assets.sql.statements import insert_select_statement


def fill_staging_table(connection: Connection, schema: str, new_table: str, build: TableBuild) -> int:
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
        row_count = insert_in_parallel(connection, inserts, plan.params, workers)
    else:
        row_count = sum(connection.exec_driver_sql(insert, plan.params).rowcount for insert in inserts)
    if plan.missing_rows_sql is not None:
        fill = missing_rows_insert(schema, new_table, columns, build.definition.primary_key, plan.missing_rows_sql)
        row_count += connection.exec_driver_sql(fill).rowcount
    return row_count


def insert_in_parallel(connection: Connection, inserts: list[str], params: tuple[Any, ...], workers: int) -> int:
    """Run the chunk INSERTs on ``workers`` connections of the same engine (so with the same
    session settings as ``connection``, which the engine gives every connection it opens), each
    taking every workers-th chunk; the first error is raised after all workers stop."""

    def run(share: list[str]) -> int:
        with connection.engine.connect() as worker:
            return sum(worker.exec_driver_sql(insert, params).rowcount for insert in share)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bulk-insert") as pool:
        futures = [pool.submit(run, inserts[i::workers]) for i in range(workers)]
    return sum(future.result() for future in futures)
