"""Exact incremental refresh: build, change the sources, refresh, and compare the whole table with
the independent recomputation. Each change kind on its own, then all of them mixed."""

from __future__ import annotations

import math
import random
import threading
import time
import zlib
from decimal import Decimal

import pytest

from lab_assets.digests.sql import DIGEST_STATE, MEASUREMENT_BUCKETS, measurement_bucket_sums_select
from lab_assets.lineage.sql import LINEAGE_BUCKETS, LINEAGE_STATE
from lab_assets.names import FULL_REFRESH_TAG as REFRESH_TAG
from lab_assets.names import SAMPLE_MEASUREMENT_DIGESTS as DIGEST_TABLE
from lab_assets.names import STATE_ROW_COUNTS
from lab_assets.sources.locations import TableLocations
from lab_assets.state.sql import BucketScheme
from lab_assets_tests.lab_data import (
    CHANGES,
    brand_new_type,
    changed_values,
    deep_chain,
    generate,
    insert,
)
from lab_assets_tests.runs import (
    BASE_SAMPLES,
    keyed,
    refresh_and_compare,
    refresh_and_compare_all,
    value_type_of,
    whole_table_digests,
)

DIGEST_BUCKETS_TABLE, LINEAGE_BUCKETS_TABLE = DIGEST_STATE.buckets_table, LINEAGE_STATE.buckets_table


@pytest.fixture
def built_db(lab_db):
    with lab_db.connect() as connection:
        insert(connection, *generate(BASE_SAMPLES))
    assert refresh_and_compare(lab_db).startswith("full")
    return lab_db


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__)
def test_each_change_kind_is_refreshed_exactly(built_db, change):
    change(built_db)
    mode = refresh_and_compare(built_db)
    if change is brand_new_type:
        assert mode == "full (measurement columns changed)"
    elif change is not deep_chain:  # 5,000 new samples are over the incremental threshold
        assert mode == "incremental", mode


def test_all_changes_mixed_then_a_quiet_refresh(built_db):
    for change in CHANGES:
        if change is not deep_chain:
            change(built_db)
    refresh_and_compare(built_db)
    built_db.execute("UPDATE samples SET experiment_id = 99 WHERE id = 20")
    assert refresh_and_compare(built_db) == "incremental"
    assert refresh_and_compare(built_db) == "incremental"
    assert built_db.query("SELECT COUNT(*) FROM lab_pending_samples") == [(0,)]


def test_full_refresh_tag_rebuilds_whole(built_db):
    changed_values(built_db)
    assert refresh_and_compare(built_db, tags={REFRESH_TAG: "full"}) == "full (full refresh requested)"


def test_values_traded_between_two_types_of_one_sample_are_refreshed(built_db):
    # Sample 2's vol and ph trade values. These two values are ones for which CRC32 of the rows
    # (affine) sums to the same before and after the trade; a second hash that does not mix the
    # type with the value (as an earlier version's did not) then misses the trade altogether.
    built_db.execute(
        "UPDATE sample_measurements SET value = CASE measurement_type WHEN 'vol' THEN 1.513785 ELSE 8.988472 END"
        " WHERE sample_id = 2 AND measurement_type IN ('vol', 'ph')"
    )
    assert refresh_and_compare(built_db) == "incremental"
    built_db.execute(
        "UPDATE sample_measurements SET value = CASE measurement_type WHEN 'vol' THEN 8.988472 ELSE 1.513785 END"
        " WHERE sample_id = 2 AND measurement_type IN ('vol', 'ph')"
    )
    assert refresh_and_compare(built_db) == "incremental"


