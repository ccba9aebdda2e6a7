"""Every asset check, two ways: the audit (the checks alone, recomputed over the whole live
tables) on a good database (passes) and after one targeted corruption (fails naming the
offenders); and from the step that builds its table, which must name the same offenders when
the corruption is in the sources, over what the build wrote (full refresh or refresh)."""

from __future__ import annotations

import pytest

import lab_assets.checks.flat_table_sql as flat_table_sql
import lab_assets.checks.sql as integrity
import lab_assets.flat_table.step as flat_table_module
from lab_assets.flat_table.sql import MAX_MEASUREMENT_COLUMNS
from lab_assets.io_manager import MySQLIOManager
from lab_assets.mysql.resource import MySQLResource
from lab_assets_tests.lab_data import CORRUPTIONS
from lab_assets_tests.runs import CHECKS, audit, run_check

pytestmark = pytest.mark.timeout(120)


def built(db, **kwargs) -> dict:
    """A materialization of every asset; its check evaluations by name."""
    result = db.materialize_all(raise_on_error=False, **kwargs)
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


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
    by_name = audit(built_seed_db)
    assert sorted(by_name) == sorted(CHECKS)
    for name, result in by_name.items():
        assert result.passed, (name, result.description)
        # The blocking checks read the catalog table (a few rows) in builds and audits alike.
        assert (
            "audit" in result.metadata["covered"].value
            or "measurement_types catalog" in result.metadata["covered"].value
        )


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_check_fails_naming_offenders(built_seed_db, name):
    check, statements, expected = CORRUPTIONS[name]
    assert run_check(built_seed_db, check).passed
    built_seed_db.execute(*statements)
    result = run_check(built_seed_db, check)
    assert not result.passed
    assert result.metadata["offenders"].value == expected
    assert result.metadata["offender_count"].value == len(expected)


# Corruptions of the sources: the next build's own step (a refresh here) must find them too.
SOURCE_CORRUPTIONS = sorted(n for n in CORRUPTIONS if n not in {"catalog_column_names_unique", "one_row_per_sample"})


@pytest.mark.parametrize("name", SOURCE_CORRUPTIONS)
def test_the_building_step_names_the_same_offenders_as_the_audit(built_seed_db, name):
    check, statements, expected = CORRUPTIONS[name]
    built_seed_db.execute(*statements)
    result = built(built_seed_db)[check]
    assert not result.passed, result.description
    assert result.metadata["offenders"].value == expected
    assert result.metadata["offender_count"].value == len(expected)
    assert "audit" not in result.metadata["covered"].value


@pytest.mark.parametrize("name", sorted(RECONCILIATION_CORRUPTIONS))
def test_reconciliation_fails_naming_cells(built_seed_db, name):
    statement, expected = RECONCILIATION_CORRUPTIONS[name]
    built_seed_db.execute(statement)
    result = run_check(built_seed_db, "flat_table_reconciles")
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
    assert run_check(lab_db, "flat_table_reconciles").passed
    lab_db.query("UPDATE experiment_measurements SET measurement_ph = %s WHERE sample_id = 3", (smaller,))
    result = run_check(lab_db, "flat_table_reconciles")
    assert not result.passed
    assert result.metadata["offenders"].value == ["sample_id=3 measurement_ph"]


def test_column_limit_check_fails_on_an_oversized_catalog(built_seed_db):
    rows = ", ".join(f"('t{i}', 'measurement_t{i}')" for i in range(MAX_MEASUREMENT_COLUMNS - 1))
    built_seed_db.execute(f"INSERT INTO measurement_types (measurement_type, column_name) VALUES {rows}")
    result = run_check(built_seed_db, "catalog_within_column_limit")
    assert not result.passed and str(MAX_MEASUREMENT_COLUMNS) in result.description
    assert str(MAX_MEASUREMENT_COLUMNS + 1) in result.description


def _wrong_pivot(monkeypatch, columns: str, where: str = "") -> None:
    """The flat table's pivot replaced by ``SELECT <columns> FROM (<pivot>) AS built <where>``."""
    monkeypatch.setattr(
        flat_table_module, "pivot_select", _wrapped_pivot(lambda sql: f"SELECT {columns} FROM ({sql}) AS built {where}")
    )


