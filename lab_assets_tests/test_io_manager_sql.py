"""The IO manager's SQL text (lab_assets/io_manager/sql.py), no server: the partition condition
and its parameters, the slice's SELECT, the DELETE of gone keys, the swap's RENAME. And the
modules meant to need neither Dagster nor a connection import with both blocked."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lab_assets.io_manager.sql import (
    PartitionFilter,
    add_columns_statement,
    delete_where_statement,
    drop_tables_statement,
    gone_keys_delete,
    partition_condition,
    partition_expression,
    slice_select,
    swap_statement,
)
from lab_assets.sql.statements import Column

ROOT = Path(__file__).resolve().parent.parent
PURE_MODULES = ("lab_assets/io_manager/sql.py", "lab_assets/io_manager/kinds.py")


def test_no_partitions_select_every_row():
    assert partition_condition([]) == ("", ())


def test_a_column_name_is_quoted_and_other_sql_keeps_its_percent_signs():
    assert partition_expression("color") == "`color`"
    assert partition_expression("STR_TO_DATE(k, '%Y-%m-%d')") == "STR_TO_DATE(k, '%%Y-%%m-%%d')"


def test_static_keys_are_bound_parameters():
    condition, params = partition_condition([PartitionFilter("color", keys=("red", "o'brien"))])
    assert condition == "(`color` IN (%s, %s))"
    assert params == ("red", "o'brien")


def test_a_dimension_with_no_keys_matches_nothing():
    condition, params = partition_condition([PartitionFilter("color", keys=())])
    assert (condition, params) == ("(1 = 0)", ())


def test_a_time_window_is_half_open_and_compared_without_its_zone():
    start = datetime(2022, 1, 1, tzinfo=timezone.utc)
    condition, params = partition_condition([PartitionFilter("day", window=(start, start + timedelta(days=1)))])
    assert condition == "(`day` >= %s AND `day` < %s)"
    assert params == (datetime(2022, 1, 1), datetime(2022, 1, 2))
    assert all(value.tzinfo is None for value in params)


def test_dimensions_are_joined_with_and_in_order():
    start = datetime(2022, 1, 1)
    condition, params = partition_condition(
        [PartitionFilter("day", window=(start, start + timedelta(days=1))), PartitionFilter("color", keys=("red",))]
    )
    assert condition == "(`day` >= %s AND `day` < %s) AND (`color` IN (%s))"
    assert params == (start, start + timedelta(days=1), "red")


def test_slice_select_names_its_columns_and_partitions():
    assert slice_select("db", "t", None, []) == ("SELECT * FROM `db`.`t`", ())
    sql, params = slice_select("db", "t", ["a", "b`c"], [PartitionFilter("color", keys=("red",))])
    assert sql == "SELECT `a`, `b``c` FROM `db`.`t` WHERE (`color` IN (%s))"
    assert params == ("red",)


def test_partition_delete():
    condition, _ = partition_condition([PartitionFilter("color", keys=("red",))])
    assert delete_where_statement("db", "t", condition) == "DELETE FROM `db`.`t` WHERE (`color` IN (%s))"


def test_gone_keys_delete_reads_only_the_keys_the_build_did_not_produce():
    assert gone_keys_delete("db", "t", "t__keys", "t__rows", "sample_id") == (
        "DELETE /*+ NO_MERGE(gone) */ target FROM `db`.`t` AS target JOIN ("
        "SELECT k.`sample_id` FROM `db`.`t__keys` AS k LEFT JOIN `db`.`t__rows` AS fresh"
        " ON fresh.`sample_id` = k.`sample_id` WHERE fresh.`sample_id` IS NULL"
        ") AS gone ON gone.`sample_id` = target.`sample_id`"
    )


def test_the_swap_is_one_rename():
    assert swap_statement("db", "t", "t__new", "t__old", replacing=True) == (
        "RENAME TABLE `db`.`t` TO `db`.`t__old`, `db`.`t__new` TO `db`.`t`"
    )
    assert swap_statement("db", "t", "t__new", "t__old", replacing=False) == "RENAME TABLE `db`.`t__new` TO `db`.`t`"
    # A companion built aside is swapped by the same statement (created for the first time here).
    assert swap_statement("db", "t", "t__new", "t__old", True, [("s", "s__new", "s__old", False)]) == (
        "RENAME TABLE `db`.`t` TO `db`.`t__old`, `db`.`t__new` TO `db`.`t`, `db`.`s__new` TO `db`.`s`"
    )


def test_drop_and_add_columns():
    assert drop_tables_statement("db", "a") == "DROP TABLE IF EXISTS `db`.`a`"
    assert drop_tables_statement("db", "a", "b") == "DROP TABLE IF EXISTS `db`.`a`, `db`.`b`"
    columns = [Column("x", "BIGINT"), Column("y z", "TEXT")]
    assert (
        add_columns_statement("db", "t", columns) == "ALTER TABLE `db`.`t` ADD COLUMN `x` BIGINT, ADD COLUMN `y z` TEXT"
    )


BLOCKED_IMPORT = """
import importlib.abc, importlib.util, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"dagster", "sqlalchemy", "pymysql", "pandas"}:
            raise ImportError(f"{name} is blocked")
        return None

sys.meta_path.insert(0, Blocked())
# Loaded by path: importing lab_assets.io_manager.<module> would run the package's __init__,
# which imports the Dagster side on purpose.
spec = importlib.util.spec_from_file_location("pure_module", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["pure_module"] = module
spec.loader.exec_module(module)
"""


@pytest.mark.parametrize("path", PURE_MODULES)
def test_imports_without_dagster_or_a_connection(path):
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORT, str(ROOT / path)], check=False, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