def test_values_traded_between_two_samples_of_one_bucket_are_refreshed(built_db):
    # Found by a review (2026-11-30) by solving CRC32's linear equations: samples 933 and 934
    # (one measurement bucket) trading these two vol values kept the bucket's count and both hash
    # sums as they were, so no refresh saw the trade. Samples 852 and 883 (one lineage bucket;
    # parents 753 and 828 in this data) trading experiments 60 and 98 did the same to the lineage.
    built_db.execute(
        "DELETE FROM sample_measurements WHERE sample_id IN (933, 934) AND measurement_type = 'vol'",
        "INSERT INTO sample_measurements VALUES (933, 'vol', 172.240077), (934, 'vol', 132.657564)",
        "UPDATE samples SET experiment_id = CASE id WHEN 852 THEN 60 ELSE 98 END WHERE id IN (852, 883)",
    )
    assert built_db.query("SELECT parent_id FROM samples WHERE id IN (852, 883) ORDER BY id") == [(753,), (828,)]
    refresh_and_compare(built_db)
    built_db.execute(
        "UPDATE sample_measurements SET value = CASE sample_id WHEN 933 THEN 132.657564 ELSE 172.240077 END"
        " WHERE sample_id IN (933, 934) AND measurement_type = 'vol'",
        "UPDATE samples SET experiment_id = CASE id WHEN 852 THEN 98 ELSE 60 END WHERE id IN (852, 883)",
    )
    metadata = refresh_and_compare_all(built_db)
    assert metadata[DIGEST_TABLE]["changed_samples"].value == 2
    assert metadata["sample_lineage"]["changed_samples"].value == 2


def test_stale_bucket_sums_are_repaired_by_the_next_refresh(built_db):
    # Sums no longer matching their state table (as after a change of the row hash): every
    # bucket differs, no id does; the refresh rewrites those buckets instead of leaving them to be
    # compared id by id on every later refresh.
    built_db.execute(
        f"UPDATE {LINEAGE_BUCKETS_TABLE} SET hash_b = hash_b + 1",
        f"UPDATE {DIGEST_BUCKETS_TABLE} SET hash_a = hash_a + 1",
    )
    assert refresh_and_compare(built_db) == "incremental"


def test_row_counts_missing_or_dropped_are_stored_again_by_the_next_refresh(built_db):
    # As a lab_assets version without the stored row counts leaves the output database: the
    # next refresh sums them once from the bucket tables (refresh_and_compare_all compares every
    # row count with COUNT(*)); a lost row alone is stored again too.
    built_db.execute("DROP TABLE lab_state_row_counts")
    changed_values(built_db)
    assert refresh_and_compare(built_db) == "incremental"
    built_db.execute(f"DELETE FROM lab_state_row_counts WHERE state_table = '{DIGEST_TABLE}'")
    changed_values(built_db)
    assert refresh_and_compare(built_db) == "incremental"


def test_row_counts_of_another_layout_are_made_again_by_both_computations_at_once(built_db, monkeypatch):
    # The lineage and the digests are computed side by side, and both find the row counts' table of
    # another layout. Each look is held for a second, so without one-at-a-time both would look
    # before either made the table again, and the second's drop (or delete) would find it gone.
    import lab_assets.state.work_tables as work_tables

    looks: list[str] = []
    real_column_names = work_tables.column_names

    def slow_look(connection, database, table):
        columns = real_column_names(connection, database, table)
        if table == STATE_ROW_COUNTS and len(looks) < 2:
            looks.append(threading.current_thread().name)
            time.sleep(1)
        return columns

    built_db.execute(
        "DROP TABLE lab_state_row_counts",
        "CREATE TABLE lab_state_row_counts (table_name VARCHAR(64) PRIMARY KEY, row_count BIGINT NOT NULL)",
    )
    monkeypatch.setattr(work_tables, "column_names", slow_look)
    changed_values(built_db)
    assert refresh_and_compare(built_db) == "incremental"
    assert len(set(looks)) == 2, looks  # both computations looked, each on its own thread


def test_a_full_refresh_cut_before_its_row_counts_are_stored_leaves_none_behind(built_db, monkeypatch):
    # Cut after the new bucket tables are renamed in: the count stored for the old tables must
    # not stay beside them (it would be moved by every later delta and never be right again).
    import lab_assets.state.bucket_sql as bucket_sql

    built_db.execute("DELETE FROM samples WHERE id IN (5, 6, 7)")  # the tables shrink
    monkeypatch.setattr(bucket_sql, "row_count_store_statements", lambda tables, state: ("SELECT cut_here",))
    assert not built_db.materialize_all(tags={REFRESH_TAG: "full"}, raise_on_error=False).success
    monkeypatch.undo()
    refresh_and_compare(built_db)
    changed_values(built_db)
    assert refresh_and_compare(built_db) == "incremental"


