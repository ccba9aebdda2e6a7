"""Exact incremental refresh: build, change the sources, refresh, and compare the whole table with
the independent recomputation. Each change kind on its own, then all of them mixed."""

from __future__ import annotations

import zlib
from collections import defaultdict
from decimal import Decimal

import pytest

from lab_assets.lib.names import FULL_REBUILD_TAG as REFRESH_TAG
from lab_assets.lib.names import SAMPLE_MEASUREMENT_DIGESTS as DIGEST_TABLE
from lab_assets.lib.refresh import LINEAGE_BUCKETS, MEASUREMENT_BUCKETS, BucketScheme
from lab_assets.lib.sources import HASH_PRIME
from lab_assets.refresh.state_tables import DIGEST_STATE, LINEAGE_STATE
from lab_assets_tests.lab_data import assert_flat_table_is_exact, generate, insert

DIGEST_BUCKETS_TABLE, LINEAGE_BUCKETS_TABLE = DIGEST_STATE.buckets_table, LINEAGE_STATE.buckets_table

BASE_SAMPLES = 3_000


def _refresh_and_compare(db, tags=None):
    result = db.materialize_all(tags=tags)
    with db.connect() as connection:
        assert_flat_table_is_exact(connection)
    _assert_refresh_state_is_exact(db)
    materializations = {
        e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()
    }
    for table in ("sample_lineage", DIGEST_TABLE, "experiment_measurements"):
        # Exact even where it is summed from a bucket table instead of counted.
        assert (
            materializations[table].metadata["dagster/row_count"].value
            == db.query(f"SELECT COUNT(*) FROM {table}")[0][0]
        )
    return materializations["experiment_measurements"].metadata["refresh"].value


def _row_hashes(values, numeric_values, other_values=()) -> tuple[int, int]:
    """The row hashes of lib/sources.row_hash_expressions, recomputed in Python: CONCAT_WS skips
    NULLs, DECIMAL(16,6) prints with six decimals (also tripled), the NULL flags follow;
    ``other_values`` are the values that are not numbers."""
    row = ",".join([str(v) for v in values if v is not None] + ["".join("1" if v is None else "0" for v in values)])
    numbers = zlib.crc32(",".join(str(v * 3) for v in numeric_values if v is not None).encode())
    if not other_values:
        return zlib.crc32(row.encode()), numbers
    others_hash = zlib.crc32(",".join(str(v) for v in other_values if v is not None).encode())
    return zlib.crc32(row.encode()), numbers * (others_hash + 1) % HASH_PRIME


def _bucket_sums(rows, width) -> dict[int, tuple[int, int, int, int]]:
    """{bucket: (row count, sum of hash_a, sum of hash_b, state rows)} of the state rows
    (sample_id, count, hash_a, hash_b)."""
    sums = defaultdict(lambda: (0, 0, 0, 0))
    for sample_id, count, hash_a, hash_b in rows:
        bucket = (sample_id + 2**31) // width
        total = sums[bucket]
        sums[bucket] = (total[0] + count, total[1] + hash_a, total[2] + hash_b, total[3] + 1)
    return dict(sums)


def _assert_refresh_state_is_exact(db) -> None:
    """What the next refresh diffs against is exact, whole: the digests equal a Python
    recomputation from the sources, and each bucket table equals the sums over its state table."""
    expected_digests = defaultdict(lambda: (0, 0, 0))
    for sample_id, measurement_type, value in db.query(
        "SELECT sample_id, measurement_type, value FROM sample_measurements"
    ):
        if sample_id is not None:
            count, a, b = expected_digests[sample_id]
            hash_a, hash_b = _row_hashes((sample_id, measurement_type, value), (sample_id, value), (measurement_type,))
            expected_digests[sample_id] = (count + 1, a + hash_a, b + hash_b)
    digests = {row[0]: tuple(int(v) for v in row[1:]) for row in db.query(f"SELECT * FROM {DIGEST_TABLE}")}
    assert digests == dict(expected_digests)
    digest_buckets = {
        row[0]: tuple(int(v) for v in row[1:]) for row in db.query(f"SELECT * FROM {DIGEST_BUCKETS_TABLE}")
    }
    assert digest_buckets == _bucket_sums([(k, *v) for k, v in digests.items()], MEASUREMENT_BUCKETS.width)

    lineage = db.query("SELECT sample_id, parent_id, experiment_id FROM sample_lineage")
    assert sorted(lineage) == sorted(db.query("SELECT id, parent_id, experiment_id FROM samples"))
    lineage_buckets = {
        row[0]: tuple(int(v) for v in row[1:]) for row in db.query(f"SELECT * FROM {LINEAGE_BUCKETS_TABLE}")
    }
    assert lineage_buckets == _bucket_sums(
        [(i, 1, *_row_hashes((i, p, e), (i, p, e))) for i, p, e in lineage], LINEAGE_BUCKETS.width
    )


