"""SQL over the lab's source tables that lab_assets only reads."""

from __future__ import annotations

from collections.abc import Sequence

from lab_assets.lib.sql import qualified_name, quote_identifier

SAMPLES_COLUMNS = ("id", "parent_id", "experiment_id", "ts")
MEASUREMENTS_COLUMNS = ("sample_id", "measurement_type", "value")


# Per source table, the numeric columns that make the second row hash (see row_hash_expressions).
NUMERIC_COLUMNS = {"samples": ("id", "parent_id", "experiment_id"), "sample_measurements": ("sample_id", "value")}


def row_hash_expressions(values: Sequence[str], numeric_values: Sequence[str]) -> tuple[str, str]:
    """Two 32-bit hashes of one row, given its value expressions (SQL text); ``numeric_values``
    are those of the values that are numbers.

    The first is CRC32 of the whole row: its values joined with ',' plus one NULL flag per value
    (so NULL and '' differ). CRC32 is the only fast hash both servers have, and it is affine over
    bit strings: two rows of equal length collide exactly when their difference is a multiple of
    the CRC polynomial, and so does CRC32 of any other string that holds the same differing bytes.
    The second hash therefore reads the numbers tripled (``5.1`` becomes ``15.300000``), which
    changes their digits non-linearly, so a corrected value that collides in one hash almost
    never collides in the other. Tripling and CRC32 of a short string cost less than a second
    CRC32 of the row (measured at 1M samples, bench/RESULTS.md). Each sample's or measurement's
    own id is among the values, so rows that swap values between two ids change both hashes."""
    null_flags = ", ".join(f"ISNULL({v})" for v in values)
    row = f"CONCAT_WS(',', {', '.join(values)}, CONCAT({null_flags}))"
    tripled = ", ".join(f"{v} * 3" for v in numeric_values)
    return f"CRC32({row})", f"CRC32(CONCAT_WS(',', {tripled}))"


def fingerprint_select(schema: str, table: str, columns: Sequence[str]) -> str:
    """Row count and an order-independent content hash of ``table`` in one scan: the sums of
    both :func:`row_hash_expressions` over all rows. Sums (not XOR) so that an exact duplicate row
    added to a key-less table changes them, and so that two rows swapping values do not cancel."""
    hash_a, hash_b = row_hash_expressions(
        [quote_identifier(c) for c in columns], [quote_identifier(c) for c in NUMERIC_COLUMNS[table]]
    )
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
