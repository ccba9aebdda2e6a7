"""Unit tests of the checks' SQL builders and the column limit; one test measures the limit on the
real server so the constant cannot drift from what CREATE TABLE accepts."""

from __future__ import annotations

import pymysql
import pytest

import lab_assets.checks.flat_table_sql as flat_table_sql
import lab_assets.checks.sql as integrity
from lab_assets.flat_table.sql import (
    MAX_MEASUREMENT_COLUMNS,
    MeasurementColumn,
    column_limit_problem,
    flat_table_definition,
)
from lab_assets.sources.locations import TableLocations
from lab_assets.sources.value_types import DEFAULT_VALUE_TYPE, max_measurement_columns, parse_value_type
from lab_assets.sql.statements import balanced_sum


def test_column_limit_allows_the_limit_and_names_limit_and_count_beyond_it():
    assert MAX_MEASUREMENT_COLUMNS == 996
    assert column_limit_problem([f"measurement_t{i:04d}" for i in range(996)], DEFAULT_VALUE_TYPE) is None
    problem = column_limit_problem([f"measurement_t{i:04d}" for i in range(997)], DEFAULT_VALUE_TYPE)
    assert (
        problem is not None and str(MAX_MEASUREMENT_COLUMNS) in problem and str(MAX_MEASUREMENT_COLUMNS + 1) in problem
    )


def test_column_limit_with_long_names_is_the_definition_budget():
    long_names = [f"measurement_{i:04d}".ljust(64, "x") for i in range(795)]
    assert column_limit_problem(long_names[:794], DEFAULT_VALUE_TYPE) is None
    problem = column_limit_problem(long_names, DEFAULT_VALUE_TYPE)
    assert problem is not None and "definition" in problem


@pytest.mark.parametrize("name_length", [22, 32, 48, 64])
def test_column_limit_is_exactly_what_the_server_accepts(lab_db, name_length):
    """CREATE TABLE of the flat table's shape: the largest count column_limit_problem allows is
    accepted, one more is refused by the server (innodb_strict_mode on, as on the test server)."""

    def names(count: int) -> list[str]:
        return [f"measurement_{i:04d}".ljust(name_length, "x") for i in range(count)]

    allowed = max(n for n in range(700, 1100) if column_limit_problem(names(n), DEFAULT_VALUE_TYPE) is None)
    with lab_db.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT @@innodb_strict_mode, @@innodb_page_size")
        assert cursor.fetchone() == (1, 16384)
        for count, accepted in ((allowed, True), (allowed + 1, False)):
            definition = flat_table_definition(
                [MeasurementColumn(str(i), n) for i, n in enumerate(names(count))], DEFAULT_VALUE_TYPE
            )
            cursor.execute("DROP TABLE IF EXISTS probe")
            try:
                cursor.execute(definition.create_statement(lab_db.name, "probe"))
                created = True
            except pymysql.err.OperationalError as error:
                assert error.args[0] in (1117, 1118), error  # definition too large / row size too large
                created = False
            assert created == accepted, (name_length, count)
        cursor.execute("DROP TABLE IF EXISTS probe")


# (information_schema's column type, character set, the limit measured with CREATE TABLE on
# MariaDB 10.11 by binary search, which max_measurement_columns must give)
MEASURED_LIMITS = [
    ("decimal(16,6)", None, 996),
    ("decimal(30,10)", None, 573),
    ("decimal(65,30)", None, 268),
    ("decimal(65,0)", None, 277),
    ("double", None, 996),
    ("float", None, 1014),
    ("int(11)", None, 1014),
    ("bigint(20) unsigned", None, 996),
    ("varchar(10)", "utf8mb4", 196),
    ("varchar(20)", "latin1", 383),
    ("varchar(63)", "utf8mb4", 31),
    ("varchar(64)", "utf8mb4", 253),
    ("varchar(255)", "utf8mb4", 64),
    ("varchar(300)", "latin1", 216),
    ("char(100)", "latin1", 80),
    ("char(255)", "utf8mb4", 64),
    ("text", "utf8mb4", 383),
]


