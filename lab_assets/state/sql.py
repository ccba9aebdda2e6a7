"""SQL for the incremental refresh.

lab_assets keeps, in its own tables, what it last saw of the sources:

* ``sample_lineage`` holds each sample's ``parent_id`` and ``experiment_id`` next to its root;
* ``sample_measurement_digests`` holds, per sample id found in ``sample_measurements``, the number
  of its measurement rows and the sums of two row hashes over them (a 64-bit digest).

A refresh finds what changed in two levels, both set-based:

1. **buckets**: one sequential scan of the source table sums row counts and row hashes per
   bucket of consecutive sample ids (:class:`BucketScheme`); buckets whose sums differ from the
   same sums over the stored state hold every change (:func:`changed_bucket_members_select`).
   A scan with a small grouping costs a fraction of joining every source row to its stored
   state. The stored side's sums are kept in a bucket table next to each state table
   (``sample_lineage_buckets_64``, ``sample_measurement_digests_buckets_4``) that always equals the
   sums over the state table: updated in the transaction that updates the state table, dropped
   before the state table is rebuilt whole and summed again after (or, if that was cut short,
   by the next refresh).
2. **ids**: only the ids of the changed buckets are compared one by one, by primary-key and
   index lookups. For measurements the candidates' live digests are read once into a work
   table: compared with the stored ones, written from there for the changed ids, and summed for
   the new bucket sums (:func:`candidate_bucket_sums_select`).

It then rebuilds only the changed rows and the subtrees under changed parents, and marks the
affected sample ids in ``lab_pending_samples``; the flat table rebuilds exactly the pending rows
and, once they are written, checks them against one snapshot of the sources, setting the digests
to that snapshot and marking rows that changed meanwhile again (lab_assets.flat_table.verification_sql).
The marker row ``FULL_REFRESH_MARKER`` in the pending table asks for a full refresh (written
when an upstream table was rebuilt whole; lab_assets.state.pending).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from lab_assets.names import (
    CANDIDATES_SUFFIX,
    CHANGES_SUFFIX,
    NEW_SUFFIX,
    helper_table,
)
from lab_assets.sources.locations import TableLocations
from lab_assets.sql.statements import Column, TableDefinition

# A work table of sample ids (candidates, changes, moved samples; also the pending table).
CHANGE_SET_DEFINITION = TableDefinition(columns=(Column("sample_id", "INT NOT NULL"),), primary_key=("sample_id",))
BUCKET_SUMS = ("row_count", "hash_a", "hash_b")
# Per bucket: the sums compared with the source (row count and the sums of both 32-bit row hashes;
# BIGINT holds the sums of up to 2^31 rows per bucket), and how many rows the state table holds
# in the bucket, so the state table's row count is a sum over the small bucket table.
BUCKET_SUMS_DEFINITION = TableDefinition(
    columns=(
        Column("bucket", "BIGINT NOT NULL"),
        *(Column(c, "BIGINT NOT NULL") for c in BUCKET_SUMS),
        Column("state_rows", "BIGINT NOT NULL"),
    ),
    primary_key=("bucket",),
)


_DIGITS = " UNION ALL ".join(f"SELECT {i} AS digit" for i in range(8))


@dataclass(frozen=True)
class BucketScheme:
    """Buckets of ``width`` consecutive sample ids."""

    width: int
    # Shifts every INT id to a non-negative number first, so DIV (which truncates toward zero)
    # puts exactly ``width`` ids in every bucket, negative ids included.
    id_shift: int = 2**31

    def __post_init__(self) -> None:
        """A bucket holds 2 to 8**4 ids; ``ValueError`` otherwise."""
        if not 2 <= self.width <= 8**4:
            raise ValueError(f"bucket width must be between 2 and {8**4}, got {self.width}")

    def bucket_of(self, id_sql: str) -> str:
        """The bucket of the id ``id_sql``, as SQL."""
        return f"({id_sql} + {self.id_shift}) DIV {self.width}"

    def member_id(self, bucket_sql: str, offset_sql: str) -> str:
        """The id at ``offset_sql`` in bucket ``bucket_sql``, as SQL (the inverse of :meth:`bucket_of`)."""
        return f"{bucket_sql} * {self.width} - {self.id_shift} + {offset_sql}"

    def offsets(self) -> str:
        """A derived table of the offsets 0 .. width-1 (column ``offset_in_bucket``): octal digits
        cross-joined, the offsets past the width filtered out."""
        digits = max(1, math.ceil(math.log(self.width, 8) - 1e-9))
        tables = " CROSS JOIN ".join(f"({_DIGITS}) AS d{i}" for i in range(digits))
        offset = " + ".join(f"d{i}.digit * {8**i}" for i in range(digits))
        return f"(SELECT {offset} AS offset_in_bucket FROM {tables} WHERE {offset} < {self.width})"

    def table_for(self, state_table: str) -> str:
        """The bucket table of ``state_table``; named with the width, so a table summed with
        another width is never read as this one."""
        return f"{state_table}_buckets_{self.width}"


# A measurement row's hashes depend on the type of its value (lab_assets.sources.value_types): each
# builder below takes it. A lab that changes that type changes every stored digest's hash (the
# value's text changes, or the formula): the refresh then finds every sample with measurements
# changed and rebuilds the digests whole (more than a quarter of the samples), as it did after
# earlier changes of the formula.


def differing_keys_select(key: str, sums: tuple[str, ...], live_sql: str, stored_sql: str) -> str:
    """Keys whose ``sums`` columns differ between two SELECTs that each give at most one row per
    key and name their columns ``key`` and ``sums``: the stored side is subtracted from the live
    side and the keys whose sums do not all cancel are returned. A key on one side only always
    differs, because its row count (the first of ``sums``) is at least 1."""
    negated = ", ".join(f"-{c}" for c in sums)
    differs = " OR ".join(f"SUM({c}) <> 0" for c in sums)
    return f"""SELECT {key} FROM (
SELECT * FROM (
{live_sql}
) AS live_side
UNION ALL
SELECT {key}, {negated} FROM (
{stored_sql}
) AS stored_side
) AS both_sides
GROUP BY {key}
HAVING {differs}"""


def changed_bucket_members_select(
    tables: TableLocations, scheme: BucketScheme, live_sums_select: str, buckets_table: str
) -> str:
    """Every sample id of the buckets whose live sums (``live_sums_select``, one scan of a source
    table, kept in the server's in-memory temporary tables) differ from ``buckets_table``: the
    candidates the second level compares one by one."""
    differing = differing_keys_select(
        "bucket",
        BUCKET_SUMS,
        live_sums_select,
        f"SELECT bucket, {', '.join(BUCKET_SUMS)} FROM {tables.qualified(buckets_table)}",
    )
    return f"""SELECT {scheme.member_id("b.bucket", "o.offset_in_bucket")} AS sample_id
FROM (
{differing}
) AS b CROSS JOIN {scheme.offsets()} AS o"""


def _buckets_of_ids(tables: TableLocations, scheme: BucketScheme, id_tables: tuple[str, ...]) -> str:
    """The distinct buckets of the sample ids in the work tables ``id_tables``."""
    ids = " UNION ALL ".join(f"SELECT sample_id FROM {tables.qualified(t)}" for t in id_tables)
    return f"SELECT DISTINCT {scheme.bucket_of('ids.sample_id')} AS bucket FROM ({ids}) AS ids"


def touched_buckets(tables: TableLocations, scheme: BucketScheme, id_tables: tuple[str, ...]) -> tuple[str, str, str]:
    """FROM items, join condition and GROUP BY key to sum a state table (alias ``state``, key
    ``sample_id``) over all buckets (no ``id_tables``), or over the buckets of the ids in them."""
    if not id_tables:
        return "", "", scheme.bucket_of("state.sample_id")
    touched = f"""({_buckets_of_ids(tables, scheme, id_tables)}) AS touched
CROSS JOIN {scheme.offsets()} AS o
JOIN """
    return (
        touched,
        f" ON state.sample_id = {scheme.member_id('touched.bucket', 'o.offset_in_bucket')}",
        "touched.bucket",
    )


def state_row_count_select(tables: TableLocations, buckets_table: str) -> str:
    """The number of rows of a state table, summed over its bucket table (which equals the sums
    over the state table; kept in the same transaction)."""
    return f"SELECT COALESCE(SUM(state_rows), 0) FROM {tables.qualified(buckets_table)}"


def bucket_table_build_statements(tables: TableLocations, buckets_table: str, stored_sums_select) -> tuple[str, ...]:
    """(Re)build the bucket table from the whole state table (``stored_sums_select(tables)``),
    aside and renamed in, so an interrupted build leaves no partial table."""
    staging_table = helper_table(buckets_table, NEW_SUFFIX)
    staging = tables.qualified(staging_table)
    return (
        f"DROP TABLE IF EXISTS {staging}",
        BUCKET_SUMS_DEFINITION.create_statement(tables.output_database, staging_table),
        f"INSERT INTO {staging} {stored_sums_select(tables)}",
        f"DROP TABLE IF EXISTS {tables.qualified(buckets_table)}",
        f"RENAME TABLE {staging} TO {tables.qualified(buckets_table)}",
    )


def bucket_table_update_statements(
    tables: TableLocations, scheme: BucketScheme, buckets_table: str, id_tables: tuple[str, ...], new_sums_select: str
) -> tuple[str, ...]:
    """Bring the bucket table up to date for the buckets of the ids in the work tables
    ``id_tables``: their rows are replaced by ``new_sums_select`` (the same sums over the state
    table just written); run in the write's transaction. A bucket left without state rows
    disappears. Callers pass the candidates (every bucket whose sums differed) as well as the
    changed ids, so a bucket whose stored sums are stale but whose ids all compare equal (sums
    of an older hash, say) is repaired instead of being compared id by id on every refresh."""
    buckets = tables.qualified(buckets_table)
    return (
        f"""DELETE b FROM {buckets} AS b
JOIN ({_buckets_of_ids(tables, scheme, id_tables)}) AS touched
ON touched.bucket = b.bucket""",
        f"INSERT INTO {buckets} {new_sums_select}",
    )


@dataclass(frozen=True, kw_only=True)
class StateTable:
    """A table recording what the last refresh saw of a source, kept with a bucket table of sums.

    ``stored_sums_select(tables)`` sums the whole state table per bucket (how the bucket table is
    built from scratch). ``extra_role`` names the third work table: ``moved`` samples for lineage,
    the candidates' ``live`` digests for digests."""

    name: str
    definition: TableDefinition
    buckets: BucketScheme
    stored_sums_select: Callable[[TableLocations], str]
    extra_role: str

    @property
    def buckets_table(self) -> str:
        """The state table's bucket table, named with its width."""
        return self.buckets.table_for(self.name)

    @property
    def candidates_table(self) -> str:
        """Every sample id of the buckets whose live sums differ from the stored ones."""
        return helper_table(self.name, CANDIDATES_SUFFIX)

    @property
    def changes_table(self) -> str:
        """The changed sample ids among the candidates (the rows to rewrite)."""
        return helper_table(self.name, CHANGES_SUFFIX)

    @property
    def extra_table(self) -> str:
        """The third work table (``extra_role``: moved samples for lineage, live digests for digests)."""
        return helper_table(self.name, self.extra_role)

    @property
    def work_tables(self) -> tuple[str, ...]:
        """Every work table of a refresh, dropped once the write is done."""
        return (self.candidates_table, self.changes_table, self.extra_table)
