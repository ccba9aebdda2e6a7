"""The type of sample_measurements.value as lab_assets accepts it (lab_assets.lib.value_types)."""

from __future__ import annotations

import pytest

from lab_assets.lib.value_types import UnsupportedValueType, max_measurement_columns, parse_value_type


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
    ],  # fmt: skip
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