@pytest.mark.parametrize(("column_type", "charset", "measured"), MEASURED_LIMITS, ids=str)
def test_each_types_column_limit_is_exactly_what_the_server_accepts(lab_db, column_type, charset, measured):
    """The limit for a measurement column type is accepted by CREATE TABLE (the flat table's
    shape), one column more is refused; both as measured when the rule was written."""
    value_type = parse_value_type(column_type, charset, charset and f"{charset}_bin")
    allowed = max_measurement_columns(value_type)
    assert allowed == measured
    with lab_db.connect() as connection, connection.cursor() as cursor:
        for count, accepted in ((allowed, True), (allowed + 1, False)):
            columns = [MeasurementColumn(str(i), f"measurement_t{i:04d}") for i in range(count)]
            cursor.execute("DROP TABLE IF EXISTS probe")
            try:
                cursor.execute(flat_table_definition(columns, value_type).create_statement(lab_db.name, "probe"))
                created = True
            except pymysql.err.OperationalError as error:
                assert error.args[0] in (1005, 1117, 1118), error  # too many columns / row size too large
                created = False
            assert created == accepted, (column_type, count)
        cursor.execute("DROP TABLE IF EXISTS probe")


def test_offenders_wraps_with_count_and_limit():
    sql = integrity.offenders("SELECT 1 AS x", "x", limit=5)
    assert "COUNT(*) OVER ()" in sql and sql.rstrip().endswith("LIMIT 5")


WEIRD = TableLocations.single("we`ird")
LAB = TableLocations.single("lab")


def test_builders_quote_the_schema():
    for sql in (
        integrity.cycle_samples_select(WEIRD),
        integrity.missing_parent_samples_select(WEIRD),
        integrity.measurements_without_sample_select(WEIRD),
        integrity.duplicate_measurements_select(WEIRD, "utf8mb4_bin"),
        integrity.sample_rows_mismatch_select(WEIRD, "experiment_measurements"),
    ):
        assert "`we``ird`.`samples`" in sql or "`we``ird`.`sample_measurements`" in sql


def test_collation_names_are_validated_not_quoted():
    with pytest.raises(ValueError):
        integrity.duplicate_measurements_select(LAB, "utf8mb4_bin; DROP TABLE samples")
    with pytest.raises(ValueError):
        flat_table_sql.reconciliation_select(LAB, "em", "mt", [], "utf8mb4", "x' OR 1", DEFAULT_VALUE_TYPE)


def test_reconciliation_binds_column_names_as_values_and_quotes_them_as_identifiers():
    sql, params = flat_table_sql.reconciliation_select(
        LAB,
        "experiment_measurements",
        "measurement_types",
        ["measurement_a`b"],
        "utf8mb4",
        "utf8mb4_general_ci",
        DEFAULT_VALUE_TYPE,
    )
    assert params == ("measurement_a`b",)
    assert "WHEN %s THEN e.`measurement_a``b`" in sql
    sql, params = flat_table_sql.reconciliation_select(
        LAB, "experiment_measurements", "measurement_types", [], "utf8mb4", "utf8mb4_general_ci", DEFAULT_VALUE_TYPE
    )
    assert params == () and "%s" not in sql


def test_duplicate_column_names_includes_identifying_columns():
    sql, params = integrity.duplicate_column_names_select(LAB, "measurement_types")
    assert params == ("experiment_id", "top_parent_id", "sample_id") and sql.count("%s") == 3


def test_balanced_sum_is_shallow_and_complete():
    terms = [f"t{i}" for i in range(1000)]
    sql = balanced_sum(terms)
    depth = max_depth = 0
    for char in sql:
        depth += {"(": 1, ")": -1}.get(char, 0)
        max_depth = max(max_depth, depth)
    assert max_depth <= 10 and sql.replace("(", "").replace(")", "").split(" + ") == terms
