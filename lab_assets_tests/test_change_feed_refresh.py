"""The binlog as the refresh's and the sensor's change feed, on a private mariadbd with a ROW
binlog: each change kind refreshed through the feed and compared whole with the independent
recomputation, the fallbacks to a scan, the grants, and the sensor's feed-miss audit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import DagsterInstance, Failure

import lab_assets.catalog.counts as counts
import lab_assets.checks.sql as integrity
from lab_assets.catalog.sql import measurement_type_catalog_select
from lab_assets.checks.sql import measurements_without_sample_select
from lab_assets.digests.sql import DIGEST_STATE
from lab_assets.lineage.sql import LINEAGE_STATE
from lab_assets.names import CHANGE_FEED_SCAN, CHANGE_FEED_TAG
from lab_assets.sources.locations import TableLocations
from lab_assets_tests import lab_data
from lab_assets_tests.binlog_lab import PrivateLab, binlog_server, built_lab, feed_of, rows_read, without_binlog_grants
from lab_assets_tests.catalog_state import assert_catalog_state_is_exact
from lab_assets_tests.extra_server import ExtraServer
from lab_assets_tests.lab_data import assert_flat_table_is_exact
from lab_assets_tests.runs import Ticker, assert_refresh_state_is_exact, audit

pytestmark = pytest.mark.integration
SAMPLES = 3_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExtraServer]:
    with binlog_server(tmp_path_factory.mktemp("feed_refresh")) as started:
        yield started


@pytest.fixture
def lab(server: ExtraServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateLab]:
    """A built lab of SAMPLES generated samples, the feed required (LAB_CHANGE_FEED=binlog)."""
    monkeypatch.setenv("LAB_CHANGE_FEED", "binlog")
    yield from built_lab(server, SAMPLES)


def expected_catalog(db: PrivateLab) -> list[tuple]:
    """measurement_types recomputed in Python: types grouped case-insensitively (the generated
    types are ASCII, the column's collation case-insensitive), the byte-wise greatest spelling
    shown, distinct samples and rows counted."""
    groups: dict[str, list[tuple]] = {}
    for sample_id, measurement_type in db.query("SELECT sample_id, measurement_type FROM sample_measurements"):
        if measurement_type is not None:
            groups.setdefault(measurement_type.lower(), []).append((sample_id, measurement_type))
    return sorted(
        (max(t for _, t in rows), len({s for s, _ in rows if s is not None}), len(rows)) for rows in groups.values()
    )


def refreshed_exactly(db: PrivateLab, tags=None, with_audit: bool = False) -> dict[str, str]:
    """Refresh; the flat table, the refresh state, the catalog, its counts' state and the orphan
    record compared whole; with ``with_audit``, the run's measurement checks name the offenders
    the audit (the checks alone, recomputed over the live tables) names; the run's feed."""
    result = db.materialize_all(tags=tags)
    types = {t for (t,) in db.query("SELECT measurement_type FROM sample_measurements")}
    published = None
    if any(t != t.lower() for t in types if t is not None):  # spellings of one type, or one named so before
        # Their column keeps the name first given (README): the values are checked under the published names.
        names = dict(db.query("SELECT LOWER(measurement_type), column_name FROM measurement_types"))
        published = lambda t: names[t.lower()]  # noqa: E731 - a one-line mapping
    with db.connect() as connection:
        assert_flat_table_is_exact(connection, column_for_type=published)
    assert_refresh_state_is_exact(db)
    catalog = db.query("SELECT measurement_type, sample_count, measurement_count FROM measurement_types")
    assert sorted(catalog) == expected_catalog(db)
    assert_catalog_state_is_exact(db)
    if with_audit:
        built = {e.check_name: e for e in result.get_asset_check_evaluations()}
        audited = audit(db, *MEASUREMENT_CHECKS)
        for name in MEASUREMENT_CHECKS:
            shown = [
                (e.passed, e.metadata["offender_count"].value, e.metadata["offenders"].value)
                for e in (built[name], audited[name])
            ]
            assert shown[0] == shown[1], (name, shown)
    return feed_of(result)


MEASUREMENT_CHECKS = (
    "measurements_have_samples",
    "measurement_types_not_null",
    "no_duplicate_measurements",
    "one_spelling_per_column",
)


@pytest.mark.parametrize("change", lab_data.CHANGES, ids=lambda c: c.__name__)
def test_each_change_kind_refreshed_through_the_binlog_is_exact(lab, change):
    change(lab)
    feed = refreshed_exactly(lab)
    assert feed["change_feed"] == "binlog", feed
    # Nothing new: the next refresh reads the binlog and finds no sample.
    assert refreshed_exactly(lab)["change_feed_reason"].startswith("0 sample ids")


def _new_sample(db: PrivateLab) -> int:
    (new,) = db.query("SELECT MAX(id) + 1 FROM samples")[0]
    db.execute(f"INSERT INTO samples (id, parent_id, experiment_id) VALUES ({new}, 1, 1)")
    return new


def new_sample_with_a_new_type(db: PrivateLab) -> None:
    new = _new_sample(db)
    db.execute(f"INSERT INTO sample_measurements VALUES ({new}, 'turb', 1.5), ({new}, 'Turb', 2), ({new}, 'ph', 7)")


def last_row_of_a_type_deleted(db: PrivateLab) -> None:
    db.execute("INSERT INTO sample_measurements VALUES (5, 'odd', 1)")
    assert refreshed_exactly(db, with_audit=True)["change_feed"] == "binlog"
    db.execute("DELETE FROM sample_measurements WHERE measurement_type = 'odd'")


def greatest_spelling_gone_another_left(db: PrivateLab) -> None:
    # 'temp' > 'TEMP' byte-wise: the catalog shows 'temp' while it has a row, then 'TEMP'.
    db.execute("INSERT INTO sample_measurements VALUES (5, 'TEMP', 1), (6, 'TEMP', 2), (7, 'temp', 3)")
    assert refreshed_exactly(db, with_audit=True)["change_feed"] == "binlog"
    assert db.query("SELECT measurement_type FROM measurement_types WHERE measurement_type = 'temp'") == [("temp",)]
    db.execute("DELETE FROM sample_measurements WHERE sample_id = 7 AND measurement_type = 'temp'")


def measurement_moved_to_another_sample(db: PrivateLab) -> None:
    db.execute("UPDATE sample_measurements SET sample_id = 4 WHERE sample_id = 2 AND measurement_type = 'ph'")


def measurement_moved_to_another_type(db: PrivateLab) -> None:
    db.execute(
        "UPDATE sample_measurements SET measurement_type = 'PH' WHERE sample_id = 3 AND measurement_type = 'vol'"
    )


def orphan_then_its_sample(db: PrivateLab) -> None:
    db.execute(
        "SET foreign_key_checks = 0", "INSERT INTO sample_measurements VALUES (990002, 'ph', 1), (990002, 'vol', 2)"
    )
    assert refreshed_exactly(db, with_audit=True)["change_feed"] == "binlog"
    assert db.query("SELECT sample_id FROM lab_orphan_samples") == [(990002,)]
    db.execute("INSERT INTO samples (id, parent_id, experiment_id) VALUES (990002, NULL, 1)")


def duplicate_row_added(db: PrivateLab) -> None:
    db.execute(
        "INSERT INTO sample_measurements SELECT * FROM sample_measurements"
        " WHERE sample_id = 9 AND measurement_type = 'ph'"
    )


def null_type_and_no_sample_rows(db: PrivateLab) -> None:
    db.execute("INSERT INTO sample_measurements VALUES (3, NULL, 8), (NULL, 'ph', 1), (NULL, NULL, 2), (NULL, 'ph', 1)")
    assert refreshed_exactly(db, with_audit=True)["change_feed"] == "binlog"
    db.execute("DELETE FROM sample_measurements WHERE sample_id IS NULL AND measurement_type IS NULL")
    db.execute("DELETE FROM sample_measurements WHERE sample_id = 3 AND measurement_type IS NULL")


@pytest.mark.parametrize(
    "change",
    [
        new_sample_with_a_new_type,
        last_row_of_a_type_deleted,
        greatest_spelling_gone_another_left,
        measurement_moved_to_another_sample,
        measurement_moved_to_another_type,
        orphan_then_its_sample,
        duplicate_row_added,
        null_type_and_no_sample_rows,
    ],
    ids=lambda c: c.__name__,
)
def test_the_catalog_counts_and_the_orphan_record_move_by_the_feed_exactly(lab, change, monkeypatch):
    rebuilt = []
    whole_counts, whole_orphans = counts._rebuilt, integrity.orphan_samples_rebuild_statements  # noqa: SLF001 - watched

    def counts_rebuilt(*args):
        rebuilt.append("counts")
        return whole_counts(*args)

    def orphans_rebuilt(*args):
        rebuilt.append("orphans")
        return whole_orphans(*args)

    monkeypatch.setattr(counts, "_rebuilt", counts_rebuilt)
    monkeypatch.setattr(integrity, "orphan_samples_rebuild_statements", orphans_rebuilt)
    change(lab)
    feed = refreshed_exactly(lab, with_audit=True)
    assert feed["change_feed"] == "binlog", feed
    assert rebuilt == [], "the feed's refreshes move the counts and the orphan record, never rebuild them"


def test_scan_refreshes_between_binlog_ones_leave_the_catalog_counts_for_the_feed_to_move(lab, monkeypatch):
    """A refresh without the feed (LAB_CHANGE_FEED=scan) reads the catalog in one scan grouped by
    type and leaves its counts as the last binlog refresh left them; the next binlog refresh reads
    every change since that refresh's position, so it moves them to exact without a rebuild."""
    rebuilt: list[str] = []
    whole_counts = counts._rebuilt  # noqa: SLF001 - watched
    monkeypatch.setattr(counts, "_rebuilt", lambda *args: rebuilt.append("counts") or whole_counts(*args))
    monkeypatch.setenv("LAB_CHANGE_FEED", "scan")
    new_sample_with_a_new_type(lab)
    duplicate_row_added(lab)
    assert feed_of(lab.materialize_all())["change_feed"] == "scan"
    catalog = lab.query("SELECT measurement_type, sample_count, measurement_count FROM measurement_types")
    assert sorted(catalog) == expected_catalog(lab)
    monkeypatch.setenv("LAB_CHANGE_FEED", "binlog")
    measurement_moved_to_another_type(lab)
    assert refreshed_exactly(lab, with_audit=True)["change_feed"] == "binlog"
    assert rebuilt == []


def test_a_new_sample_with_measurements_reads_rows_in_proportion_to_the_change(lab):
    """The commonest change: a new sample with 3 measurements of known types. Through the binlog,
    the catalog's counts and the orphan record move by that sample's rows: the refresh reads fewer
    rows than sample_measurements holds (the whole scans they replace read it twice over, the
    catalog's GROUP BY and the orphans' anti-join); what it reads is mostly lab_assets' own tables
    (the flat table's column summary, a row per sample)."""
    measurements = lab.query("SELECT COUNT(*) FROM sample_measurements")[0][0]
    new = _new_sample(lab)
    lab.execute(f"INSERT INTO sample_measurements VALUES ({new}, 'ph', 7), ({new}, 'vol', 2), ({new}, 'len', 20)")
    before = rows_read(lab)
    result = lab.materialize_all()
    read = rows_read(lab) - before
    assert feed_of(result)["change_feed"] == "binlog"
    # What the two whole scans this refresh no longer makes read on the same data (the catalog's
    # GROUP BY and the orphans' anti-join), measured alone.
    tables, before = TableLocations.single(lab.name), rows_read(lab)
    lab.query(measurement_type_catalog_select(tables, "latin1", "latin1_swedish_ci"))
    lab.query(measurements_without_sample_select(tables))
    scans = rows_read(lab) - before
    print(f"one new sample: the refresh read {read} rows; the two scans alone read {scans}")  # noqa: T201 - quoted in reports
    assert read < scans and scans > 2 * measurements, (read, scans, measurements)
    with lab.connect() as connection:
        assert_flat_table_is_exact(connection)
    assert_catalog_state_is_exact(lab)


def test_a_one_value_refresh_reads_rows_in_proportion_to_the_change(lab, monkeypatch):
    """Rows read by a refresh with one changed value: through the binlog, no scan of either
    source (no bucket sums; the catalog and the orphans kept, as no row came or went): fewer
    rows than the sources hold, a fifth of what the scan path reads, which reads each source whole
    to find the change. What remains reads lab_assets' own tables by key (the stored row counts,
    a few rows per column of lab_column_summary). Only the refresh is counted; the comparisons after it
    read the tables whole."""
    source_rows = lab.query("SELECT (SELECT COUNT(*) FROM samples) + (SELECT COUNT(*) FROM sample_measurements)")[0][0]

    def refresh_reads(sample_id: int, feed: str) -> int:
        monkeypatch.setenv("LAB_CHANGE_FEED", feed)
        lab.execute(f"UPDATE sample_measurements SET value = value + 1 WHERE sample_id = {sample_id}")
        before = rows_read(lab)
        result = lab.materialize_all()
        read = rows_read(lab) - before
        assert feed_of(result)["change_feed"] == feed
        with lab.connect() as connection:
            assert_flat_table_is_exact(connection)
        return read

    by_feed, by_scan = refresh_reads(2, "binlog"), refresh_reads(3, "scan")
    assert by_scan >= source_rows, (by_scan, source_rows)
    assert by_feed < source_rows and by_scan > 5 * by_feed, (by_feed, by_scan, source_rows)


def state_rows_read(db: PrivateLab) -> dict[str, int]:
    """Rows read so far from each state table and its bucket table (MariaDB's userstat)."""
    rows = db.query(
        "SELECT table_name, rows_read FROM information_schema.table_statistics"
        " WHERE table_schema = DATABASE() AND table_name IN (%s, %s, %s, %s)",
        (LINEAGE_STATE.name, LINEAGE_STATE.buckets_table, DIGEST_STATE.name, DIGEST_STATE.buckets_table),
    )
    return {name: int(read) for name, read in rows}


def test_a_refresh_of_a_few_samples_reads_state_rows_in_proportion_to_the_change(lab):
    """Through the binlog, the bucket tables are kept by delta: the changed ids' old and new state
    rows read by primary key, not every id of each bucket they touch (64 lineage ids, 4 digest
    ids). Samples in separate buckets, each with its experiment and its values changed: every
    state row the refresh reads (finding, writing, the flat table's pivot and verification) stays
    within a few per changed sample, where summing each touched bucket again read 64 lineage rows
    for it. Only the refresh is counted; the comparisons after it read the tables whole."""
    changed = [100 + 64 * n for n in range(20)]
    ids = ", ".join(map(str, changed))
    lab.execute(
        f"UPDATE samples SET experiment_id = experiment_id + 1 WHERE id IN ({ids})",
        f"UPDATE sample_measurements SET value = value + 1 WHERE sample_id IN ({ids})",
    )
    before = state_rows_read(lab)
    result = lab.materialize_all()
    after = state_rows_read(lab)
    read = {name: after[name] - before.get(name, 0) for name in after}
    assert feed_of(result)["change_feed"] == "binlog"
    assert_refresh_state_is_exact(lab)
    assert read[LINEAGE_STATE.name] <= 20 * len(changed), read
    assert read[DIGEST_STATE.name] <= 20 * len(changed), read


def test_truncate_and_reload_falls_back_to_a_scan_and_the_feed_resumes(lab):
    lab.execute("SET foreign_key_checks = 0", "TRUNCATE TABLE sample_measurements", "SET foreign_key_checks = 1")
    lab.execute("INSERT INTO sample_measurements VALUES (2, 'ph', 6.5), (5, 'vol', 12)")
    feed = refreshed_exactly(lab)
    assert feed["change_feed"] == "scan" and "TRUNCATE" in feed["change_feed_reason"].upper(), feed
    lab.execute("UPDATE samples SET experiment_id = 9 WHERE id = 4")
    assert refreshed_exactly(lab)["change_feed"] == "binlog"


def test_a_statement_format_write_falls_back_to_a_scan(lab):
    lab.execute(
        "SET SESSION binlog_format = 'STATEMENT'",
        "UPDATE sample_measurements SET value = 1 WHERE sample_id = 9",
    )
    feed = refreshed_exactly(lab)
    assert feed["change_feed"] == "scan", feed


def test_a_full_refresh_records_the_position_before_it_reads(lab):
    feed = refreshed_exactly(lab, tags={"lab_assets/refresh": "full"})
    assert feed["change_feed"] == "scan" and "full refresh" in feed["change_feed_reason"]
    lab.execute("INSERT INTO samples (parent_id, experiment_id) VALUES (1, 1)")
    assert refreshed_exactly(lab)["change_feed"] == "binlog"


def test_an_account_without_the_grants_scans_under_auto_and_stops_under_binlog(lab, monkeypatch):
    with without_binlog_grants(lab, "feed_select_only") as narrow:
        lab.execute("UPDATE samples SET experiment_id = 7 WHERE id = 5")
        with pytest.raises(Failure, match="REPLICATION SLAVE"):
            narrow.materialize_all()
        monkeypatch.setenv("LAB_CHANGE_FEED", "auto")
        feed = refreshed_exactly(narrow)
        assert feed["change_feed"] == "scan" and "REPLICATION SLAVE" in feed["change_feed_reason"], feed


def test_the_sensor_ticks_on_the_binlog_and_its_periodic_check_repairs_a_feed_miss(lab, tmp_path):
    with DagsterInstance.ephemeral() as instance:
        ticker = Ticker(lab, instance)
        requests, skip = ticker.tick()  # the first tick: its periodic check finds the tables exact
        assert requests == [] and "periodic full check: the tables match" in str(skip)
        requests, skip = ticker.tick()
        assert requests == [] and "no change to the source tables (binlog read" in str(skip)
        lab.execute("DELETE FROM sample_measurements WHERE sample_id = 12")
        requests, _ = ticker.tick()
        assert len(requests) == 1 and (requests[0].run_key or "").startswith("binlog ")
        refreshed_exactly(lab, tags=requests[0].tags)
        assert ticker.tick()[0] == []
        # A change the binlog never saw (a session without binary logging): only the audit sees it.
        lab.execute("SET SESSION sql_log_bin = 0", "UPDATE samples SET experiment_id = 42 WHERE id = 7")
        assert ticker.tick()[0] == []
        cursor = lab_data_cursor_due(ticker)
        ticker.cursor = cursor
        requests, _ = ticker.tick()
        assert len(requests) == 1 and requests[0].tags[CHANGE_FEED_TAG] == CHANGE_FEED_SCAN
        feed = refreshed_exactly(lab, tags=requests[0].tags)
        assert feed["change_feed"] == "scan" and "did not name" in feed["change_feed_reason"]


def lab_data_cursor_due(ticker: Ticker) -> str:
    """The ticker's cursor with its periodic check due now."""
    from lab_assets.sensor.decisions import SensorCursor

    cursor = SensorCursor.parse(ticker.cursor)
    cursor.last_full_check = 0.0
    return cursor.serialize()


def test_an_orphan_is_reported_whether_the_rows_are_scanned_or_kept(lab):
    """measurements_have_samples: an orphaned measurement found by the scan that rows coming make
    necessary, then still named (with its new value) when only values changed and the record of
    orphans is read by index."""
    lab.execute("SET foreign_key_checks = 0", "INSERT INTO sample_measurements VALUES (990001, 'ph', 1.5)")
    result = lab.materialize_all()
    check = {e.check_name: e for e in result.get_asset_check_evaluations()}["measurements_have_samples"]
    assert not check.passed and check.metadata["offender_count"].value == 1
    assert "value='1.500000'" in str(check.metadata["offenders"].value)
    lab.execute("UPDATE sample_measurements SET value = 2.5 WHERE sample_id = 990001")
    result = lab.materialize_all()
    assert feed_of(result)["change_feed"] == "binlog"
    check = {e.check_name: e for e in result.get_asset_check_evaluations()}["measurements_have_samples"]
    assert not check.passed and check.metadata["offender_count"].value == 1
    assert "value='2.500000'" in str(check.metadata["offenders"].value)
    assert "came or went" in str(check.metadata["covered"].value)
    lab.execute("INSERT INTO samples (id, parent_id, experiment_id) VALUES (990001, NULL, 1)")
    result = lab.materialize_all()
    check = {e.check_name: e for e in result.get_asset_check_evaluations()}["measurements_have_samples"]
    assert check.passed