# sample 3's ph off by one
PH_OFF_BY_ONE = (
    "experiment_id, top_parent_id, sample_id, measurement_ph + (sample_id = 3) AS measurement_ph, measurement_vol"
)


def _wrapped_pivot(wrap):
    original = flat_table_module.pivot_select

    def pivot(*args, **kwargs):
        sql, params = original(*args, **kwargs)
        return wrap(sql), params

    return pivot


def test_flat_table_checks_fail_inside_a_materialization_when_the_build_is_wrong(lab_db, monkeypatch):
    # A deliberately wrong build: sample 7 left out, sample 3's ph off by one.
    _wrong_pivot(monkeypatch, PH_OFF_BY_ONE, "WHERE sample_id <> 7")
    result = lab_db.materialize_all()
    by_name = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert by_name["one_row_per_sample"].metadata["offenders"].value == ["7 (no row)"]
    # Sample 8 (child of the missing 7) still has the right root; the missing row is
    # one_row_per_sample's finding.
    assert by_name["flat_table_reconciles"].metadata["offenders"].value == ["sample_id=3 measurement_ph"]
    assert sorted(n for n, e in by_name.items() if not e.passed) == ["flat_table_reconciles", "one_row_per_sample"]


def test_a_wrong_root_is_named_by_the_building_step(lab_db, monkeypatch):
    # The flat rows take top_parent_id from the lineage: a slip there must still be caught.
    _wrong_pivot(
        monkeypatch,
        "experiment_id, CASE WHEN sample_id = 8 THEN 13 ELSE top_parent_id END AS top_parent_id, sample_id,"
        " measurement_ph, measurement_vol",
    )
    by_name = built(lab_db)
    assert by_name["flat_table_reconciles"].metadata["offenders"].value == ["sample_id=8 top_parent_id"]
    assert [n for n, e in by_name.items() if not e.passed] == ["flat_table_reconciles"]


def test_a_wrong_root_recorded_in_the_lineage_too_is_named_by_the_lineage_proof(lab_db, monkeypatch):
    # Sample 8's root written wrong into sample_lineage, so the flat row (built from it) agrees with
    # what is recorded: only the proof by induction along the source's parent links can tell.
    import dataclasses

    import lab_assets.lineage.step as lineage_module

    original = lineage_module.lineage_bulk_build

    def wrong_root(tables):
        build = original(tables)
        wrapped = (
            "SELECT sample_id, parent_id, experiment_id,"
            " CASE WHEN sample_id = 8 THEN 13 ELSE top_parent_id END AS top_parent_id, depth"
            f" FROM ({build.select_sql}) AS walked"
        )
        return dataclasses.replace(build, select_sql=wrapped)

    monkeypatch.setattr(lineage_module, "lineage_bulk_build", wrong_root)
    by_name = built(lab_db)
    assert lab_db.query("SELECT top_parent_id FROM sample_lineage WHERE sample_id = 8") == [(13,)]
    assert by_name["flat_table_reconciles"].metadata["offenders"].value == ["sample_id=8 top_parent_id"]
    assert [n for n, e in by_name.items() if not e.passed] == ["flat_table_reconciles"]


def _refresh(db) -> dict:
    """The sensor's job (lab_refresh), in process; its check evaluations by name."""
    from lab_assets.definitions import defs

    job = defs.resolve_job_def("lab_refresh")
    result = job.execute_in_process(resources=db.resources(), raise_on_error=False)
    assert result.get_asset_materialization_events(), "the refresh wrote nothing"
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_a_refresh_reports_every_check_over_the_rows_it_rewrote(built_seed_db):
    built_seed_db.execute(
        "UPDATE sample_measurements SET value = value + 1 WHERE sample_id IN (3, 6)",
        "UPDATE samples SET experiment_id = 1 WHERE id = 14",
    )
    by_name = _refresh(built_seed_db)
    assert sorted(by_name) == sorted(CHECKS)
    assert all(e.passed for e in by_name.values()), {n: e.description for n, e in by_name.items() if not e.passed}
    for name in ("one_row_per_sample", "flat_table_reconciles"):
        assert by_name[name].metadata["covered_rows"].value == 3
        assert "rewrote" in by_name[name].metadata["covered"].value


