"""The catalog's counts rebuilt whole, as a full build and every refresh that scans rebuilds them:
the rows per sample and spelling, their sums per spelling and per type and the scan's facts equal
a recomputation in Python from the sources (runs.assert_catalog_counts_are_exact), with a sample
holding several spellings of one type, repeated rows, NULL types and rows without a sample id."""

from __future__ import annotations

from lab_assets_tests.runs import assert_catalog_counts_are_exact


def test_a_rebuild_counts_each_sample_once_per_type_whatever_its_spellings(lab_db):
    # The seed's collation holds 'ph', 'PH' and 'Ph' equal: sample 2 has three spellings of ph.
    lab_db.execute(
        "INSERT INTO sample_measurements VALUES (2, 'PH', 1), (2, 'Ph', 2), (3, 'PH', 3), (NULL, 'ph', 4),"
        " (NULL, NULL, 5), (4, NULL, 6), (4, NULL, 7), (5, 'vol', 8), (5, 'vol', 9), (6, 'Vol', 10)"
    )
    lab_db.materialize_all()
    assert_catalog_counts_are_exact(lab_db)
    lab_db.execute(
        "DELETE FROM sample_measurements WHERE sample_id = 2 AND measurement_type = 'Ph'",
        "INSERT INTO sample_measurements VALUES (7, 'pH', 11), (7, 'ph', 12), (NULL, 'PH', 13)",
    )
    lab_db.materialize_all()  # scans (no binlog on the shared server): the counts rebuilt whole
    assert_catalog_counts_are_exact(lab_db)
