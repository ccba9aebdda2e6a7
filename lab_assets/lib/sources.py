"""SQL over the lab's source tables that lab_assets only reads."""

from __future__ import annotations

from collections.abc import Sequence

from lab_assets.lib.sql import qualified_name, quote_identifier

SAMPLES_COLUMNS = ("id", "parent_id", "experiment_id", "ts")
MEASUREMENTS_COLUMNS = ("sample_id", "measurement_type", "value")


def fingerprint_select(schema: str, table: str, columns: Sequence[str]) -> str:
    """Row count and an order-independent content hash of ``table`` in one scan.

    Each row hashes to CRC32 of its values plus one NULL flag per column; the sum
    and the XOR of two such hashes change when any value changes, when a row is added or removed,
    and (the sum) when an exact duplicate row is added, which a key-less table allows.
    """
    quoted = [quote_identifier(c) for c in columns]
    null_flags = ", ".join(f"ISNULL({c})" for c in quoted)
    row = f"CONCAT_WS(',', {', '.join(quoted)}, CONCAT({null_flags}))"
    return (
        f"SELECT COUNT(*), COALESCE(SUM(CRC32({row})), 0), COALESCE(BIT_XOR(CRC32(CONCAT('~', {row}))), 0)"
        f" FROM {qualified_name(schema, table)}"
    )


def measurement_type_catalog_select(schema: str, binary_collation: str) -> str:
    """One row per distinct measurement type as the column's own collation compares them.

    Types that the collation holds equal (``VOL`` and ``vol`` under a case-insensitive one) are
    one type; the representative kept is the greatest spelling byte-wise (``vol`` over ``VOL``),
    so the choice does not depend on row order.
    """
    if not binary_collation.replace("_", "").isalnum():
        raise ValueError(f"unexpected collation name {binary_collation!r}")
    measurements = qualified_name(schema, "sample_measurements")
    return f"""SELECT MAX(measurement_type COLLATE {binary_collation}) AS measurement_type,
  COUNT(DISTINCT sample_id) AS sample_count,
  COUNT(*) AS measurement_count
FROM {measurements}
WHERE measurement_type IS NOT NULL
GROUP BY measurement_type"""
