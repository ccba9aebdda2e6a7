"""Integration: materialize everything against real MariaDB and compare the whole flat table with
the independent Python recomputation."""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from pathlib import Path

import pytest

from lab_assets_tests.lab_data import (
    actual_flat_table,
    assert_flat_table_is_exact,
    expected_flat_table,
    generate,
    insert,
    read_sources,
)

GOLDEN_TSV = Path(__file__).with_name("expected-seed-table.tsv")


def _golden_rows() -> dict[int, dict[str, object]]:
    with GOLDEN_TSV.open(newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        return {
            int(row["sample_id"]): {
                name: (None if cell == "" else (Decimal(cell) if name.startswith("measurement_") else int(cell)))
                for name, cell in row.items()
            }
            for row in reader
        }


def test_seed_table_matches_golden_file_cell_by_cell(lab_db):
    lab_db.materialize_all()
    with lab_db.connect() as connection:
        names, actual = actual_flat_table(connection)
    golden = _golden_rows()
    assert names == ["experiment_id", "top_parent_id", "sample_id", "measurement_ph", "measurement_vol"]
    assert actual == golden


def test_flat_table_schema(lab_db):
    lab_db.materialize_all()
    columns = lab_db.query(
        "SELECT column_name, column_type, is_nullable, column_key FROM information_schema.columns"
        " WHERE table_schema = DATABASE() AND table_name = 'experiment_measurements' ORDER BY ordinal_position"
    )
    # MySQL 8.0.19+ reports `int`, MariaDB `int(11)`: the display width is not part of the type.
    columns = [(name, re.sub(r"^int\(11\)", "int", column_type), *rest) for name, column_type, *rest in columns]
    assert columns == [
        ("experiment_id", "int", "YES", "MUL"),
        ("top_parent_id", "int", "YES", "MUL"),
        ("sample_id", "int", "NO", "PRI"),
        ("measurement_ph", "decimal(16,6)", "YES", ""),
        ("measurement_vol", "decimal(16,6)", "YES", ""),
    ]


@pytest.mark.parametrize("sample_count", [1_000, 10_000, 100_000])
def test_generated_data_whole_table_equals_independent_recomputation(lab_db, sample_count):
    generated_samples, generated_measurements = generate(sample_count)
    with lab_db.connect() as connection:
        insert(connection, generated_samples, generated_measurements)
    lab_db.materialize_all()
    with lab_db.connect() as connection:
        source_samples, source_measurements = read_sources(connection)
        names, actual = actual_flat_table(connection)
    measurement_columns, expected = expected_flat_table(source_samples, source_measurements)
    assert len(source_samples) == sample_count + 20
    assert names == ["experiment_id", "top_parent_id", "sample_id", *measurement_columns]
    assert actual == expected


def test_second_run_on_unchanged_data_gives_the_same_table(lab_db):
    with lab_db.connect() as connection:
        insert(connection, *generate(2_000))
    lab_db.materialize_all()
    with lab_db.connect() as connection:
        first = actual_flat_table(connection)
    lab_db.materialize_all()
    with lab_db.connect() as connection:
        assert actual_flat_table(connection) == first


def test_five_thousand_deep_chain_gets_its_root(empty_lab_db):
    depth = 5_000
    chain = [(1, None, 1)] + [(n, n - 1, 1) for n in range(2, depth + 1)]
    with empty_lab_db.connect() as connection:
        insert(connection, chain, [(depth, "ph", Decimal("7.5"))])
    empty_lab_db.materialize_all()
    lineage = empty_lab_db.query("SELECT sample_id, top_parent_id, depth FROM sample_lineage ORDER BY sample_id")
    assert lineage == [(n, 1, n - 1) for n in range(1, depth + 1)]
    with empty_lab_db.connect() as connection:
        assert_flat_table_is_exact(connection)


def test_empty_source_tables_give_an_empty_table_with_identifying_columns(empty_lab_db):
    empty_lab_db.materialize_all()
    with empty_lab_db.connect() as connection:
        names, rows = actual_flat_table(connection)
    assert names == ["experiment_id", "top_parent_id", "sample_id"] and rows == {}
