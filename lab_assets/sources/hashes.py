"""SQL over the lab's source tables that lab_assets only reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lab_assets.names import SAMPLE_MEASUREMENTS, SAMPLES
from lab_assets.sources.locations import SOURCE_COLUMNS, TableLocations
from lab_assets.sources.value_types import ValueType
from lab_assets.sql.statements import quote_identifier

SAMPLES_COLUMNS = SOURCE_COLUMNS[SAMPLES]
MEASUREMENTS_COLUMNS = SOURCE_COLUMNS[SAMPLE_MEASUREMENTS]


# The numeric columns of samples that make the second row hash (see row_hash_expressions); those of
# sample_measurements depend on the value's type (measurement_hash_expressions).
SAMPLE_NUMERIC_COLUMNS = ("id", "parent_id", "experiment_id")


# The largest prime below 2^32: the second hash's product is reduced modulo it.
HASH_PRIME = 4294967291


def row_hash_expressions(
    values: Sequence[str], numeric_values: Sequence[str], tripled: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """Two 32-bit hashes of one row, given its value expressions (SQL text); ``numeric_values``
    are those of the values that are numbers whose tripled value is exact (``tripled`` maps one
    to its exact product where ``v * 3`` is not: :meth:`ValueType.tripled`).

    The first is CRC32 of the whole row: its values joined with ',' plus one NULL flag per value
    (so NULL and '' differ). CRC32 is the only fast hash both servers have, and it is affine over
    bit strings: two rows of equal length collide exactly when their difference is a multiple of
    the CRC polynomial, and so does CRC32 of any other string that holds the same differing bytes;
    sums of such hashes are weak too (two values trading places between two rows of equal length
    leave the XOR of the four hashes unchanged, and the sum about once in 10^4 swaps).

    The second hash therefore (a) reads the numbers tripled (``5.1`` becomes ``15.300000``),
    which changes their digits non-linearly, and (b) multiplies that CRC32 by CRC32 of the other
    values plus one, modulo a prime. Values trading places between two rows then change the sum
    of products by (x1 - x2)(y1 - y2), non-zero modulo the prime unless a CRC32 collides, so a
    corrected value or a swap that collides in one hash almost never collides in the other.
    (c) The other values are read reversed (characters in reverse order) before their CRC32: two
    types of equal length with one CRC32 make the first hash collide too (the collision survives
    the row's shared prefix and suffix), so a measurement moved from one to the other would change
    neither hash; CRC32 of the reversed names is another affine map, which collides on its own
    (about once in 2^32 such pairs), not with the first.
    (d) The numbers' CRC32 ``x`` enters as ``x(x + 1) mod p``: values traded between two rows of
    one type (so the factor of (b) is the same on both) keep the sum of ``x`` when a linear
    condition on the traded bytes holds, which can be solved in milliseconds for both hashes at
    once (bench/RESULTS.md); the square leaves only a search of about 2^31 candidates. CRC32 of
    two short strings and a product cost less than a second CRC32 of the row (bench/RESULTS.md).
    Each sample's or measurement's own id is among the values, so rows that swap values between
    two ids change both hashes."""
    null_flags = ", ".join(f"ISNULL({v})" for v in values)
    row = f"CONCAT_WS(',', {', '.join(values)}, CONCAT({null_flags}))"
    products = [(tripled or {}).get(v, f"{v} * 3") for v in numeric_values]
    numbers = f"CRC32(CONCAT_WS(',', {', '.join(products)}))"
    # x(x + 1) mod p: not affine, so two rows' numbers that trade places cannot be chosen to keep
    # the sum by solving linear equations (which takes milliseconds for x alone).
    # x < 2^32, so x(x + 1) < 2^64 fits BIGINT UNSIGNED on both servers.
    mixed = f"({numbers} * ({numbers} + 1)) MOD {HASH_PRIME}"
    others = [v for v in values if v not in numeric_values]
    if not others:
        return f"CRC32({row})", mixed
    # Both factors are below 2^32 + 1, so the product fits BIGINT UNSIGNED on both servers.
    others_reversed = f"REVERSE(CONCAT_WS(',', {', '.join(others)}))"
    return f"CRC32({row})", f"({mixed} * (CRC32({others_reversed}) + 1)) MOD {HASH_PRIME}"


def measurement_hash_expressions(
    value_type: ValueType,
    sample_id: str = "m.sample_id",
    measurement_type: str = "m.measurement_type",
    value: str = "m.value",
) -> tuple[str, str]:
    """:func:`row_hash_expressions` of one measurement row ``(sample_id, type, value)`` whose
    value has ``value_type``: the value tripled where that is exact, else (text, DOUBLE, FLOAT,
    DECIMAL(65,s)) its exact text among the other values (:mod:`lab_assets.sources.value_types`).
    The same expressions over a flat cell of the same type give the same hashes as over its
    source row: the verification relies on it."""
    product = value_type.tripled(value)
    if product is None:
        return row_hash_expressions([sample_id, measurement_type, value_type.exact_text(value)], [sample_id])
    return row_hash_expressions([sample_id, measurement_type, value], [sample_id, value], {value: product})


def fingerprint_select(
    tables: TableLocations, table: str, columns: Sequence[str], value_type: ValueType | None = None
) -> str:
    """Row count and an order-independent content hash of ``table`` in one scan: the sums of
    both :func:`row_hash_expressions` over all rows. Sums (not XOR) so that an exact duplicate row
    added to a key-less table changes them, and so that two rows swapping values do not cancel.
    sample_measurements' rows are hashed as the refresh hashes them, by ``value_type``."""
    if table == SAMPLE_MEASUREMENTS:
        if value_type is None:
            raise ValueError("sample_measurements is hashed by the type of its value column")
        hash_a, hash_b = measurement_hash_expressions(value_type, *(quote_identifier(c) for c in columns))
    else:
        hash_a, hash_b = row_hash_expressions(
            [quote_identifier(c) for c in columns], [quote_identifier(c) for c in SAMPLE_NUMERIC_COLUMNS]
        )
    return (
        f"SELECT COUNT(*), COALESCE(SUM({hash_a}), 0), COALESCE(SUM({hash_b}), 0)"
        f" FROM {tables.readable(table)} AS source"
    )
