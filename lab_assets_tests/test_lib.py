"""Unit tests of lab_assets.lib: pure code, no database."""

from __future__ import annotations

import re
import threading

import pytest

from lab_assets.catalog.naming import MYSQL_MAX_IDENTIFIER_LENGTH, column_name_for_type
from lab_assets.catalog.sql import measurement_type_catalog_select
from lab_assets.flat_table.sql import MeasurementColumn, flat_table_definition, pivot_select
from lab_assets.flat_table.summary_sql import aggregates_select, name_literal, rows_of_keys, stored_value_type
from lab_assets.mysql.sessions import recursion_limit, recursion_limit_statement
from lab_assets.names import helper_table as staging_table_name
from lab_assets.sources.hashes import fingerprint_select
from lab_assets.sources.locations import TableLocations
from lab_assets.sources.value_types import DEFAULT_VALUE_TYPE, parse_value_type
from lab_assets.sql.statements import Column, TableDefinition, quote_identifier

ODD_TYPES = [
    "pH-1",
    "temp C",
    "o2%",
    "a`b",
    "it's",
    'say"hi',
    "VOL",
    "Vol",
    "vol ",
    "",
    "é",
    "x__y",
    "__",
    "1st",
    "drop;--",
]


@pytest.mark.parametrize("plain", ["ph", "vol", "smoot", "a", "x1", "long_name1", "abcdefghij"])
def test_plain_lowercase_identifiers_keep_the_seed_names(plain):
    assert column_name_for_type(plain) == f"measurement_{plain}"


def test_odd_types_get_safe_unique_stable_names():
    names = [column_name_for_type(t) for t in ODD_TYPES]
    for name in names:
        assert re.fullmatch(r"measurement_[a-z0-9_]+__[0-9a-f]{8}", name), name
        assert len(name) <= MYSQL_MAX_IDENTIFIER_LENGTH
    assert len({n.lower() for n in [*names, column_name_for_type("vol")]}) == len(ODD_TYPES) + 1
    assert names == [column_name_for_type(t) for t in ODD_TYPES], "names do not depend on call order or state"


def test_hashed_names_never_equal_a_plain_name():
    # A plain type can look like a hashed name's tail, but plain names never contain "__".
    hashed = column_name_for_type("pH-1")
    tail = hashed.removeprefix("measurement_")
    assert column_name_for_type(tail) != hashed


def test_very_long_types_stay_within_the_identifier_limit():
    assert len(column_name_for_type("x" * 200)) <= MYSQL_MAX_IDENTIFIER_LENGTH
    assert len(column_name_for_type("X" * 200)) <= MYSQL_MAX_IDENTIFIER_LENGTH


def test_quote_identifier_doubles_backticks_and_rejects_empty():
    assert quote_identifier("a`b") == "`a``b`"
    assert quote_identifier("plain") == "`plain`"
    with pytest.raises(ValueError):
        quote_identifier("")


def test_staging_names_fit_the_identifier_limit():
    assert staging_table_name("t", "new") == "t__new"
    assert len(staging_table_name("x" * 64, "new")) == MYSQL_MAX_IDENTIFIER_LENGTH


