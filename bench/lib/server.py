"""The server the benchmarks run on (LAB_BENCH_SERVER_URL), its connections, and the facts about
it and the machine that are recorded with the results."""

from __future__ import annotations

import contextlib
import os
import platform
import resource
from collections.abc import Iterator

import pymysql
import sqlalchemy as sa

from lab_assets_tests.lab_data import server_connection

SERVER_URL = sa.make_url(os.environ.get("LAB_BENCH_SERVER_URL", "mysql+pymysql://root@127.0.0.1:3306"))


@contextlib.contextmanager
def serving(url: str) -> Iterator[None]:
    """bench.lib's connections (data, verify, database_url) point at the server ``url`` while the
    block runs, and back at SERVER_URL's own after it."""
    global SERVER_URL  # noqa: PLW0603 (every bench.lib connection reads it when it connects)
    saved = SERVER_URL
    SERVER_URL = sa.make_url(url)
    try:
        yield
    finally:
        SERVER_URL = saved


# Server variables recorded with the results (SHOW VARIABLES).
RELEVANT_VARIABLES = (
    "version",
    "innodb_buffer_pool_size",
    "innodb_log_file_size",
    "innodb_log_buffer_size",
    "innodb_flush_log_at_trx_commit",
    "innodb_doublewrite",
    "innodb_flush_method",
    "innodb_io_capacity",
    "innodb_autoinc_lock_mode",
    "innodb_adaptive_hash_index",
    "innodb_change_buffering",
    "log_bin",
    "sync_binlog",
    "tmp_table_size",
    "max_heap_table_size",
    "tmp_memory_table_size",
    "sort_buffer_size",
    "join_buffer_size",
    "join_cache_level",
    "aria_pagecache_buffer_size",
    "max_recursive_iterations",
    "cte_max_recursion_depth",
)


def one_row(cursor) -> tuple:
    """The next row of a query that always gives one (COUNT, MAX, @@version)."""
    row = cursor.fetchone()
    assert row is not None, "the query gave no row"
    return row


def connect(database: str | None = None) -> pymysql.connections.Connection:
    return server_connection(SERVER_URL, database)


def has_table(database: str, table: str) -> bool:
    """Whether ``database`` holds ``table`` (e.g. a lab built before, to reuse)."""
    with connect(database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (database, table),
        )
        return bool(one_row(cursor)[0])


def database_url(database: str) -> str:
    return SERVER_URL.set(database=database).render_as_string(hide_password=False)


def peak_rss_mib() -> float:
    """High-water RSS of this (bench) process."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def server_facts() -> dict[str, str]:
    with connect() as connection, connection.cursor() as cursor:
        placeholders = ", ".join(["%s"] * len(RELEVANT_VARIABLES))
        cursor.execute(f"SHOW GLOBAL VARIABLES WHERE variable_name IN ({placeholders})", RELEVANT_VARIABLES)
        return {name: value for name, value in cursor.fetchall()}


def machine_facts() -> dict[str, str]:
    with open("/proc/meminfo") as meminfo:
        total_kib = int(next(line for line in meminfo if line.startswith("MemTotal:")).split()[1])
    cpu = "?"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{total_kib / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
