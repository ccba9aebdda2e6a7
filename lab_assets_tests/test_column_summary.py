"""lab_column_summary, the bookkeeping behind each materialization's ``column_summary``: after a
full build and after incremental refreshes that move a column's minimum and maximum both ways,
delete the row holding them, bring NULLs in and out, add a column and delete a sample, the stored
summary and the metadata equal COUNT, MIN and MAX over the whole table (runs.refresh_and_compare
compares every column); an incremental refresh reads a few rows per column and per rewritten sample,
never the flat table whole."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lab_assets.flat_table.summary import ColumnSummaryUpkeep
from lab_assets.flat_table.summary_sql import aggregates_select, whole_table
from lab_assets_tests.lab_data import generate, insert
from lab_assets_tests.runs import assert_column_summary_is_exact, refresh_and_compare, refresh_and_compare_all

pytestmark = pytest.mark.timeout(180)


@dataclass(frozen=True)
class Values:
    """A value type (None: the seed's DECIMAL(16,6)) and SQL literals of it, lowest to highest."""

    ddl: str | None
    low: str
    middle: str
    high: str


VALUES = {
    "decimal_16_6": Values(None, "-5.5", "7.125", "99999.000001"),
    "decimal_30_10": Values("DECIMAL(30,10)", "-0.0000000001", "7.0000000002", "98765432109876543210.0123456789"),
    # Compared by bytes: '!' (0x21) < 'M' < 'a' < '~' (0x7e), whatever the collation says.
    "varchar": Values("VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci", "'!low'", "'M'", "'~high'"),
}


def _incremental(db) -> None:
    refresh = refresh_and_compare(db)
    assert refresh == "incremental", refresh


@pytest.mark.parametrize("name", sorted(VALUES))
def test_the_summary_stays_the_whole_table_aggregate_through_refreshes(lab_db, name):
    v = VALUES[name]
    if v.ddl is not None:
        lab_db.execute(f"ALTER TABLE sample_measurements MODIFY value {v.ddl}")
    assert refresh_and_compare(lab_db).startswith("full")
    ph = "measurement_type = 'ph'"
    # Up and down: sample 2 holds ph's maximum, sample 3 its minimum.
    lab_db.execute(
        f"UPDATE sample_measurements SET value = {v.high} WHERE sample_id = 2 AND {ph}",
        f"UPDATE sample_measurements SET value = {v.low} WHERE sample_id = 3 AND {ph}",
    )
    _incremental(lab_db)
    # The row holding the minimum loses it: sample 3's ph deleted (its row stays, by its vol).
    lab_db.execute(f"DELETE FROM sample_measurements WHERE sample_id = 3 AND {ph}")
    _incremental(lab_db)
    # The row holding the maximum changed to a value below it.
    lab_db.execute(f"UPDATE sample_measurements SET value = {v.middle} WHERE sample_id = 2 AND {ph}")
    _incremental(lab_db)
    # NULLs appear (a NULL value, a vol deleted) and disappear (sample 3's ph back).
    lab_db.execute(
        "UPDATE sample_measurements SET value = NULL WHERE sample_id = 6 AND measurement_type = 'vol'",
        "DELETE FROM sample_measurements WHERE sample_id = 12 AND measurement_type = 'vol'",
        f"INSERT INTO sample_measurements VALUES (3, 'ph', {v.middle})",
    )
    _incremental(lab_db)
    # vol's new ends: sample 20 (a leaf) its maximum, sample 19 its minimum; then sample 20 is
    # deleted with its measurements.
    lab_db.execute(
        f"UPDATE sample_measurements SET value = {v.high} WHERE sample_id = 20 AND measurement_type = 'vol'",
        f"INSERT INTO sample_measurements VALUES (19, 'vol', {v.low})",
    )
    _incremental(lab_db)
    lab_db.execute("DELETE FROM samples WHERE id = 20")
    _incremental(lab_db)
    # A new measurement type is a new column (a full refresh), then refreshed by delta.
    lab_db.execute(f"INSERT INTO sample_measurements VALUES (5, 'temp', {v.middle})")
    assert refresh_and_compare(lab_db) == "full (measurement columns changed)"
    lab_db.execute(f"INSERT INTO sample_measurements VALUES (6, 'temp', {v.low}), (7, 'temp', {v.high})")
    _incremental(lab_db)
    lab_db.execute("DELETE FROM sample_measurements WHERE measurement_type = 'temp' AND sample_id IN (6, 7)")
    _incremental(lab_db)


def test_a_summary_that_lost_a_row_or_its_table_is_aggregated_whole_by_the_next_refresh(lab_db):
    assert refresh_and_compare(lab_db).startswith("full")
    lab_db.execute(
        "DELETE FROM lab_column_summary WHERE column_name = 'measurement_ph'",
        "UPDATE sample_measurements SET value = 1 WHERE sample_id = 9 AND measurement_type = 'vol'",
    )
    _incremental(lab_db)
    lab_db.execute(
        "DROP TABLE lab_column_summary",
        "UPDATE sample_measurements SET value = 2 WHERE sample_id = 9 AND measurement_type = 'vol'",
    )
    _incremental(lab_db)
    assert_column_summary_is_exact(lab_db)


HANDLER_READS = (
    "SHOW SESSION STATUS WHERE Variable_name IN ('Handler_read_first', 'Handler_read_key', 'Handler_read_last',"
    " 'Handler_read_next', 'Handler_read_prev', 'Handler_read_rnd', 'Handler_read_rnd_next')"
)


def _reads(connection) -> int:
    return sum(int(value) for _, value in connection.exec_driver_sql(HANDLER_READS).fetchall())


def _counted(connection, call) -> int:
    """Rows the session's handlers read during ``call()``, without what reading the counters reads."""
    first = _reads(connection)
    overhead = _reads(connection) - first
    before = _reads(connection)
    call()
    return _reads(connection) - before - overhead


def test_an_incremental_refresh_reads_the_rewritten_rows_for_the_summary_not_the_flat_table(lab_db, monkeypatch):
    """The summary's statements of an incremental refresh (counted on the IO manager's own session,
    around the upkeep's two calls) read a few rows per column and per rewritten sample, far fewer
    than the one aggregate over the whole table they replace reads on the same table."""
    db = lab_db  # the seed's samples 1-20 are the generated samples' first parents
    with db.connect() as connection:
        insert(connection, *generate(3000))
    assert refresh_and_compare(db).startswith("full")
    counted: list[int] = []
    whole: list[int] = []
    original_before, original_after = ColumnSummaryUpkeep.before_replace, ColumnSummaryUpkeep.after_replace

    def before(self, connection):
        counted.append(_counted(connection, lambda: original_before(self, connection)))

    def after(self, connection):
        counted.append(_counted(connection, lambda: original_after(self, connection)))
        aggregate = aggregates_select(self.columns, self.value_type, whole_table(self.schema, self.table))
        assert aggregate is not None
        whole.append(_counted(connection, lambda: connection.exec_driver_sql(aggregate).fetchall()))
        columns.extend(self.columns)

    columns: list[str] = []
    monkeypatch.setattr(ColumnSummaryUpkeep, "before_replace", before)
    monkeypatch.setattr(ColumnSummaryUpkeep, "after_replace", after)
    db.execute("UPDATE sample_measurements SET value = value + 1 WHERE sample_id = 1500")
    flat = refresh_and_compare_all(db)["experiment_measurements"]
    assert flat["refresh"].value == "incremental"
    rewritten = flat["rewritten_samples"].value
    flat_rows = db.query("SELECT COUNT(*) FROM experiment_measurements")[0][0]
    assert len(counted) == 2 and len(whole) == 1, (counted, whole)
    assert whole[0] >= flat_rows, (whole, flat_rows)
    # Per column: its delta row, its summary row, its aggregate row and column-list row, each
    # read a few times; per rewritten sample its pending id and its row by key, before and after.
    # Nothing grows with the table.
    assert rewritten * 5 < flat_rows, (rewritten, flat_rows)
    assert sum(counted) <= 20 * (len(columns) + 2) + 6 * rewritten, (counted, len(columns), rewritten)
    assert sum(counted) * 20 < whole[0], (counted, whole, rewritten)