def test_a_lineage_table_without_the_recorded_parent_index_is_rebuilt_whole(built_db):
    # As made before the refresh walked down the recorded parent links: the next run rebuilds it
    # (with the index) instead of walking without one.
    built_db.execute("ALTER TABLE sample_lineage DROP INDEX parent_id")
    changed_values(built_db)
    assert refresh_and_compare(built_db).startswith("full")
    assert built_db.query(
        "SELECT column_name FROM information_schema.statistics"
        " WHERE table_schema = DATABASE() AND table_name = 'sample_lineage' AND index_name = 'parent_id'"
    ) == [("parent_id",)]
    assert refresh_and_compare(built_db) == "incremental"


def test_a_measurement_moved_between_two_types_whose_names_collide_in_crc32_is_refreshed(built_db):
    # Two names of equal length with one CRC32 (zlib's, as MySQL's; found by a birthday search):
    # CRC32 is affine, so the collision survives the row's shared prefix and suffix and the first
    # hash collides too; the second must not (it reads the types reversed).
    first, second = "uejgtcuo", "iiwucoup"
    assert zlib.crc32(first.encode()) == zlib.crc32(second.encode())
    built_db.execute(
        f"INSERT INTO sample_measurements VALUES (2, '{first}', 1.5), (3, '{second}', 2.5), (9, '{first}', 7)"
    )
    refresh_and_compare(built_db)
    built_db.execute(
        f"UPDATE sample_measurements SET measurement_type = '{second}'"
        f" WHERE sample_id = 9 AND measurement_type = '{first}'"
    )
    assert refresh_and_compare(built_db) == "incremental"


def test_digests_of_an_earlier_row_hash_are_rebuilt_whole(built_db):
    # As after a change of the row hash's formula (the second hash read the types forward before
    # 2026-11-30): every stored digest and bucket differs from the live ones.
    built_db.execute(
        f"UPDATE {DIGEST_TABLE} SET digest_b = digest_b + 1",
        f"UPDATE {DIGEST_BUCKETS_TABLE} SET hash_b = hash_b + state_rows",
    )
    assert refresh_and_compare(built_db).startswith("full")


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


def _sample_ids_with_measurements(db) -> list[int]:
    return [
        r[0]
        for r in db.query(
            "SELECT DISTINCT sample_id FROM sample_measurements WHERE sample_id IS NOT NULL ORDER BY sample_id"
        )
    ]


# How the changed samples are split between the samples table (a new experiment_id: the lineage
# changes, no subtree moves) and the measurements (values + 1: the digests change), and the modes
# of (sample_lineage, digests, flat table) one changed sample over the line.
SPREADS = {
    "measurements_only": (0.0, ("incremental", "full", "full (an upstream table was rebuilt whole)")),
    "samples_only": (1.0, ("full", "incremental", "full (an upstream table was rebuilt whole)")),
    "samples_and_measurements": (0.5, ("incremental", "incremental", "full (too many changed samples)")),
}


@pytest.mark.parametrize("spread", sorted(SPREADS))
def test_full_refresh_share_is_exact_at_its_boundary(built_db, spread):
    """The documented rule: a refresh rebuilds whole when more than 25% of the samples (counted
    as the span of sample ids) changed. Exactly at 25% it stays incremental; one more changed
    sample rebuilds whole. With measurements only (samples only), the digest (lineage) table
    crosses the line itself and the flat table follows it; with the changes split between the
    two, each state table stays under the line and the flat table's own count of pending samples
    crosses it."""
    share_of_samples, modes_over = SPREADS[spread]
    ((span,),) = built_db.query("SELECT MAX(id) - MIN(id) + 1 FROM samples")
    k_limit = math.floor(0.25 * span)
    with_measurements = _sample_ids_with_measurements(built_db)
    rng = random.Random(99)
    tables = ("sample_lineage", DIGEST_TABLE, "experiment_measurements")
    for changed, over in ((k_limit, False), (k_limit + 1, True)):
        chosen = rng.sample(with_measurements, changed)
        moved = chosen[: round(changed * share_of_samples)]
        measured = chosen[len(moved) :]
        if moved:
            built_db.execute(
                f"UPDATE samples SET experiment_id = experiment_id + 100 WHERE id IN ({', '.join(map(str, moved))})"
            )
        if measured:
            built_db.execute(
                f"UPDATE sample_measurements SET value = value + 1 WHERE sample_id IN ({', '.join(map(str, measured))})"
            )
        metadata = refresh_and_compare_all(built_db)
        modes = tuple(metadata[table]["refresh"].value for table in tables)
        if over:
            assert modes == modes_over, f"{changed} changed samples, id span {span}: {modes}"
        else:
            assert modes == ("incremental",) * 3, f"{changed} changed samples, id span {span}: {modes}"
            changed_samples = tuple(metadata[table]["changed_samples"].value for table in tables)
            assert changed_samples == (len(moved), len(measured), changed)


