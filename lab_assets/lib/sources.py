"""SQL over the lab's source tables that lab_assets only reads."""

from __future__ import annotations

from collections.abc import Sequence

from lab_assets.lib.sql import qualified_name, quote_identifier

SAMPLES_COLUMNS = ("id", "parent_id", "experiment_id", "ts")
MEASUREMENTS_COLUMNS = ("sample_id", "measurement_type", "value")


def row_hash_expressions(values: Sequence[str]) -> tuple[str, str]:
    """Two 32-bit hashes of one row, given its value expressions (SQL text).

    The row is its values joined with ',' plus one NULL flag per value (so NULL and '' differ).
    CRC32 is the only fast hash both servers have, and it is affine over bit strings: for rows of
    equal length, CRC32 of a prefixed copy collides exactly when CRC32 of the row does. The second
    hash therefore mixes the first one's decimal text into the row, which is not affine, so the
    two collide independently (a 64-bit hash for the price of two CRC32 calls)."""
    null_flags = ", ".join(f"ISNULL({v})" for v in values)
    row = f"CONCAT_WS(',', {', '.join(values)}, CONCAT({null_flags}))"
    return f"CRC32({row})", f"CRC32(CONCAT(CRC32({row}), {row}))"


def fingerprint_select(schema: str, table: str, columns: Sequence[str]) -> str:
    """Row count and an order-independent content hash of ``table`` in one scan: the sums of
    both :func:`row_hash_expressions` over all rows. Sums (not XOR) so that an exact duplicate row
    added to a key-less table changes them, and so that two rows swapping values do not cancel."""
    hash_a, hash_b = row_hash_expressions([quote_identifier(c) for c in columns])
    return (
        f"SELECT COUNT(*), COALESCE(SUM({hash_a}), 0), COALESCE(SUM({hash_b}), 0)"
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
