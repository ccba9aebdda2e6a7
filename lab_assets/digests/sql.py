"""SQL of ``sample_measurement_digests``: per sample, the number of its measurement rows and the
sums of two row hashes over them (a 64-bit digest), and how a refresh finds the samples whose
measurements changed (the two-level comparison of lab_assets.state.sql: bucket sums, then ids)."""

from __future__ import annotations

from lab_assets.names import LIVE_SUFFIX, SAMPLE_MEASUREMENT_DIGESTS
from lab_assets.sources.hashes import measurement_hash_expressions
from lab_assets.sources.locations import TableLocations
from lab_assets.sources.value_types import ValueType
from lab_assets.sql.bulk import CHUNK_FILTER, BulkBuild
from lab_assets.sql.statements import Column, TableDefinition
from lab_assets.state.sql import BucketScheme, RowSums, StateTable, differing_keys_select

DIGEST_TABLE_DEFINITION = TableDefinition(
    columns=(
        Column("sample_id", "INT NOT NULL", "The sample whose measurements the row summarizes."),
        Column(
            "measurement_rows", "BIGINT NOT NULL", "How many rows of sample_measurements the sample had when last read."
        ),
        Column(
            "digest_a",
            "BIGINT NOT NULL",
            "Sum of one CRC32 hash of each of the sample's measurement rows, as last"
            " read: a changed, added or deleted measurement changes it.",
        ),
        Column(
            "digest_b",
            "BIGINT NOT NULL",
            "Sum of a second, independent CRC32 hash of the same rows, so that two changes cancelling"
            " out in digest_a are still seen.",
        ),
    ),
    primary_key=("sample_id",),
)

# With changes spread evenly over 1% of the samples, 4 ids per bucket leaves most buckets
# unchanged; the scan that sums the measurements into buckets costs the same for 8, 4 and 2 ids
# per bucket (bench/RESULTS.md), while fewer candidates make the id-by-id step cheaper. Sample
# changes cluster (new samples at the end, a few moves), so lineage takes wider buckets and a
# smaller bucket table.
MEASUREMENT_BUCKETS = BucketScheme(4)
# What a digest row adds to its bucket's sums: its sample's measurement rows and digests, which are
# the sums of the measurement rows' hashes (measurement_bucket_sums_select sums them per bucket).
DIGEST_ROW_SUMS = RowSums("state.measurement_rows", "state.digest_a", "state.digest_b")

_DIGEST_SUMS = ("measurement_rows", "digest_a", "digest_b")


def measurement_digest_select(tables: TableLocations, value_type: ValueType, only_samples_in: str | None = None) -> str:
    """Per sample id in ``sample_measurements`` (orphans too; rows without a sample id are never
    in the flat table): its row count and the sums of both row hashes. With ``only_samples_in``
    (a work table of sample ids) only those, by index lookups. ``CHUNK_FILTER`` lets a bulk build
    run it in ranges of sample ids (:func:`digest_bulk_build`)."""
    measurements = tables.sample_measurements
    if only_samples_in:
        source = f"{tables.qualified(only_samples_in)} AS c JOIN {measurements} AS m ON m.sample_id = c.sample_id"
    else:
        source = f"{measurements} AS m"
    hash_a, hash_b = measurement_hash_expressions(value_type)
    return f"""SELECT m.sample_id, COUNT(*) AS measurement_rows,
  SUM({hash_a}) AS digest_a, SUM({hash_b}) AS digest_b
FROM {source}
WHERE m.sample_id IS NOT NULL AND {CHUNK_FILTER}
GROUP BY m.sample_id"""


def digest_bulk_build(tables: TableLocations, value_type: ValueType) -> BulkBuild:
    """The whole digest table in ranges of sample ids on two connections, each range read in
    sample-id order through the index: measured faster than one scan that groups a million ids
    in a temporary table."""
    return BulkBuild(
        select_sql=measurement_digest_select(tables, value_type),
        chunk_key="m.sample_id",
        chunk_bounds_sql=f"SELECT MIN(m.sample_id), MAX(m.sample_id) FROM {tables.sample_measurements} AS m",
        parallel=2,
    )


def measurement_bucket_sums_select(tables: TableLocations, value_type: ValueType) -> str:
    """Bucket sums (:data:`BUCKET_SUMS_DEFINITION`) of ``sample_measurements``: one sequential scan."""
    hash_a, hash_b = measurement_hash_expressions(value_type)
    return f"""SELECT {MEASUREMENT_BUCKETS.bucket_of("m.sample_id")} AS bucket, COUNT(*) AS row_count,
  SUM({hash_a}) AS hash_a, SUM({hash_b}) AS hash_b
FROM {tables.sample_measurements} AS m WHERE m.sample_id IS NOT NULL GROUP BY bucket ORDER BY NULL"""


def candidate_bucket_sums_select(tables: TableLocations, live_digests_table: str) -> str:
    """The new sums of every candidate bucket, from the candidates' live digests alone: every id
    of a candidate bucket is a candidate, and once the changed digests are written from the live
    ones (and the ids without measurements deleted), the stored digests of those buckets are the
    live digests. So the bucket table needs no lookups into the digest table."""
    # The live digests have the digest table's columns: summed as its rows are (alias ``state``).
    bucket = MEASUREMENT_BUCKETS.bucket_of("state.sample_id")
    return f"""SELECT {bucket} AS bucket, {DIGEST_ROW_SUMS.sums()}
FROM {tables.qualified(live_digests_table)} AS state GROUP BY {bucket}"""


def candidate_digests_select(tables: TableLocations, candidates_table: str, value_type: ValueType) -> str:
    """The live digests (:data:`DIGEST_TABLE_DEFINITION`) of the candidate ids that have
    measurements, by index lookups: compared with the stored digests by
    :func:`changed_measurement_samples_select`, then written for the changed ones as they are, so
    each candidate's measurements are read once."""
    return measurement_digest_select(tables, value_type, only_samples_in=candidates_table)


def changed_measurement_samples_select(tables: TableLocations, candidates_table: str, live_digests_table: str) -> str:
    """Of the candidate ids, those whose measurements were added, changed or deleted since the
    stored digests: live digests (``live_digests_table``, see :func:`candidate_digests_select`)
    and stored ones compared by primary-key lookups."""
    stored = f"""SELECT d.sample_id, d.measurement_rows, d.digest_a, d.digest_b
FROM {tables.qualified(candidates_table)} AS c
JOIN {tables.qualified(SAMPLE_MEASUREMENT_DIGESTS)} AS d ON d.sample_id = c.sample_id"""
    live = f"SELECT sample_id, measurement_rows, digest_a, digest_b FROM {tables.qualified(live_digests_table)}"
    return differing_keys_select("sample_id", _DIGEST_SUMS, live, stored)


def changed_digests_select(tables: TableLocations, live_digests_table: str, changes_table: str) -> str:
    """The new digest rows of the changed samples: their live digests as compared."""
    return f"""SELECT live.sample_id, live.measurement_rows, live.digest_a, live.digest_b
FROM {tables.qualified(changes_table)} AS c
JOIN {tables.qualified(live_digests_table)} AS live ON live.sample_id = c.sample_id"""


DIGEST_STATE = StateTable(
    name=SAMPLE_MEASUREMENT_DIGESTS,
    definition=DIGEST_TABLE_DEFINITION,
    buckets=MEASUREMENT_BUCKETS,
    row_sums=DIGEST_ROW_SUMS,
    extra_role=LIVE_SUFFIX,
)
