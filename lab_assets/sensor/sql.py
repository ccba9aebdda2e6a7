"""SQL of the sensor's totals: the sources summed as the refresh hashes them, beside the same
sums over what the state tables recorded (their small bucket tables)."""

from __future__ import annotations

from lab_assets.digests.sql import DIGEST_STATE
from lab_assets.lineage.sql import LINEAGE_STATE, SAMPLE_HASH_A, SAMPLE_HASH_B
from lab_assets.sources.hashes import measurement_hash_expressions
from lab_assets.sources.locations import TableLocations
from lab_assets.sources.value_types import ValueType


def source_totals_selects(tables: TableLocations, value_type: ValueType) -> tuple[str, str]:
    """Row count and hash sums of ``samples`` and of ``sample_measurements`` (rows with a sample
    id) as the refresh hashes them, one scan each: equal to :func:`recorded_totals_selects` when
    the state tables record exactly the sources (the sums over all buckets). ``value_type``:
    sample_measurements.value's, as the digests were hashed."""
    measurement_a, measurement_b = measurement_hash_expressions(value_type)
    return (
        f"SELECT COUNT(*), COALESCE(SUM({SAMPLE_HASH_A}), 0), COALESCE(SUM({SAMPLE_HASH_B}), 0)"
        f" FROM {tables.samples} AS s",
        f"SELECT COUNT(*), COALESCE(SUM({measurement_a}), 0), COALESCE(SUM({measurement_b}), 0)"
        f" FROM {tables.sample_measurements} AS m WHERE m.sample_id IS NOT NULL",
    )


def recorded_totals_selects(tables: TableLocations) -> tuple[str, str]:
    """The same totals over what ``sample_lineage`` and ``sample_measurement_digests`` recorded,
    summed from their small bucket tables."""
    totals = "SELECT COALESCE(SUM(row_count), 0), COALESCE(SUM(hash_a), 0), COALESCE(SUM(hash_b), 0) FROM"
    return (
        f"{totals} {tables.qualified(LINEAGE_STATE.buckets_table)}",
        f"{totals} {tables.qualified(DIGEST_STATE.buckets_table)}",
    )