@pytest.fixture
def built_db(lab_db):
    with lab_db.connect() as connection:
        insert(connection, *generate(BASE_SAMPLES))
    assert _refresh_and_compare(lab_db).startswith("full")
    return lab_db


def _max_id(db):
    return db.query("SELECT MAX(id) FROM samples")[0][0]


def new_samples(db):
    samples, measurements = generate(50, first_id=_max_id(db) + 1, seed=7)
    with db.connect() as connection:
        insert(connection, samples, measurements)


def late_measurements(db):
    db.execute("INSERT INTO sample_measurements VALUES (1, 'vol', 1.5), (4, 'ph', 6.25), (500, 'ph', 3.125)")


def changed_values(db):
    db.execute(
        "UPDATE sample_measurements SET value = value + 1 WHERE sample_id IN (2, 9, 700) AND measurement_type = 'ph'"
    )


def deleted_measurements(db):
    db.execute("DELETE FROM sample_measurements WHERE sample_id IN (3, 12, 900)")


def swapped_values(db):
    # Samples 2 and 3 trade their pH values: the same rows by (type, value), now on other samples
    # of one bucket, so only hashes that include the sample id see it.
    db.execute(
        "UPDATE sample_measurements SET value = CASE sample_id WHEN 2 THEN 7.0 ELSE 5.0 END"
        " WHERE sample_id IN (2, 3) AND measurement_type = 'ph'"
    )


def swapped_parents(db):
    # Samples 6 and 14 (one lineage bucket) trade parents: subtrees under 2 and 13 trade places.
    db.execute("UPDATE samples SET parent_id = CASE id WHEN 6 THEN 13 ELSE 2 END WHERE id IN (6, 14)")


def brand_new_type(db):
    db.execute("INSERT INTO sample_measurements VALUES (5, 'temp', 21.5), (1000, 'temp', 19)")


def moved_subtree(db):
    # Sample 2 (root 1, with children 6 and 9 and their subtrees) moves under root 13; a generated
    # sample moves under root 5.
    db.execute("UPDATE samples SET parent_id = 13 WHERE id = 2", "UPDATE samples SET parent_id = 5 WHERE id = 1500")


def deleted_samples(db):
    # ON DELETE CASCADE removes the subtree and its measurements, as the lab system would.
    db.execute("DELETE FROM samples WHERE id IN (17, 2500)")


def deep_chain(db):
    first = _max_id(db) + 1
    chain = [(first, None, 3)] + [(n, n - 1, 3) for n in range(first + 1, first + 5_000)]
    with db.connect() as connection:
        insert(connection, chain, [(first + 4_999, "vol", Decimal("2.5"))])


CHANGES = [
    new_samples,
    late_measurements,
    changed_values,
    swapped_values,
    deleted_measurements,
    brand_new_type,
    moved_subtree,
    swapped_parents,
    deleted_samples,
    deep_chain,
]


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__)
def test_each_change_kind_is_refreshed_exactly(built_db, change):
    change(built_db)
    mode = _refresh_and_compare(built_db)
    if change is brand_new_type:
        assert mode == "full (measurement columns changed)"
    elif change is not deep_chain:  # 5,000 new samples are over the incremental threshold
        assert mode == "incremental", mode


