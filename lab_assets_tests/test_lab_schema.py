"""A lab whose tables and columns have names of its own (LAB_SAMPLES_TABLE, LAB_MEASUREMENTS_TABLE,
LAB_SAMPLE_COLUMNS, LAB_MEASUREMENT_COLUMNS), and source drift stopping a step before it writes.

The renamed lab holds the whole-table tests' rows in ``lims_sample`` and ``lims_result`` (nothing
named ``samples`` in its database). lab_assets writes into a database of its own, which also holds
two updatable views with the seed schema's names over the lab's tables: test scaffolding only, so
the shared change kinds, corruptions and the independent recomputation (lab_data) run unchanged,
while lab_assets reads the lab's tables by the configured names (SQL that bypasses them fails)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from dagster._core.definitions.observe import observe

from lab_assets.checks.sql import OFFENDER_LIMIT
from lab_assets.defs.assets import LAB_ASSETS, sample_measurements, samples
from lab_assets.flat_table.sql import MeasurementColumn, pivot_select
from lab_assets.io_manager import MySQLIOManager
from lab_assets.lineage.sql import lineage_bulk_build
from lab_assets.mysql.resource import MySQLResource
from lab_assets.names import EXPERIMENT_MEASUREMENTS, SAMPLE_LINEAGE, SAMPLES
from lab_assets.sources.locations import TableLocations, source_settings, source_tables
from lab_assets.sources.value_types import parse_value_type
from lab_assets.sql.bulk import unchunked_select
from lab_assets_tests.databases import LAB_NAMES, RENAMED_SCHEMA, LabDatabase, server_connection
from lab_assets_tests.lab_data import CHANGES, CORRUPTIONS, deep_chain, generate, insert, roots_and_depths
from lab_assets_tests.runs import BASE_SAMPLES, Ticker, audit, refresh_and_compare, refresh_and_compare_all, run_check

pytestmark = pytest.mark.timeout(300)


@dataclass
class RenamedLab(LabDatabase):
    """The output database (lab_assets' tables, the views) of ``lab``, read by :data:`LAB_NAMES`."""

    lab: LabDatabase | None = None

    def resources(self) -> dict[str, object]:
        assert self.lab is not None
        mysql = MySQLResource(url=self.lab.url, output_database=self.name, **LAB_NAMES)
        return {"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql)}


@pytest.fixture
def renamed_lab(lab_db) -> RenamedLab:
    """The seed rows and BASE_SAMPLES generated ones under the lab's own names, built once."""
    with lab_db.connect() as connection:
        insert(connection, *generate(BASE_SAMPLES))
    lab_db.execute(*RENAMED_SCHEMA)
    output = RenamedLab(f"{lab_db.name}_out", lab=lab_db)
    with server_connection() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{output.name}`")
    output.execute(
        f"CREATE VIEW samples AS SELECT sample_pk AS id, derived_from AS parent_id, study_id AS experiment_id"
        f" FROM `{lab_db.name}`.lims_sample",
        f"CREATE VIEW sample_measurements AS SELECT sample_fk AS sample_id, assay AS measurement_type,"
        f" result AS value FROM `{lab_db.name}`.lims_result",
    )
    assert refresh_and_compare(output).startswith("full")
    return output


def _failure_message(result) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return "\n".join(e.event_specific_data.error.message for e in failures)


def _flat_table(db, database: str) -> list[tuple]:
    return db.query(f"SELECT * FROM `{database}`.{EXPERIMENT_MEASUREMENTS} ORDER BY sample_id")


# --- a lab with names of its own ------------------------------------------------------------------


def test_a_lab_with_its_own_names_is_built_and_refreshed_exactly(renamed_lab):
    for change in CHANGES:
        if change is not deep_chain:
            change(renamed_lab)
    refresh_and_compare_all(renamed_lab)
    renamed_lab.execute("UPDATE samples SET experiment_id = 99 WHERE id = 20")
    assert refresh_and_compare(renamed_lab) == "incremental"
    deep_chain(renamed_lab)  # the recursive walks step through the lab's parent index, by its name
    refresh_and_compare_all(renamed_lab)
    assert renamed_lab.query("SELECT COUNT(*) FROM lab_pending_samples") == [(0,)]


def _plan(db, sql: str, params: tuple = ()) -> set[tuple]:
    """(select_type, table, access type, key) of each row of the statement's EXPLAIN."""
    with db.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SET SESSION max_recursive_iterations = 1000000")
        cursor.execute(f"EXPLAIN {sql}", params or None)
        names = [d[0].lower() for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return {(r["select_type"], r["table"], r["type"], r["key"]) for r in rows}


def test_the_labs_indexes_serve_the_renamed_reads(renamed_lab):
    """The renaming derived tables are merged (the plan reads the lab's tables themselves, no
    materialized copy), the walk steps through the lab's parent index found by the lab's column
    name, and the pivot reaches measurements by the lab's sample index."""
    tables = renamed_lab.resources()["mysql"].tables
    assert tables.parent_index == "lims_sample_made_from"
    walk = _plan(renamed_lab, unchunked_select(lineage_bulk_build(tables).select_sql))
    assert ("RECURSIVE UNION", "lims_sample", "ref", "lims_sample_made_from") in walk, walk
    columns = [MeasurementColumn("vol", "measurement_vol"), MeasurementColumn("ph", "measurement_ph")]
    sql, params = pivot_select(tables, tables.qualified(SAMPLE_LINEAGE), (), columns, parse_value_type("decimal(16,6)"))
    pivot = _plan(renamed_lab, unchunked_select(sql), params)
    assert ("SIMPLE", "lims_result", "ref", "lims_result_sample") in pivot, pivot
    assert not [row for row in walk | pivot if row[0] == "DERIVED" and row[2] == "ALL"], "nothing materialized"


def test_the_sensor_sees_a_change_to_the_labs_own_tables(renamed_lab):
    ticker = Ticker(renamed_lab, DagsterInstance.ephemeral())
    ticker.mysql = renamed_lab.resources()["mysql"]
    requests, message = ticker.tick()
    assert requests == [] and "the tables match the sources" in message, message
    ticker.settle()
    renamed_lab.execute("UPDATE sample_measurements SET value = value + 1 WHERE sample_id = 2")
    requests, _ = ticker.tick()
    assert len(requests) == 1
    assert ticker.cursor is not None and "lims_sample" not in ticker.cursor, "the cursor keys lab_assets' names"


def test_the_source_assets_observe_the_labs_tables_by_their_six_columns(renamed_lab):
    assert renamed_lab.lab is not None
    resources = {"mysql": renamed_lab.resources()["mysql"]}
    instance = DagsterInstance.ephemeral()

    def observed() -> dict[str, tuple]:
        assert observe([samples, sample_measurements], resources=resources, instance=instance).success
        latest = {}
        for key in ("samples", "sample_measurements"):
            (record,) = instance.fetch_observations(AssetKey(key), limit=1, ascending=False).records
            observation = record.asset_observation
            assert observation is not None
            latest[key] = (observation.tags["dagster/data_version"], observation.metadata)
        return latest

    first = observed()
    assert first["samples"][1]["dagster/table_name"].value == f"{renamed_lab.lab.name}.lims_sample"
    assert (
        first["sample_measurements"][1]["dagster/row_count"].value
        == renamed_lab.query("SELECT COUNT(*) FROM sample_measurements")[0][0]
    )
    # Extra columns are no part of the content: changing them changes no data version.
    renamed_lab.lab.execute(
        "UPDATE lims_sample SET notes = 'other', created_at = created_at - INTERVAL 1 DAY",
        "UPDATE lims_result SET extra = 8",
    )
    assert {k: v[0] for k, v in observed().items()} == {k: v[0] for k, v in first.items()}
    renamed_lab.execute("UPDATE samples SET experiment_id = 98 WHERE id = 3")
    assert observed()["samples"][0] != first["samples"][0]


def test_every_check_passes_on_a_lab_with_its_own_names(renamed_lab):
    for name, result in audit(renamed_lab).items():
        assert result.passed, (name, result.description)


@pytest.mark.parametrize("name", ["measurements_have_samples", "no_parent_cycles"])
def test_a_check_names_its_offenders_in_a_lab_with_its_own_names(renamed_lab, name):
    check, statements, expected = CORRUPTIONS[name]
    renamed_lab.execute(*statements)
    if name == "no_parent_cycles":  # the generated samples under 11 and 20 hang on the cycle too
        rootless = roots_and_depths(renamed_lab.query("SELECT id, parent_id, experiment_id FROM samples"))
        expected = sorted(sample for sample, (root, _) in rootless.items() if root is None)
    result = run_check(renamed_lab, check)
    assert not result.passed
    assert result.metadata["offender_count"].value == len(expected)
    assert result.metadata["offenders"].value == expected[:OFFENDER_LIMIT]


# --- drift: one sentence, before anything is written ------------------------------------------------


def test_a_renamed_source_column_stops_the_build_before_it_writes(renamed_lab):
    assert renamed_lab.lab is not None
    before = _flat_table(renamed_lab, renamed_lab.name)
    renamed_lab.lab.execute(
        "ALTER TABLE lims_sample RENAME COLUMN study_id TO study",
        "UPDATE lims_result SET result = result + 1 WHERE sample_fk = 2",
    )
    result = renamed_lab.materialize_all(raise_on_error=False)
    message = _failure_message(result)
    assert (
        f"{renamed_lab.lab.name}.lims_sample has no column study_id (LAB_SAMPLE_COLUMNS maps experiment_id to it):"
        " its columns are notes, sample_pk, derived_from, study, created_at; nothing was written" in message
    ), message
    assert "1054" not in message
    assert not result.get_asset_materialization_events()
    assert _flat_table(renamed_lab, renamed_lab.name) == before
    ticker = Ticker(renamed_lab, DagsterInstance.ephemeral())
    ticker.mysql = renamed_lab.resources()["mysql"]
    with pytest.raises(RuntimeError, match=r"lims_sample has no column study_id .LAB_SAMPLE_COLUMNS maps"):
        ticker.tick()


def test_the_default_names_renamed_by_the_lab_stop_the_build_with_one_sentence(lab_db):
    lab_db.materialize_all()
    before = _flat_table(lab_db, lab_db.name)
    lab_db.execute("ALTER TABLE samples RENAME COLUMN experiment_id TO study_id")
    message = _failure_message(lab_db.materialize_all(raise_on_error=False))
    assert (
        f"{lab_db.name}.samples has no column experiment_id (LAB_SAMPLE_COLUMNS maps experiment_id to it,"
        " by default): its columns are id, parent_id, study_id, ts; nothing was written" in message
    ), message
    assert _flat_table(lab_db, lab_db.name) == before
    with pytest.raises(RuntimeError, match="samples has no column experiment_id"):
        Ticker(lab_db, DagsterInstance.ephemeral()).tick()
    # The audit (checks alone) and the source observations say the same, not a raw 1054.
    from lab_assets.definitions import defs

    audit = defs.resolve_job_def("lab_integrity_audit").execute_in_process(
        resources=lab_db.resources(), raise_on_error=False
    )
    observed = observe([samples, sample_measurements], resources=lab_db.resources(), raise_on_error=False)
    for result in (audit, observed):
        message = _failure_message(result)
        assert f"{lab_db.name}.samples has no column experiment_id" in message and "1054" not in message, message


def test_a_missing_source_table_is_named_with_its_variable(lab_db):
    mysql = MySQLResource(url=lab_db.url, measurements_table="results")
    assert mysql.source_drift() == (
        f"{lab_db.name} has no table results that this account can see (LAB_MEASUREMENTS_TABLE names it):"
        " its tables are sample_measurements, samples"
    )


# --- the settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variable, value, part",
    [
        ("LAB_SAMPLE_COLUMNS", "id=sample_pk,derived_from", "'derived_from', which is not name=column"),
        ("LAB_SAMPLE_COLUMNS", "id=sample_pk,sample_id=x", "'sample_id' in 'sample_id=x', which lab_assets does not"),
        ("LAB_MEASUREMENT_COLUMNS", "value=", "'value=', which is not name=column"),
        ("LAB_MEASUREMENT_COLUMNS", "value=a,value=b", "maps 'value' twice"),
        ("LAB_SAMPLES_TABLE", "lab.samples", "'lab.samples' holds '.'"),
        ("LAB_MEASUREMENTS_TABLE", "samples", "names 'samples', the table LAB_SAMPLES_TABLE names too"),
    ],
)
def test_a_malformed_setting_is_one_sentence_naming_the_variable(variable, value, part):
    with pytest.raises(ValueError) as raised:
        source_settings({variable: value})
    message = str(raised.value)
    assert message.startswith(variable) and part in message and message.replace("e.g. ", "").count(". ") == 0, message
    if variable.endswith("_COLUMNS"):
        assert "e.g." in message


def test_the_settings_are_read_when_the_definitions_load():
    code = "from lab_assets.defs.resources import mysql; print(mysql.samples_table, mysql.sample_columns)"
    environment = {**os.environ, "LAB_SAMPLES_TABLE": "lims_sample", "LAB_SAMPLE_COLUMNS": "id=sample_pk"}
    run = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.stdout.split() == ["lims_sample", "id=sample_pk"], run.stderr
    environment["LAB_SAMPLE_COLUMNS"] = "pk"
    run = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode != 0 and "ValueError: LAB_SAMPLE_COLUMNS has 'pk'" in run.stderr


def test_the_default_names_read_the_labs_table_itself_and_others_a_renaming_derived_table():
    default = TableLocations("lab", "out", parent_index="parent_id")
    assert default.samples == "`lab`.`samples`"
    assert default.children_join("t.id") == (
        "STRAIGHT_JOIN `lab`.`samples` AS child FORCE INDEX (`parent_id`) ON child.parent_id = t.id"
    )
    renamed = TableLocations("lab", "out", parent_index="fk_parent", sources=source_tables(**LAB_NAMES))
    assert renamed.samples == (
        "(SELECT `sample_pk` AS `id`, `derived_from` AS `parent_id`, `study_id` AS `experiment_id`"
        " FROM `lab`.`lims_sample`)"
    )
    assert renamed.children_join("t.id") == (
        "STRAIGHT_JOIN (SELECT `sample_pk` AS `id`, `derived_from` AS `parent_id`, `study_id` AS `experiment_id`"
        " FROM `lab`.`lims_sample` FORCE INDEX (`fk_parent`)) AS child ON child.parent_id = t.id"
    )
    assert renamed.qualified(SAMPLES) == "`lab`.`lims_sample`"
    only_table = TableLocations("lab", "lab", sources=source_tables(samples_table="lims_sample"))
    assert only_table.samples == "`lab`.`lims_sample`"


def test_a_lab_table_named_like_one_lab_assets_writes_is_refused_before_anything_is_written(lab_db):
    lab_db.execute("RENAME TABLE samples TO sample_lineage")
    mysql = MySQLResource(url=lab_db.url, samples_table="sample_lineage")
    message = _failure_message(materialize(LAB_ASSETS, resources=_resources_of(mysql), raise_on_error=False))
    assert (
        f"LAB_SAMPLES_TABLE names sample_lineage, a table lab_assets writes in {lab_db.name}:"
        " set LAB_OUTPUT_DATABASE to a database of lab_assets' own" in message
    ), message
    assert lab_db.query("SELECT COUNT(*) FROM sample_lineage") == [(20,)], "the lab's table untouched"
    assert not lab_db.query("SHOW TABLES LIKE 'sample_lineage\\_\\_%%'")
    separate = MySQLResource(url=lab_db.url, samples_table="sample_lineage", output_database=f"{lab_db.name}_out")
    assert materialize(LAB_ASSETS, resources=_resources_of(separate)).success  # read only, from its own database


def _resources_of(mysql: MySQLResource) -> dict:
    return {"mysql": mysql, "io_manager": MySQLIOManager(mysql=mysql)}
