"""The catalog's counts rebuilt whole, as a full build and every scan refresh that stores a binlog
position rebuild them: the rows per sample and spelling, their sums per spelling and per type and
the scan's facts equal a recomputation in Python from the sources
(catalog_state.assert_catalog_counts_are_exact), with a sample holding several spellings of one type,
repeated rows, NULL types and rows without a sample id; and the catalog they give equals the one
scan grouped by type that a refresh without the change feed reads instead."""

from __future__ import annotations

from dagster import get_dagster_logger

from lab_assets.catalog.counts import SourceCollations, counted_catalog
from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.sessions import is_mariadb
from lab_assets.names import SAMPLE_MEASUREMENTS
from lab_assets.sql.statements import no_pad_binary_collation
from lab_assets_tests.catalog_state import assert_catalog_counts_are_exact


def _both_ways(db) -> None:
    """The counts rebuilt whole and checked; the catalog they give against the one scan's."""
    mysql = MySQLResource(url=db.url)
    source = mysql.column(SAMPLE_MEASUREMENTS, "measurement_type")
    with mysql.connect() as connection:
        no_pad = no_pad_binary_collation(is_mariadb(connection))
    collations = SourceCollations(str(source.character_set), str(source.collation), no_pad)
    log = get_dagster_logger()
    rebuilt = counted_catalog(log, mysql, collations, None, keep_counts=True)  # type: ignore[arg-type]
    assert_catalog_counts_are_exact(db)
    scanned = counted_catalog(log, mysql, collations, None, keep_counts=False)  # type: ignore[arg-type]
    assert _compared(rebuilt) == _compared(scanned)


def _compared(catalog: tuple[list[tuple], object]) -> tuple[list[tuple], object]:
    """Rows and facts; "several spellings" only for a type (the NULL type's row leaves it open)."""
    rows, facts = catalog
    return [(r[0], *map(int, r[1:4]), None if r[0] is None else bool(r[4]), r[5]) for r in rows], facts


def test_a_rebuild_counts_each_sample_once_per_type_whatever_its_spellings(lab_db):
    # The seed's collation holds 'ph', 'PH' and 'Ph' equal: sample 2 has three spellings of ph.
    lab_db.execute(
        "INSERT INTO sample_measurements VALUES (2, 'PH', 1), (2, 'Ph', 2), (3, 'PH', 3), (NULL, 'ph', 4),"
        " (NULL, NULL, 5), (4, NULL, 6), (4, NULL, 7), (5, 'vol', 8), (5, 'vol', 9), (6, 'Vol', 10)"
    )
    lab_db.materialize_all()  # the column names recorded
    _both_ways(lab_db)
    lab_db.execute(
        "DELETE FROM sample_measurements WHERE sample_id = 2 AND measurement_type = 'Ph'",
        "INSERT INTO sample_measurements VALUES (7, 'pH', 11), (7, 'ph', 12), (NULL, 'PH', 13)",
    )
    _both_ways(lab_db)
