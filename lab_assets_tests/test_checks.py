"""Each asset check called directly (build_asset_check_context) on a good database (passes) and
after one targeted corruption (fails naming the offenders); the flat-table checks also fail inside
a materialization when the build is made wrong on purpose."""

from __future__ import annotations

import pytest
from dagster import build_asset_check_context

import lab_assets.refresh.flat_table as flat_table_module
from lab_assets.defs import checks
from lab_assets.lib.flat_table import MAX_MEASUREMENT_COLUMNS
from lab_assets.mysql import MySQLResource

pytestmark = pytest.mark.timeout(120)


def run_check(db, check) -> object:
    result = check(build_asset_check_context(resources={"mysql": MySQLResource(url=db.url)}))
    if not hasattr(result, "passed"):  # blocking checks are generators; they raise after a failed result
        results = []
        try:
            for item in result:
                results.append(item)
        except Exception as error:  # noqa: BLE001 - the Failure of a blocking check
            assert results and not results[0].passed, error
        result = results[0]
    return result


# check, statements that break its property on the seed database (after a good build), offenders
CORRUPTIONS = {
    "no_parent_cycles": (
        checks.no_parent_cycles,
        ["SET foreign_key_checks = 0", "UPDATE samples SET parent_id = 20 WHERE id = 11"],
        # 11 -> 20 -> 11 closes a cycle; 20's subtree hangs on it
        [11, 20],
    ),
    "no_missing_parents": (
        checks.no_missing_parents,
        ["SET foreign_key_checks = 0", "UPDATE samples SET parent_id = 777 WHERE id = 13"],
        [13, 14, 15, 16],
    ),
    "measurements_have_samples": (
        checks.measurements_have_samples,
        ["SET foreign_key_checks = 0", "INSERT INTO sample_measurements VALUES (4242, 'ph', 1)"],
        ["sample_id='4242' type='ph' value='1.000000'"],
    ),
    "measurement_types_not_null": (
        checks.measurement_types_not_null,
        ["INSERT INTO sample_measurements VALUES (3, NULL, 8)"],
        ["sample_id='3' value='8.000000'"],
    ),
    "no_duplicate_measurements": (
        checks.no_duplicate_measurements,
        ["INSERT INTO sample_measurements VALUES (9, 'PH', 1)"],
        ["sample_id=9 type='ph' measurements=2"],
    ),
    "one_spelling_per_column": (
        checks.one_spelling_per_column,
        ["INSERT INTO sample_measurements VALUES (4, 'PH', 2)"],
        ['measurement_ph: "PH", "ph"'],
    ),
    "catalog_column_names_unique": (
        checks.catalog_column_names_unique,
        ["INSERT INTO measurement_types (measurement_type, column_name) VALUES ('x', 'Measurement_PH')"],
        ["measurement_ph x2"],
    ),
    "one_row_per_sample": (
        checks.one_row_per_sample,
        [
            "DELETE FROM experiment_measurements WHERE sample_id = 7",
            "INSERT INTO experiment_measurements (experiment_id, top_parent_id, sample_id) VALUES (1, 1, 555)",
        ],
        ["7 (no row)", "555 (not a sample)"],
    ),
}

RECONCILIATION_CORRUPTIONS = {
    "cell value": (
        "UPDATE experiment_measurements SET measurement_ph = measurement_ph + 1 WHERE sample_id = 3",
        ["sample_id=3 measurement_ph"],
    ),
    "value lost": (
        "UPDATE experiment_measurements SET measurement_vol = NULL WHERE sample_id = 2",
        ["sample_id=2 count of non-NULL measurement cells", "sample_id=2 measurement_vol"],
    ),
    "value without source": (
        "UPDATE experiment_measurements SET measurement_vol = 1 WHERE sample_id = 1",
        ["sample_id=1 count of non-NULL measurement cells"],
    ),
    "wrong root": (
        "UPDATE experiment_measurements SET top_parent_id = 13 WHERE sample_id = 8",
        ["sample_id=8 top_parent_id"],
    ),
    "root not its own": (
        "UPDATE experiment_measurements SET top_parent_id = 1 WHERE sample_id = 5",
        ["sample_id=5 top_parent_id"],
    ),
    "missing root": (
        "UPDATE experiment_measurements SET top_parent_id = NULL WHERE sample_id = 20",
        ["sample_id=20 top_parent_id"],
    ),
    "experiment": (
        "UPDATE experiment_measurements SET experiment_id = 9 WHERE sample_id = 14",
        ["sample_id=14 experiment_id"],
    ),
    "extra column": (
        "ALTER TABLE experiment_measurements ADD COLUMN measurement_zz DECIMAL(16,6)",
        ["column measurement_zz not in the catalog"],
    ),
}


