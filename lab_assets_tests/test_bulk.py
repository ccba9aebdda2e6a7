"""The bulk-build pieces (lab_assets.sql.bulk) and their effect on whole tables with unreachable
samples (parent cycles, missing parents), which only the missing-rows step of the lineage build
fills in."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from lab_assets.flat_table.verification_sql import unbuilt_lineage_rows_select
from lab_assets.sources.locations import TableLocations
from lab_assets.sql.bulk import CHUNK_FILTER, BulkBuild, chunk_select, key_ranges, missing_rows_insert, unchunked_select
from lab_assets_tests.lab_data import assert_flat_table_is_exact, insert


def test_key_ranges_cover_the_bounds_without_overlap():
    assert key_ranges(None, None, 10) == []
    assert key_ranges(5, 5, 10) == [(5, 5)]
    assert key_ranges(1, 25, 10) == [(1, 10), (11, 20), (21, 25)]


def test_chunk_select_replaces_the_one_placeholder_with_integers():
    sql = f"SELECT 1 FROM t AS s WHERE {CHUNK_FILTER} GROUP BY s.id"
    assert chunk_select(sql, "s.id", 3, 7) == "SELECT 1 FROM t AS s WHERE s.id BETWEEN 3 AND 7 GROUP BY s.id"
    assert unchunked_select(sql) == "SELECT 1 FROM t AS s WHERE TRUE GROUP BY s.id"
    with pytest.raises(ValueError):
        chunk_select("SELECT 1", "s.id", 1, 2)
    with pytest.raises(ValueError):
        BulkBuild(select_sql="SELECT 1", chunk_key="s.id", chunk_bounds_sql="SELECT 1, 2")


def test_missing_rows_insert_is_an_anti_join_on_the_primary_key():
    sql = missing_rows_insert(
        "db", "t__new", ["sample_id", "depth"], ["sample_id"], "SELECT id AS sample_id, NULL AS depth FROM s"
    )
    assert sql.startswith("INSERT INTO `db`.`t__new` (`sample_id`, `depth`)")
    assert "LEFT JOIN `db`.`t__new` AS present ON present.`sample_id` = candidate.`sample_id`" in sql
    assert sql.endswith("WHERE present.`sample_id` IS NULL")


def test_cycles_and_missing_parents_get_null_roots_in_chunked_builds(empty_lab_db):
    # 1 <- 2 <- 3 is a tree; 4 <-> 5 is a cycle; 6's parent 99 does not exist; 7 hangs below 6.
    samples = [(1, None, 1), (2, 1, 1), (3, 2, 1), (4, 5, 2), (5, 4, 2), (6, 99, 3), (7, 6, 3)]
    measurements = [
        (3, "ph", Decimal("7.1")),
        (5, "vol", Decimal("2")),
        (7, "ph", Decimal("1")),
        (42, "ph", Decimal("9")),
    ]
    with empty_lab_db.connect() as connection:
        insert(connection, samples, measurements)
    empty_lab_db.materialize_all()
    lineage = empty_lab_db.query("SELECT sample_id, top_parent_id, depth FROM sample_lineage ORDER BY sample_id")
    assert lineage == [
        (1, 1, 0),
        (2, 1, 1),
        (3, 1, 2),
        (4, None, None),
        (5, None, None),
        (6, None, None),
        (7, None, None),
    ]
    with empty_lab_db.connect() as connection:
        assert_flat_table_is_exact(connection)


def test_a_clean_whole_build_skips_the_verifications_anti_join(empty_lab_db):
    """Every lineage row has a flat row after a clean full refresh, so the verification's
    anti-join of the lineage against the flat table is skipped (test_checks' wrong-build test
    shows it runs when there are some). The lineage's own missing-rows anti-join always runs."""
    samples = [(1, None, 1), (2, 1, 1), (3, 2, 1), (4, None, 2), (5, 4, 2)]
    with empty_lab_db.connect() as connection:
        insert(connection, samples, [(3, "ph", Decimal("7.1"))])
    statements: list[str] = []

    def record(connection, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        empty_lab_db.materialize_all()
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    lineage_fills = [s for s in statements if s.startswith("INSERT INTO") and "`sample_lineage__new`" in s]
    assert [s for s in lineage_fills if "AS present ON" in s], "the lineage was not built whole"
    assert unbuilt_lineage_rows_select(TableLocations.single(empty_lab_db.name)) not in "\n".join(statements)
    assert empty_lab_db.query("SELECT sample_id, top_parent_id, depth FROM sample_lineage ORDER BY sample_id") == [
        (1, 1, 0),
        (2, 1, 1),
        (3, 1, 2),
        (4, 4, 0),
        (5, 4, 1),
    ]
