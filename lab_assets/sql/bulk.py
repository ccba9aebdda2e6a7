"""Faster full refreshes (what each plan saves: bench/RESULTS.md).

A relation's ``select_sql`` is always the complete, correct definition of its rows. A
:class:`BulkBuild` is an optional, equivalent way to fill the *empty* staging table
``<table>__new`` faster; the IO manager uses it only for full refreshes:

1. ``select_sql`` is inserted, either in one statement or, with ``chunk_key``, as one
   ``INSERT ... SELECT`` per range of an integer key (``CHUNK_FILTER`` in the SELECT is replaced by
   ``<chunk_key> BETWEEN lo AND hi``). Small statements keep each transaction's undo log and
   locks small, and a key-ordered SELECT (e.g. ``GROUP BY s.id`` scanning ``samples`` by its
   primary key) inserts in primary-key order. With ``parallel`` > 1 that many connections insert
   disjoint chunks at the same time (one waits on I/O while the other computes).
2. ``missing_rows_sql``, when set, then adds its rows for every primary key step 1 did not produce
   (an anti-join against the staging table's primary key).

Secondary indexes are added after the load (by the IO manager, for every full refresh).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lab_assets.sql.statements import qualified_name, quote_identifier

# Placeholder in a SELECT's WHERE clause for a chunk's key range; valid SQL (TRUE) as it stands.
CHUNK_FILTER = "/* lab_assets:chunk */ TRUE"
DEFAULT_CHUNK_WIDTH = 50_000


@dataclass(frozen=True)
class BulkBuild:
    """A faster, equivalent way to fill the empty staging table with ``select_sql``'s rows: in chunks
    of an integer key, side by side, and with ``missing_rows_sql`` for the keys it left out."""

    select_sql: str
    params: tuple[object, ...] = ()
    # An integer SQL expression in select_sql (e.g. "s.id") and a query for its (MIN, MAX).
    chunk_key: str | None = None
    chunk_bounds_sql: str | None = None
    chunk_width: int = DEFAULT_CHUNK_WIDTH
    # Connections that insert disjoint chunks at the same time (chunked builds only).
    parallel: int = 1
    # Rows (in the table's column order) for primary keys that select_sql did not produce.
    missing_rows_sql: str | None = None

    def __post_init__(self) -> None:
        """``ValueError`` for a build that could not run as declared: a chunk key without its bounds query
        (or the reverse), a chunked ``select_sql`` without exactly one :data:`CHUNK_FILTER`, a width or
        parallelism below 1."""
        if (self.chunk_key is None) != (self.chunk_bounds_sql is None):
            raise ValueError("chunk_key and chunk_bounds_sql go together")
        if self.chunk_key is not None and self.select_sql.count(CHUNK_FILTER) != 1:
            raise ValueError("a chunked select_sql must contain CHUNK_FILTER exactly once")
        if self.chunk_width < 1 or self.parallel < 1:
            raise ValueError("chunk_width and parallel must be positive")


def key_ranges(low: int | None, high: int | None, width: int) -> list[tuple[int, int]]:
    """Consecutive inclusive ranges of ``width`` keys covering [low, high]; none for an empty table."""
    if low is None or high is None:
        return []
    low, high = int(low), int(high)
    return [(start, min(start + width - 1, high)) for start in range(low, high + 1, width)]


def chunk_select(select_sql: str, chunk_key: str, low: int, high: int) -> str:
    """``select_sql`` restricted to ``low <= chunk_key <= high`` (integers, inlined)."""
    if select_sql.count(CHUNK_FILTER) != 1:
        raise ValueError("select_sql must contain CHUNK_FILTER exactly once")
    return select_sql.replace(CHUNK_FILTER, f"{chunk_key} BETWEEN {int(low)} AND {int(high)}")


def unchunked_select(select_sql: str) -> str:
    """``select_sql`` over every key, in one statement (the chunk placeholder replaced by TRUE)."""
    return select_sql.replace(CHUNK_FILTER, "TRUE")


def missing_rows_insert(
    schema: str, table: str, columns: Sequence[str], primary_key: Sequence[str], missing_rows_sql: str
) -> str:
    """INSERT into ``table`` the rows of ``missing_rows_sql`` whose primary key ``table`` lacks.

    MySQL and MariaDB buffer the SELECT before inserting when it reads the target table."""
    if not primary_key:
        raise ValueError("filling missing rows needs a primary key")
    column_list = ", ".join(map(quote_identifier, columns))
    picked = ", ".join(f"candidate.{quote_identifier(c)}" for c in columns)
    joined = " AND ".join(f"present.{quote_identifier(k)} = candidate.{quote_identifier(k)}" for k in primary_key)
    absent = f"present.{quote_identifier(primary_key[0])} IS NULL"
    return (
        f"INSERT INTO {qualified_name(schema, table)} ({column_list})\n"
        f"SELECT {picked} FROM (\n{missing_rows_sql}\n) AS candidate\n"
        f"LEFT JOIN {qualified_name(schema, table)} AS present ON {joined}\nWHERE {absent}"
    )
