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
   sums over the state table: updated in the transaction that updates the state table (by delta,
   lab_assets.state.bucket_sql), dropped before the state table is rebuilt whole and summed again
   after (or, if that was cut short, by the next refresh).
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
from dataclasses import dataclass

from lab_assets.names import CANDIDATES_SUFFIX, CHANGES_SUFFIX, helper_table
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


def buckets_of_ids_select(
    tables: TableLocations, scheme: BucketScheme, id_tables: tuple[str, ...], except_buckets_of: tuple[str, ...] = ()
) -> str:
    """The distinct buckets of the sample ids in the work tables ``id_tables``, but those of the
    ids in ``except_buckets_of``."""
    ids = " UNION ALL ".join(f"SELECT sample_id FROM {tables.qualified(t)}" for t in id_tables)
    bucket = scheme.bucket_of("ids.sample_id")
    if not except_buckets_of:
        return f"SELECT DISTINCT {bucket} AS bucket FROM ({ids}) AS ids"
    return f"""SELECT DISTINCT {bucket} AS bucket FROM ({ids}) AS ids
WHERE {bucket} NOT IN ({buckets_of_ids_select(tables, scheme, except_buckets_of)})"""


def touched_buckets(
    tables: TableLocations, scheme: BucketScheme, id_tables: tuple[str, ...], except_buckets_of: tuple[str, ...] = ()
) -> tuple[str, str, str]:
    """FROM items, join condition and GROUP BY key to sum a state table (alias ``state``, key
    ``sample_id``) over all buckets (no ``id_tables``), or over the buckets of the ids in them but
    those of the ids in ``except_buckets_of``."""
    if not id_tables:
        return "", "", scheme.bucket_of("state.sample_id")
    touched = f"""({buckets_of_ids_select(tables, scheme, id_tables, except_buckets_of)}) AS touched
CROSS JOIN {scheme.offsets()} AS o
JOIN """
    return (
        touched,
        f" ON state.sample_id = {scheme.member_id('touched.bucket', 'o.offset_in_bucket')}",
        "touched.bucket",
    )


@dataclass(frozen=True)
class RowSums:
    """What one row of a state table (alias ``state``) adds to its bucket's sums, as SQL: its
    count of source rows and its two hashes. Both the whole sums and the delta sums
    (lab_assets.state.bucket_sql) read this one definition, so they always agree."""

    row_count: str
    hash_a: str
    hash_b: str

    def sums(self) -> str:
        """The columns of :data:`BUCKET_SUMS_DEFINITION` after ``bucket``, over a group of state rows."""
        return (
            f"SUM({self.row_count}) AS row_count, SUM({self.hash_a}) AS hash_a, SUM({self.hash_b}) AS hash_b,"
            " COUNT(*) AS state_rows"
        )


@dataclass(frozen=True, kw_only=True)
class StateTable:
    """A table recording what the last refresh saw of a source, kept with a bucket table of sums.

    ``row_sums`` is what each of its rows adds to its bucket's sums. ``extra_role`` names the third
    work table: ``moved`` samples for lineage, the candidates' ``live`` digests for digests."""

    name: str
    definition: TableDefinition
    buckets: BucketScheme
    row_sums: RowSums
    extra_role: str

    def stored_sums_select(
        self, tables: TableLocations, only_buckets_of: tuple[str, ...] = (), except_buckets_of: tuple[str, ...] = ()
    ) -> str:
        """Bucket sums (:data:`BUCKET_SUMS_DEFINITION`) over the state table: all buckets (how the
        bucket table is built from scratch), or those of the ids in the work tables
        ``only_buckets_of`` but those of the ids in ``except_buckets_of``, every id of those
        buckets looked up."""
        touched, on, bucket = touched_buckets(tables, self.buckets, only_buckets_of, except_buckets_of)
        return f"""SELECT {bucket} AS bucket, {self.row_sums.sums()}
FROM {touched}{tables.qualified(self.name)} AS state{on} GROUP BY {bucket}"""

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