def test_a_wrong_refresh_is_named_by_its_own_checks(built_seed_db, monkeypatch):
    built_seed_db.execute("UPDATE sample_measurements SET value = value + 1 WHERE sample_id IN (3, 6)")
    _wrong_pivot(monkeypatch, PH_OFF_BY_ONE)
    by_name = _refresh(built_seed_db)
    result = by_name["flat_table_reconciles"]
    assert result.metadata["offenders"].value == ["sample_id=3 measurement_ph"]
    assert result.metadata["covered_rows"].value == 2
    assert [n for n, e in by_name.items() if not e.passed] == ["flat_table_reconciles"]
    # The row is marked again: the next (correct) refresh rewrites it.
    monkeypatch.undo()
    assert all(e.passed for e in _refresh(built_seed_db).values())


def test_the_proof_treats_a_deleted_parent_as_missing(built_seed_db):
    # Sample 7 deleted on its own (foreign keys off): 8 keeps parent_id 7, so its root must be
    # NULL now; the flat row and the lineage still say 5. The lineage row of 7 must not vouch for it.
    built_seed_db.execute("SET foreign_key_checks = 0", "DELETE FROM samples WHERE id = 7")
    sql = flat_table_sql.lineage_proof_select(MySQLResource(url=built_seed_db.url).tables, "experiment_measurements")
    assert sorted(r[0] for r in built_seed_db.query(sql)) == [7, 8]


def test_samples_recorded_before_their_parents_root_are_not_called_cycles(built_seed_db):
    # As a sample added while a whole-table lineage was built is recorded: NULL root under a
    # parent that has one. Not on a cycle (the next refresh gives it its root).
    built_seed_db.execute("UPDATE sample_lineage SET top_parent_id = NULL, depth = NULL WHERE sample_id IN (8, 10, 11)")
    tables = MySQLResource(url=built_seed_db.url).tables
    assert built_seed_db.query(integrity.lineage_cycle_samples_select(tables)) == []
    assert built_seed_db.query(integrity.lineage_missing_parent_samples_select(tables)) == []
    # A real cycle among unrooted rows is still one.
    built_seed_db.execute(
        "SET foreign_key_checks = 0",
        "UPDATE samples SET parent_id = 20 WHERE id = 11",
        "UPDATE sample_lineage SET parent_id = 20 WHERE sample_id = 11",
        "UPDATE sample_lineage SET top_parent_id = NULL, depth = NULL WHERE sample_id = 20",
    )
    assert [r[0] for r in built_seed_db.query(integrity.lineage_cycle_samples_select(tables))] == [11, 20]


def test_a_type_spelled_as_the_empty_string_survives_empty_string_is_null(built_seed_db):
    # MariaDB's EMPTY_STRING_IS_NULL (here through the URL, as a DBA's server default would) made a
    # bound '' type NULL: the refresh published NULL for it and every check passed.
    url = built_seed_db.url + "?sql_mode=EMPTY_STRING_IS_NULL"
    resources = {"mysql": MySQLResource(url=url), "io_manager": MySQLIOManager(mysql=MySQLResource(url=url))}
    built_seed_db.execute("INSERT INTO sample_measurements VALUES (8, '', 4)")
    from lab_assets.definitions import defs

    result = defs.resolve_job_def("lab_refresh").execute_in_process(resources=resources, raise_on_error=False)
    assert all(e.passed for e in result.get_asset_check_evaluations())
    ((column,),) = built_seed_db.query("SELECT column_name FROM measurement_types WHERE measurement_type = ''")
    assert built_seed_db.query(f"SELECT `{column}` FROM experiment_measurements WHERE sample_id = 8") == [(4,)]


def test_every_check_on_a_database_never_built_fails_with_a_message(lab_db):
    # The audit job on a database whose first build never ran (or was stopped): no raw 1146.
    reads_only_sources = {
        "no_parent_cycles",
        "no_missing_parents",
        "measurements_have_samples",
        "measurement_types_not_null",
        "no_duplicate_measurements",
        "one_spelling_per_column",
    }
    by_name = audit(lab_db)
    assert sorted(by_name) == sorted(CHECKS)
    for name, result in by_name.items():
        if name in reads_only_sources:
            assert result.passed, name
        else:
            assert not result.passed and "does not exist yet" in result.description, name