def _value_of(db, sample_id: int, measurement_type: str) -> Decimal:
    ((value,),) = db.query(
        "SELECT value FROM sample_measurements WHERE sample_id = %s AND measurement_type = %s",
        (sample_id, measurement_type),
    )
    return value


def _trade_values(db, first: tuple[int, str], second: tuple[int, str]) -> None:
    """The measurements ``first`` and ``second`` (sample id, type) trade values."""
    a, b = _value_of(db, *first), _value_of(db, *second)
    assert a != b, "trading equal values changes nothing"
    db.query(  # an UPDATE with bound values (an autocommit connection)
        "UPDATE sample_measurements SET value = CASE WHEN sample_id = %s AND measurement_type = %s THEN %s ELSE %s END"
        " WHERE (sample_id = %s AND measurement_type = %s) OR (sample_id = %s AND measurement_type = %s)",
        (*first, b, a, *first, *second),
    )


def _measurement_bucket(sample_id: int) -> int:
    return (sample_id + 2**31) // MEASUREMENT_BUCKETS.width


TRADES = {
    # Two samples of one bucket trade their pH values: the bucket holds the same (type, value)
    # rows as before, only on the other sample.
    "ph_between_samples_2_and_3": ((2, "ph"), (3, "ph"), ()),
    # One sample's vol and ph trade values: the sample holds the same ids and values as before,
    # only under the other type.
    "vol_and_ph_of_sample_2": ((2, "vol"), (2, "ph"), ()),
    # The same with two values for which CRC32 of the whole rows sums to the same before and
    # after the trade: the second hash alone must see it.
    "vol_and_ph_of_sample_2_crc_colliding_values": (
        (2, "vol"),
        (2, "ph"),
        (
            "UPDATE sample_measurements SET value = CASE measurement_type WHEN 'vol' THEN 1.513785 ELSE 8.988472 END"
            " WHERE sample_id = 2 AND measurement_type IN ('vol', 'ph')",
        ),
    ),
}


@pytest.mark.parametrize("trade", sorted(TRADES))
def test_traded_values_change_the_digests_and_bucket_sums_they_touch(lab_db, trade):
    """By property, not by formula: a trade of values keeps every count and the multiset of
    values, yet must change the digest of each sample involved and the live sums of their bucket
    (the first level of the diff, which would otherwise find no candidate at all), and nothing
    else."""
    first, second, setup = TRADES[trade]
    if setup:
        lab_db.execute(*setup)
    involved = {first[0], second[0]}
    buckets = {_measurement_bucket(i) for i in involved}
    assert len(buckets) == 1, "the trade stays within one bucket"

    def live():
        return whole_table_digests(lab_db), keyed(
            lab_db.query(measurement_bucket_sums_select(TableLocations.single(lab_db.name), value_type_of(lab_db)))
        )

    digests_before, buckets_before = live()
    values_before = sorted(r[0] for r in lab_db.query("SELECT value FROM sample_measurements"))
    _trade_values(lab_db, first, second)
    digests_after, buckets_after = live()
    assert sorted(r[0] for r in lab_db.query("SELECT value FROM sample_measurements")) == values_before

    assert set(digests_after) == set(digests_before)
    for sample_id in involved:
        assert digests_after[sample_id][0] == digests_before[sample_id][0]
        assert digests_after[sample_id] != digests_before[sample_id], f"sample {sample_id}'s digest missed the trade"
    assert {i: d for i, d in digests_after.items() if i not in involved} == {
        i: d for i, d in digests_before.items() if i not in involved
    }
    (bucket,) = buckets
    assert buckets_after[bucket][0] == buckets_before[bucket][0]
    assert buckets_after[bucket] != buckets_before[bucket], "the bucket sums missed the trade"
    assert {b: v for b, v in buckets_after.items() if b != bucket} == {
        b: v for b, v in buckets_before.items() if b != bucket
    }
