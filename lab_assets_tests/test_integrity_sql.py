"""Unit tests of the checks' SQL builders and the column limit; one test measures the limit on the
real server so the constant cannot drift from what CREATE TABLE accepts."""

from __future__ import annotations

import pymysql
import pytest

from lab_assets.lib import integrity
from lab_assets.lib.flat_table import (
    MAX_MEASUREMENT_COLUMNS,
    MeasurementColumn,
    column_limit_problem,
    flat_table_definition,
)
from lab_assets.lib.sql import balanced_sum
from lab_assets.lib.tables import TableLocations


def test_column_limit_allows_the_limit_and_names_limit_and_count_beyond_it():
    assert column_limit_problem([f"measurement_t{i:04d}" for i in range(MAX_MEASUREMENT_COLUMNS)]) is None
    problem = column_limit_problem([f"measurement_t{i:04d}" for i in range(MAX_MEASUREMENT_COLUMNS + 1)])
    assert (
        problem is not None and str(MAX_MEASUREMENT_COLUMNS) in problem and str(MAX_MEASUREMENT_COLUMNS + 1) in problem
    )


def test_column_limit_with_long_names_is_the_definition_budget():
    long_names = [f"measurement_{i:04d}".ljust(64, "x") for i in range(795)]
    assert column_limit_problem(long_names[:794]) is None
    assert "definition" in column_limit_problem(long_names)


@pytest.mark.parametrize("name_length", [22, 32, 48, 64])
def test_column_limit_is_exactly_what_the_server_accepts(lab_db, name_length):
    """CREATE TABLE of the flat table's shape: the largest count column_limit_problem allows is
    accepted, one more is refused by the server (innodb_strict_mode on, as on the test server)."""

    def names(count: int) -> list[str]:
        return [f"measurement_{i:04d}".ljust(name_length, "x") for i in range(count)]

    allowed = max(n for n in range(700, 1100) if column_limit_problem(names(n)) is None)
    with lab_db.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT @@innodb_strict_mode, @@innodb_page_size")
        assert cursor.fetchone() == (1, 16384)
        for count, accepted in ((allowed, True), (allowed + 1, False)):
            definition = flat_table_definition([MeasurementColumn(str(i), n) for i, n in enumerate(names(count))])
            cursor.execute("DROP TABLE IF EXISTS probe")
            try:
                cursor.execute(definition.create_statement(lab_db.name, "probe"))
                created = True
            except pymysql.err.OperationalError as error:
                assert error.args[0] in (1117, 1118), error  # definition too large / row size too large
                created = False
            assert created == accepted, (name_length, count)
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
        integrity.reconciliation_select(LAB, "em", "mt", [], "utf8mb4", "x' OR 1")


def test_reconciliation_binds_column_names_as_values_and_quotes_them_as_identifiers():
    sql, params = integrity.reconciliation_select(
        LAB, "experiment_measurements", "measurement_types", ["measurement_a`b"], "utf8mb4", "utf8mb4_general_ci"
    )
    assert params == ("measurement_a`b",)
    assert "WHEN %s THEN e.`measurement_a``b`" in sql
    sql, params = integrity.reconciliation_select(
        LAB, "experiment_measurements", "measurement_types", [], "utf8mb4", "utf8mb4_general_ci"
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