def test_all_changes_mixed_then_a_quiet_refresh(built_db):
    for change in CHANGES:
        if change is not deep_chain:
            change(built_db)
    _refresh_and_compare(built_db)
    built_db.execute("UPDATE samples SET experiment_id = 99 WHERE id = 20")
    assert _refresh_and_compare(built_db) == "incremental"
    assert _refresh_and_compare(built_db) == "incremental"
    assert built_db.query("SELECT COUNT(*) FROM lab_pending_samples") == [(0,)]


def test_full_rebuild_tag_rebuilds_whole(built_db):
    changed_values(built_db)
    assert _refresh_and_compare(built_db, tags={REFRESH_TAG: "full"}) == "full (full rebuild requested)"


def test_values_traded_between_two_types_of_one_sample_are_refreshed(built_db):
    # Sample 2's vol and ph trade values. These two values are ones for which CRC32 of the rows
    # (affine) sums to the same before and after the trade; a second hash that does not mix the
    # type with the value (as an earlier version's did not) then misses the trade altogether.
    built_db.execute(
        "UPDATE sample_measurements SET value = CASE measurement_type WHEN 'vol' THEN 1.513785 ELSE 8.988472 END"
        " WHERE sample_id = 2 AND measurement_type IN ('vol', 'ph')"
    )
    assert _refresh_and_compare(built_db) == "incremental"
    built_db.execute(
        "UPDATE sample_measurements SET value = CASE measurement_type WHEN 'vol' THEN 8.988472 ELSE 1.513785 END"
        " WHERE sample_id = 2 AND measurement_type IN ('vol', 'ph')"
    )
    assert _refresh_and_compare(built_db) == "incremental"


def test_stale_bucket_sums_are_repaired_by_the_next_refresh(built_db):
    # Sums no longer matching their state table (as after a change of the row hash): every
    # bucket differs, no id does; the refresh rewrites those buckets instead of leaving them to be
    # compared id by id on every later refresh.
    built_db.execute(
        f"UPDATE {LINEAGE_BUCKETS_TABLE} SET hash_b = hash_b + 1",
        f"UPDATE {DIGEST_BUCKETS_TABLE} SET hash_a = hash_a + 1",
    )
    assert _refresh_and_compare(built_db) == "incremental"


def test_refresh_touches_only_changed_rows(built_db):
    ((touched,),) = built_db.query(
        "SELECT COUNT(DISTINCT sample_id) FROM sample_measurements"
        " WHERE sample_id IN (2, 9, 700) AND measurement_type = 'ph'"
    )
    changed_values(built_db)
    result = built_db.materialize_all()
    metadata = result.asset_materializations_for_node("experiment_measurements")[0].metadata
    assert touched >= 2 and metadata["rows_written"].value == touched
    assert metadata["dagster/row_count"].value == BASE_SAMPLES + 20


@pytest.mark.parametrize(
    "scheme", [MEASUREMENT_BUCKETS, LINEAGE_BUCKETS, BucketScheme(9)], ids=lambda s: f"width_{s.width}"
)
def test_bucket_sql_lists_each_id_in_exactly_one_bucket(empty_lab_db, scheme):
    width = scheme.width
    for sample_id in (-(2**31), -width - 1, -1, 0, 1, width - 1, width, 2**31 - 1):
        members = empty_lab_db.query(
            f"SELECT {scheme.member_id(scheme.bucket_of('%s'), 'o.offset_in_bucket')} AS member_id,"
            f" {scheme.bucket_of(scheme.member_id(scheme.bucket_of('%s'), 'o.offset_in_bucket'))} AS member_bucket"
            f" FROM {scheme.offsets()} AS o ORDER BY member_id",
            (sample_id, sample_id),
        )
        ids = [int(m) for m, _ in members]
        assert sample_id in ids and ids == list(range(ids[0], ids[0] + width)), (sample_id, ids[:3])
        assert len({b for _, b in members}) == 1
