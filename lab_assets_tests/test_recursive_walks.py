"""Every recursive walk down the sample trees steps through the parent index named in its SQL
(``FORCE INDEX``), whatever the optimizer would pick: with statistics taken while a table was
empty, MariaDB otherwise scans every sample once per level. SQL text only, no server."""

from __future__ import annotations

import re

import pytest

import lab_assets.checks.flat_table_sql as flat_table_sql
import lab_assets.checks.sql as integrity
import lab_assets.lineage.sql as lineage
from lab_assets.sources.locations import TableLocations
from lab_assets.sources.value_types import parse_value_type

TABLES = TableLocations("lab", "out", parent_index="fk_parent")
FORCED = "FORCE INDEX (`fk_parent`)"

WALKS = {
    "lineage_select": lambda: lineage.lineage_select(TABLES),
    "lineage_bulk_build": lambda: lineage.lineage_bulk_build(TABLES).select_sql,
    "cycle_samples_select": lambda: integrity.cycle_samples_select(TABLES),
    "missing_parent_samples_select": lambda: integrity.missing_parent_samples_select(TABLES),
    "reconciliation_select": lambda: flat_table_sql.reconciliation_select(
        TABLES,
        "experiment_measurements",
        "measurement_types",
        ["measurement_ph"],
        "utf8mb4",
        "utf8mb4_general_ci",
        parse_value_type("decimal(16,6)", None, None),
    )[0],
    "descendants_select": lambda: lineage.descendants_select(TABLES, "sample_lineage__moved"),
}


@pytest.mark.parametrize("name", sorted(WALKS))
def test_each_step_down_the_samples_forces_the_parent_index(name):
    sql = WALKS[name]()
    assert "WITH RECURSIVE" in sql
    # A step down: a line of a CTE's member that reads the CTE itself and joins samples to it.
    ctes = re.findall(r"(?:RECURSIVE |,\n)(\w+) \([\w, ]+\) AS \(", sql)
    with_clause = sql.split("\n)\nSELECT")[0]
    steps = [
        line
        for line in with_clause.splitlines()
        if "`lab`.`samples`" in line and any(re.search(rf"FROM {cte}\b", line) for cte in ctes)
    ]
    assert steps, (name, sql)
    for step in steps:
        assert f"`lab`.`samples` AS child {FORCED} ON child.parent_id = " in step, (name, step)


def test_without_a_parent_index_no_hint_is_written():
    assert "FORCE INDEX" not in lineage.lineage_select(TableLocations("lab", "out"))