@pytest.fixture
def built_seed_db(lab_db):
    lab_db.materialize_all()
    return lab_db


def test_every_check_passes_on_good_data(built_seed_db):
    for check in checks.ALL_CHECKS:
        result = run_check(built_seed_db, check)
        assert result.passed, (check, result.description)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_check_fails_naming_offenders(built_seed_db, name):
    check, statements, expected = CORRUPTIONS[name]
    assert run_check(built_seed_db, check).passed
    built_seed_db.execute(*statements)
    result = run_check(built_seed_db, check)
    assert not result.passed
    assert result.metadata["offenders"].value == expected
    assert result.metadata["offender_count"].value == len(expected)


@pytest.mark.parametrize("name", sorted(RECONCILIATION_CORRUPTIONS))
def test_reconciliation_fails_naming_cells(built_seed_db, name):
    statement, expected = RECONCILIATION_CORRUPTIONS[name]
    built_seed_db.execute(statement)
    result = run_check(built_seed_db, checks.flat_table_reconciles)
    assert not result.passed and result.metadata["offenders"].value == expected


def test_reconciliation_fails_on_a_cell_that_equals_a_source_value_below_the_max(lab_db):
    """A (sample, type) measured twice: the cell must hold the larger value. A cell set to the
    smaller one still equals a source value of its type, so only the MAX comparison sees it."""
    ((smaller,),) = lab_db.query(
        "SELECT value FROM sample_measurements WHERE sample_id = 3 AND measurement_type = 'ph'"
    )
    larger = smaller + 2
    lab_db.query("INSERT INTO sample_measurements VALUES (3, 'ph', %s)", (larger,))
    lab_db.materialize_all()
    assert lab_db.query("SELECT measurement_ph FROM experiment_measurements WHERE sample_id = 3") == [(larger,)]
    assert run_check(lab_db, checks.flat_table_reconciles).passed
    lab_db.query("UPDATE experiment_measurements SET measurement_ph = %s WHERE sample_id = 3", (smaller,))
    result = run_check(lab_db, checks.flat_table_reconciles)
    assert not result.passed
    assert result.metadata["offenders"].value == ["sample_id=3 measurement_ph"]


def test_column_limit_check_fails_on_an_oversized_catalog(built_seed_db):
    rows = ", ".join(f"('t{i}', 'measurement_t{i}')" for i in range(MAX_MEASUREMENT_COLUMNS - 1))
    built_seed_db.execute(f"INSERT INTO measurement_types (measurement_type, column_name) VALUES {rows}")
    result = run_check(built_seed_db, checks.catalog_within_column_limit)
    assert not result.passed and str(MAX_MEASUREMENT_COLUMNS) in result.description
    assert str(MAX_MEASUREMENT_COLUMNS + 1) in result.description


def _wrapped_pivot(wrap):
    original = flat_table_module.pivot_select

    def pivot(*args, **kwargs):
        sql, params = original(*args, **kwargs)
        return wrap(sql), params

    return pivot


def test_flat_table_checks_fail_inside_a_materialization_when_the_build_is_wrong(lab_db, monkeypatch):
    # A deliberately wrong build: sample 7 left out, sample 3's ph off by one.
    monkeypatch.setattr(
        flat_table_module,
        "pivot_select",
        _wrapped_pivot(
            lambda sql: (
                "SELECT experiment_id, top_parent_id, sample_id, measurement_ph + (sample_id = 3) AS measurement_ph,"
                f" measurement_vol FROM ({sql}) AS built WHERE sample_id <> 7"
            )
        ),
    )
    result = lab_db.materialize_all()
    by_name = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert by_name["one_row_per_sample"].metadata["offenders"].value == ["7 (no row)"]
    # Sample 8 (child of the missing 7) still has the right root; the missing row is
    # one_row_per_sample's finding.
    assert by_name["flat_table_reconciles"].metadata["offenders"].value == ["sample_id=3 measurement_ph"]
    assert sorted(n for n, e in by_name.items() if not e.passed) == ["flat_table_reconciles", "one_row_per_sample"]


def test_every_check_on_a_database_never_built_fails_with_a_message(lab_db):
    # The audit job on a database whose first build never ran (or was stopped): no raw 1146.
    reads_only_sources = {
        checks.no_parent_cycles,
        checks.no_missing_parents,
        checks.measurements_have_samples,
        checks.measurement_types_not_null,
        checks.no_duplicate_measurements,
        checks.one_spelling_per_column,
    }
    for check in checks.ALL_CHECKS:
        result = run_check(lab_db, check)
        if check in reads_only_sources:
            assert result.passed, check.node_def.name
        else:
            assert not result.passed and "does not exist yet" in result.description, check.node_def.name