def test_table_definition_create_statement():
    definition = TableDefinition(
        columns=(Column("id", "INT NOT NULL"), Column("v`x", "TEXT")), primary_key=("id",), indexes=(("v`x",),)
    )
    assert definition.create_statement("db", "t") == (
        "CREATE TABLE `db`.`t` (\n  `id` INT NOT NULL,\n  `v``x` TEXT,\n  PRIMARY KEY (`id`),\n  KEY (`v``x`)\n)"
        " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    )


def test_recursion_limit_never_below_server_default_and_covers_every_depth():
    assert recursion_limit(0) == 1000
    assert recursion_limit(5000) == 5001
    assert recursion_limit_statement(True, 5001) == "SET SESSION max_recursive_iterations = 5001"
    assert recursion_limit_statement(False, 5001) == "SET SESSION cte_max_recursion_depth = 5001"


def test_flat_table_columns_identifying_first_then_by_column_name():
    columns = [MeasurementColumn("vol", "measurement_vol"), MeasurementColumn("ph", "measurement_ph")]
    definition = flat_table_definition(columns, DEFAULT_VALUE_TYPE)
    assert definition.column_names == (
        "experiment_id",
        "top_parent_id",
        "sample_id",
        "measurement_ph",
        "measurement_vol",
    )
    assert definition.primary_key == ("sample_id",)


def test_pivot_binds_type_values_in_column_order_before_lineage_params():
    columns = [
        MeasurementColumn("vol", "measurement_vol"),
        MeasurementColumn("o2%'; DROP", "measurement_o2_drop__12345678"),
    ]
    sql, params = pivot_select(
        TableLocations.single("db"), "(SELECT ...)", ("lineage-param",), columns, DEFAULT_VALUE_TYPE
    )
    assert params == ("o2%'; DROP", "vol", "lineage-param")
    assert sql.index("%s") < sql.index("(SELECT ...)"), "pivot placeholders precede the lineage subquery in the text"
    assert "DROP" not in sql and "o2" not in sql.replace("measurement_o2_drop__12345678", "")
    assert sql.count("%s") == 2


def test_fingerprint_and_catalog_sql_quote_identifiers():
    assert "FROM `d``b`.`samples`" in fingerprint_select(TableLocations.single("d`b"), "samples", ["id"])
    with pytest.raises(ValueError):
        measurement_type_catalog_select(TableLocations.single("db"), "utf8mb4", "utf8mb4_bin; DROP TABLE x")


# Words MySQL 8 reserves that MariaDB 10.11 accepts as plain identifiers: an unquoted alias among
# them passes every test here and fails on the production server (MySQL 8.0 reference manual,
# "Keywords and Reserved Words", words marked (R)).
MYSQL8_ONLY_RESERVED = {
    "cube",
    "cume_dist",
    "dense_rank",
    "empty",
    "first_value",
    "function",
    "generated",
    "grouping",
    "groups",
    "json_table",
    "lag",
    "last_value",
    "lateral",
    "lead",
    "master_bind",
    "nth_value",
    "ntile",
    "of",
    "optimizer_costs",
    "over",
    "percent_rank",
    "rank",
    "row",
    "rows",
    "row_number",
    "stored",
    "system",
    "virtual",
    "window",
}


def _refresh_sql_texts() -> list[str]:
    import lab_assets.digests.sql as digests
    import lab_assets.lineage.sql as lineage
    import lab_assets.state.bucket_sql as bucket_sql
    import lab_assets.state.sql as state

    schema = SEPARATE
    return [
        state.changed_bucket_members_select(
            schema, digests.MEASUREMENT_BUCKETS, digests.measurement_bucket_sums_select(schema, DEFAULT_VALUE_TYPE), "b"
        ),
        digests.candidate_digests_select(schema, "candidates", DEFAULT_VALUE_TYPE),
        digests.changed_measurement_samples_select(schema, "candidates", "live"),
        digests.changed_digests_select(schema, "live", "changes"),
        lineage.changed_samples_select(schema, "candidates"),
        digests.measurement_bucket_sums_select(schema, DEFAULT_VALUE_TYPE),
        digests.DIGEST_STATE.stored_sums_select(schema),
        digests.candidate_bucket_sums_select(schema, "live"),
        lineage.lineage_bucket_sums_select(schema),
        lineage.LINEAGE_STATE.stored_sums_select(schema, ("candidates", "changes")),
        lineage.moved_samples_select(schema, "changes"),
        lineage.descendants_select(schema, "moved"),
        lineage.lineage_update_select(schema, "changes"),
        *bucket_sql.bucket_table_update_statements(
            schema,
            lineage.LINEAGE_STATE,
            ("candidates", "changes"),
            lineage.LINEAGE_STATE.stored_sums_select(schema, ("candidates", "changes")),
        ),
        *bucket_sql.stale_bucket_repair_statements(schema, lineage.LINEAGE_STATE, "candidates"),
        *(s for part in bucket_sql.bucket_delta_statements(schema, lineage.LINEAGE_STATE, "changes") for s in part),
        *(s for part in bucket_sql.bucket_delta_statements(schema, digests.DIGEST_STATE, "changes") for s in part),
    ]


SEPARATE = TableLocations(source_database="lab", output_database="lab_out")


def _statements_of_every_builder() -> list[str]:
    """Every SQL text the builders make, for sources and output in separate databases."""
    import lab_assets.catalog.sql as catalog_sql
    import lab_assets.checks.flat_table_sql as flat_table_sql
    import lab_assets.checks.sql as integrity
    import lab_assets.digests.sql as digests
    import lab_assets.lineage.sql as lineage
    import lab_assets.sources.hashes as sources
    import lab_assets.state.bucket_sql as bucket_sql
    from lab_assets.flat_table.sql import in_sample_id_ranges

    tables = SEPARATE
    pivot, _ = pivot_select(
        tables, tables.qualified("sample_lineage"), (), [MeasurementColumn("ph", "measurement_ph")], DEFAULT_VALUE_TYPE
    )
    return [
        *_refresh_sql_texts(),
        digests.measurement_digest_select(tables, DEFAULT_VALUE_TYPE),
        str(digests.digest_bulk_build(tables, DEFAULT_VALUE_TYPE)),
        *bucket_sql.bucket_table_build_statements(tables, digests.DIGEST_STATE),
        bucket_sql.state_row_count_select(tables, digests.DIGEST_STATE),
        lineage.lineage_select(tables),
        str(lineage.lineage_bulk_build(tables)),
        sources.fingerprint_select(tables, "samples", ["id"]),
        sources.fingerprint_select(
            tables, "sample_measurements", ["sample_id", "measurement_type", "value"], DEFAULT_VALUE_TYPE
        ),
        catalog_sql.measurement_type_catalog_select(tables, "utf8mb4", "utf8mb4_general_ci"),
        pivot,
        str(in_sample_id_ranges(tables, pivot)),
        integrity.cycle_samples_select(tables),
        integrity.missing_parent_ids_select(tables),
        integrity.measurements_without_type_select(tables),
        integrity.duplicate_column_names_select(tables, "measurement_types")[0],
        integrity.sample_rows_mismatch_select(tables, "experiment_measurements"),
        flat_table_sql.reconciliation_select(
            tables,
            "experiment_measurements",
            "measurement_types",
            ["measurement_ph"],
            "utf8mb4",
            "utf8mb4_bin",
            DEFAULT_VALUE_TYPE,
        )[0],
        flat_table_sql.reconciliation_offending_samples_select(
            tables, "experiment_measurements", [("ph", "measurement_ph")], DEFAULT_VALUE_TYPE
        )[0],
    ]


def test_sources_are_read_in_the_source_database_and_everything_else_lives_in_the_output_one():
    for sql in _statements_of_every_builder():
        qualified = set(re.findall(r"`(lab|lab_out)`\.`([^`]+)`", sql))
        assert qualified, sql
        for database, table in qualified:
            expected = "lab" if table in ("samples", "sample_measurements") else "lab_out"
            assert database == expected, (database, table, sql)


def test_sql_aliases_are_not_words_mysql8_reserves():
    for sql in _refresh_sql_texts():
        aliases = {a.lower() for a in re.findall(r"\bAS\s+([A-Za-z_][A-Za-z_0-9]*)", sql)}
        assert not aliases & MYSQL8_ONLY_RESERVED, (aliases & MYSQL8_ONLY_RESERVED, sql)


def test_completed_in_threads_runs_tasks_side_by_side_and_hands_back_errors():
    from lab_assets.mysql.threads import completed_in_threads

    # Each task waits for the other two at the barrier: run one after another they would time out.
    barrier = threading.Barrier(3, timeout=5)

    def task(value):
        def run():
            barrier.wait()
            if value == "bad":
                raise ValueError("bad input")
            return value

        return run

    finished = {
        name: (result, error) for name, result, error in completed_in_threads({n: task(n) for n in ("a", "b", "bad")})
    }
    assert finished["a"] == ("a", None) and finished["b"] == ("b", None)
    assert finished["bad"][0] is None and str(finished["bad"][1]) == "bad input"


def test_the_column_summary_aggregates_its_rows_in_one_pass_and_text_by_its_bytes():
    text = parse_value_type("varchar(20)", "utf8mb4", "utf8mb4_general_ci")
    sql = aggregates_select(["measurement_ph", "measurement_vol"], text, rows_of_keys("db", "flat", "keys"))
    assert sql is not None
    # One aggregate row over the keys' rows (looked up by primary key), one output row per column.
    assert sql.count("FROM") == 2 and sql.count("STRAIGHT_JOIN `db`.`flat` AS f ON f.sample_id = k.sample_id") == 1
    assert "MIN(CAST(f.`measurement_ph` AS BINARY)) AS lo0" in sql and "'measurement_vol' AS column_name" in sql
    assert stored_value_type(text) == "LONGBLOB" and stored_value_type(DEFAULT_VALUE_TYPE) == "DECIMAL(16,6)"
    assert aggregates_select([], text, "t AS f") is None
    for bad in ("it's", "a b", "", "x" * 65):
        with pytest.raises(ValueError):
            name_literal(bad)
