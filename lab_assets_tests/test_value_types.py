"""The flat table carries exactly what the lab stores, whatever type sample_measurements.value
has: each type built and refreshed, compared whole with the independent recomputation (values as
the server stores them), the checks passing and naming a planted wrong cell; a type changed on a
built deployment rebuilds the table whole with the new type."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lab_assets.flat_table.sql import MeasurementColumn
from lab_assets.flat_table.verification_sql import suspect_rows_select
from lab_assets.sources.locations import TableLocations
from lab_assets.sources.value_types import (
    UnsupportedValueType,
    declared_type,
    max_measurement_columns,
    parse_value_type,
)
from lab_assets_tests.lab_data import assert_flat_table_is_exact
from lab_assets_tests.runs import (
    all_checks_passed_except,
    assert_column_summary_is_exact,
    assert_refresh_state_is_exact,
    refresh_and_compare,
    requested_runs,
    run_check,
)

pytestmark = pytest.mark.timeout(120)


@dataclass(frozen=True)
class Case:
    """A value type (``ALTER TABLE ... MODIFY value <ddl>``) and values of it, as SQL literals:
    ``first`` is sample 2's vol, later ``changed`` (its last digit only), ``wrong`` is planted in
    the flat table (one digit off, or equal to ``changed`` under the source's collation);
    ``others`` includes values a DECIMAL(16,6) cannot hold; ``others[0:2]`` measure one (sample,
    type) twice, whose MAX must not depend on row order."""

    ddl: str
    first: str
    changed: str
    wrong: str
    others: tuple[str, str, str, str]
    read_as: str = "{}"  # how the server shows a value exactly (lab_data.read_sources)


CASES = {
    "decimal_30_10": Case(
        "DECIMAL(30,10)",
        "7.0000001",
        "7.0000002",
        "7.0000003",
        ("98765432109876543210.0123456789", "-0.0000000001", "0.0000000002", "12345678901.5"),
    ),
    "decimal_65_30": Case(
        "DECIMAL(65,30)",
        "7.000000000000000000000000000001",
        "7.000000000000000000000000000002",
        "7.000000000000000000000000000003",
        (
            "99999999999999999999999999999999999.999999999999999999999999999999",
            "-99999999999999999999999999999999999.999999999999999999999999999999",
            "12345678901234567890123456789012345.123456789012345678901234567891",
            "0.000000000000000000000000000001",
        ),
    ),
    "double": Case(
        "DOUBLE",
        "7.0000001",
        "7.0000002",
        "7.000000200000001",
        ("1.7976931348623157e308", "-1.7976931348623157e308", "5e-324", "0.1"),
    ),
    # 7.0000005 and 7.000001 are two FLOATs (7 + 2^-21 and 7 + 2^-20) the server shows as 7.
    "float": Case(
        "FLOAT",
        "7.0000005",
        "7.000001",
        "7.0000014",
        ("3.4028234e38", "-3.4028234e38", "1.17549435e-38", "0.1"),
        read_as="CAST({} AS DOUBLE)",
    ),
    "int": Case("INT", "2147483646", "2147483647", "2147483645", ("-2147483648", "0", "1", "-1")),
    "bigint_unsigned": Case(
        "BIGINT UNSIGNED",
        "18446744073709551614",
        "18446744073709551615",
        "18446744073709551613",
        ("9223372036854775808", "0", "1", "6148914691236517206"),
    ),
    # The source column's collation (utf8mb4_general_ci) holds 'abd' = 'ABD' and 'n/a' = 'N/A';
    # the flat table keeps the bytes, and MAX is byte-wise ('n/a' over 'N/A').
    "varchar": Case(
        "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
        "'abc'",
        "'abd'",
        "'ABD'",
        ("'n/a'", "'N/A'", "'7.0000001'", "'a '"),
    ),
}


def _column_type(db, table: str, column: str) -> str:
    ((column_type, charset, collation),) = db.query(
        "SELECT column_type, character_set_name, collation_name FROM information_schema.columns"
        " WHERE table_schema = DATABASE() AND table_name = %s AND column_name = %s",
        (table, column),
    )
    return declared_type(column_type, charset, collation)


def _built_and_exact(db, case: Case, expected_refresh: str) -> None:
    """A run (build or refresh) whose flat table, refresh state and checks are exact."""
    result = db.materialize_all()
    flat = result.asset_materializations_for_node("experiment_measurements")[0].metadata
    assert flat["refresh"].value.startswith(expected_refresh), flat["refresh"].value
    with db.connect() as connection:
        assert_flat_table_is_exact(connection, value_sql=case.read_as)
    assert_refresh_state_is_exact(db)
    assert_column_summary_is_exact(db, flat)
    # (9, ph) is measured twice on purpose.
    all_checks_passed_except(result, "no_duplicate_measurements")
    value_type = parse_value_type(*_source_type(db))
    assert _column_type(db, "experiment_measurements", "measurement_vol") == value_type.ddl
    assert _column_type(db, "experiment_measurements", "measurement_ph") == value_type.ddl
    # Each flat cell hashes as the source row it came from, so the post-write check finds only
    # rows a cell cannot show (a duplicate, a NULL value), not every row.
    catalog = [
        MeasurementColumn(t, c) for t, c in db.query("SELECT measurement_type, column_name FROM measurement_types")
    ]
    ((type_charset,),) = db.query(
        "SELECT character_set_name FROM information_schema.columns WHERE table_schema = DATABASE()"
        " AND table_name = 'sample_measurements' AND column_name = 'measurement_type'"
    )
    sql, params = suspect_rows_select(TableLocations.single(db.name), catalog, type_charset, None, value_type)
    assert {row[0] for row in db.query(sql, params)} <= {9, 12}


def _source_type(db) -> tuple[str, str | None, str | None]:
    ((column_type, charset, collation),) = db.query(
        "SELECT column_type, character_set_name, collation_name FROM information_schema.columns"
        " WHERE table_schema = DATABASE() AND table_name = 'sample_measurements' AND column_name = 'value'"
    )
    return column_type, charset, collation


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_value_type_is_built_refreshed_and_checked_exactly(lab_db, name):
    case = CASES[name]
    first, second, third, fourth = case.others
    lab_db.execute(
        "DELETE FROM sample_measurements",
        f"ALTER TABLE sample_measurements MODIFY value {case.ddl}",
        "INSERT INTO sample_measurements VALUES"
        f" (2, 'vol', {case.first}), (3, 'vol', {first}), (9, 'ph', {first}), (9, 'ph', {second}),"
        f" (10, 'vol', {third}), (11, 'ph', {fourth}), (12, 'ph', NULL), (14, 'vol', {fourth})",
    )
    _built_and_exact(lab_db, case, "full")
    lab_db.execute(
        f"UPDATE sample_measurements SET value = {case.changed} WHERE sample_id = 2 AND measurement_type = 'vol'",
        f"INSERT INTO sample_measurements VALUES (13, 'vol', {second})",
        "DELETE FROM sample_measurements WHERE sample_id = 11",
    )
    _built_and_exact(lab_db, case, "incremental")
    lab_db.execute(f"UPDATE experiment_measurements SET measurement_vol = {case.wrong} WHERE sample_id = 2")
    result = run_check(lab_db, "flat_table_reconciles")
    assert not result.passed and result.metadata["offenders"].value == ["sample_id=2 measurement_vol"]


def test_a_type_changed_on_a_built_deployment_is_rebuilt_whole_with_the_new_type(lab_db):
    """DECIMAL(16,6) -> DECIMAL(30,10) -> VARCHAR(40) -> VARCHAR(60): each change rebuilds the table whole at the next
    run (never a mix of old and new columns, never a stuck run), ends exact with the state tables
    recording what it was built from, and the next refresh is incremental again."""
    assert refresh_and_compare(lab_db).startswith("full")
    lab_db.execute(
        "ALTER TABLE sample_measurements MODIFY value DECIMAL(30,10)",
        "UPDATE sample_measurements SET value = 7.0000000001 WHERE sample_id = 3 AND measurement_type = 'ph'",
        "INSERT INTO sample_measurements VALUES (4, 'vol', 98765432109876543210.5)",
    )
    assert refresh_and_compare(lab_db) == "full (measurement column type changed: DECIMAL(16,6) -> DECIMAL(30,10))"
    assert _column_type(lab_db, "experiment_measurements", "measurement_ph") == "DECIMAL(30,10)"
    lab_db.execute(
        "UPDATE sample_measurements SET value = 7.0000000002 WHERE sample_id = 3 AND measurement_type = 'ph'"
    )
    assert refresh_and_compare(lab_db) == "incremental"
    lab_db.execute(
        "ALTER TABLE sample_measurements MODIFY value VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
        "INSERT INTO sample_measurements VALUES (5, 'ph', 'n/a')",
    )
    refresh = refresh_and_compare(lab_db)
    assert refresh.startswith("full (measurement column type changed: DECIMAL(30,10) -> VARCHAR(40)"), refresh
    assert lab_db.query("SELECT measurement_ph FROM experiment_measurements WHERE sample_id IN (3, 5) ORDER BY 1") == [
        ("7.0000000002",),
        ("n/a",),
    ]
    lab_db.execute("UPDATE sample_measurements SET value = 'N/A' WHERE sample_id = 5")
    assert refresh_and_compare(lab_db) == "incremental"
    # A wider column whose values' text (and so the digests) stays the same: only the type
    # forces the rebuild, which a 50-character value then needs.
    lab_db.execute(
        "ALTER TABLE sample_measurements MODIFY value VARCHAR(60) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
        f"INSERT INTO sample_measurements VALUES (6, 'ph', '{'x' * 50}')",
    )
    refresh = refresh_and_compare(lab_db)
    assert refresh.startswith("full (measurement column type changed: VARCHAR(40)"), refresh


def test_a_flat_column_whose_type_was_changed_by_hand_is_named_and_rebuilt(lab_db):
    assert refresh_and_compare(lab_db).startswith("full")
    lab_db.execute("ALTER TABLE experiment_measurements MODIFY measurement_ph DOUBLE")
    result = run_check(lab_db, "flat_table_reconciles")
    assert not result.passed
    assert result.metadata["offenders"].value == [
        "column measurement_ph is DOUBLE, sample_measurements.value is DECIMAL(16,6)"
    ]
    assert refresh_and_compare(lab_db) == "full (measurement column type changed: DOUBLE -> DECIMAL(16,6))"
    assert run_check(lab_db, "flat_table_reconciles").passed


def test_an_unsupported_value_type_stops_before_anything_is_written(lab_db):
    lab_db.execute(
        "DELETE FROM sample_measurements",
        "ALTER TABLE sample_measurements MODIFY value DATE",
        "INSERT INTO sample_measurements VALUES (2, 'd', '2026-01-01')",
    )
    result = lab_db.materialize_all(raise_on_error=False)
    assert not result.success
    errors = [e.event_specific_data.error for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    messages = [str(error.cause.message if error.cause else error.message) for error in errors]
    assert messages and all(
        "sample_measurements.value has a type lab_assets cannot publish exactly" in m for m in messages
    )
    assert not lab_db.query("SHOW TABLES LIKE 'experiment_measurements'")


def test_text_ids_stop_before_anything_is_written_and_ids_beyond_int_are_explained(lab_db):
    # Ids lab_assets keeps as INT: a text experiment id is refused up front, in one sentence; a
    # wider integer type is read, and an id beyond INT's range is explained, not raw.
    lab_db.execute("ALTER TABLE samples MODIFY experiment_id VARCHAR(20)", "UPDATE samples SET experiment_id = 'EXP-1'")
    message = "\n".join(_step_errors(lab_db.materialize_all(raise_on_error=False)))
    assert f"{lab_db.name}.samples: experiment_id is varchar(20); lab_assets reads sample and experiment ids" in message
    assert not lab_db.query("SHOW TABLES LIKE 'experiment_measurements'")
    lab_db.execute("UPDATE samples SET experiment_id = '7'", "ALTER TABLE samples MODIFY experiment_id BIGINT")
    lab_db.materialize_all()  # BIGINT holding INT's values: built
    lab_db.execute("UPDATE samples SET experiment_id = 5000000000 WHERE id = 3")
    message = "\n".join(_step_errors(lab_db.materialize_all(raise_on_error=False)))
    assert (
        "MySQL error 1264: a value is beyond its column's range: lab_assets keeps sample and experiment ids" in message
    )


def _step_errors(result) -> list[str]:
    assert not result.success
    return [e.event_specific_data.error.to_string() for e in result.all_events if e.event_type_value == "STEP_FAILURE"]


@pytest.mark.parametrize(
    "column_type",
    [
        "decimal(66,2)",
        "decimal(40,31)",
        "int(11) zerofill",
        "date",
        "json",
        "varbinary(10)",
        "decimal(10,2)) , x int",
        "varchar(10) character set x",
    ],
)
def test_types_outside_the_grammar_are_refused(column_type):
    # What goes into DDL is written from the parsed numbers and names, so only the grammar passes.
    with pytest.raises(UnsupportedValueType):
        parse_value_type(column_type, "utf8mb4", "utf8mb4_bin")


def test_a_text_types_character_set_and_collation_must_be_plain_names():
    with pytest.raises(UnsupportedValueType):
        parse_value_type("varchar(10)", "utf8mb4", "utf8mb4_bin; DROP TABLE samples")
    with pytest.raises(UnsupportedValueType):
        parse_value_type("text", None, None)


def test_types_are_written_from_their_parts_and_compared_without_display_widths():
    assert parse_value_type("int(11)").ddl == parse_value_type("int").ddl == "INT"
    assert parse_value_type("bigint(20) unsigned").ddl == "BIGINT UNSIGNED"
    assert parse_value_type("decimal(65,30)").ddl == "DECIMAL(65,30)"
    assert parse_value_type("double").tripled("v") is None and parse_value_type("float").exact_text("v") == (
        "CAST(v AS DOUBLE)"
    )
    assert parse_value_type("varchar(20)", "latin1", "latin1_swedish_ci").ddl == (
        "VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_swedish_ci"
    )
    assert max_measurement_columns(parse_value_type("varchar(16383)", "utf8mb4", "utf8mb4_bin")) == 0


def test_the_sensor_sees_a_type_change_that_leaves_every_value_as_it_was(lab_db):
    # DECIMAL(16,6) widened to DECIMAL(20,6): every value's text, so every hash, stays the same.
    from dagster import DagsterInstance, build_sensor_context

    from lab_assets.defs.sensors import lab_source_change_sensor

    lab_db.materialize_all()
    mysql = lab_db.resources()["mysql"]

    def tick():
        context = build_sensor_context(instance=DagsterInstance.ephemeral(), resources={"mysql": mysql})
        return requested_runs(lab_source_change_sensor(context))

    assert tick() == []
    lab_db.execute("ALTER TABLE sample_measurements MODIFY value DECIMAL(20,6)")
    assert len(tick()) == 1
    lab_db.materialize_all()
    assert _column_type(lab_db, "experiment_measurements", "measurement_ph").lower() == "decimal(20,6)"
    assert tick() == []
