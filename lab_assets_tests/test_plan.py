"""The flat table's full-or-incremental decision, without a database: each reason on its own,
their order, and the 25% share at its boundary."""

from __future__ import annotations

import pytest

from lab_assets.flat_table.plan import plan_flat_table

COLUMNS = ("experiment_id", "top_parent_id", "sample_id", "measurement_ph")


def _plan(**changes):
    arguments = dict(
        full_refresh_requested=False,
        present_columns=COLUMNS,
        wanted_columns=COLUMNS,
        present_value_types=["DECIMAL(16,6)"],
        wanted_value_type="DECIMAL(16,6)",
        upstream_rebuilt_whole=False,
        pending_count=3,
        sample_count=100,
    )
    return plan_flat_table(**{**arguments, **changes})


def test_nothing_forcing_a_build_is_incremental():
    plan = _plan()
    assert plan.incremental and plan.metadata_value == "incremental" and "3 changed samples" in plan.reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"full_refresh_requested": True}, "full refresh requested"),
        ({"present_columns": ()}, "table missing"),
        ({"present_columns": COLUMNS[:3]}, "measurement columns changed"),
        ({"present_columns": (*COLUMNS[:2], COLUMNS[3], COLUMNS[2])}, "measurement columns changed"),
        ({"wanted_value_type": "DOUBLE"}, "measurement column type changed: DECIMAL(16,6) -> DOUBLE"),
        (
            {"present_value_types": ["DECIMAL(16,6)", "DECIMAL(30,10)"], "wanted_value_type": "DECIMAL(30,10)"},
            "measurement column type changed: DECIMAL(16,6) -> DECIMAL(30,10)",
        ),
        ({"upstream_rebuilt_whole": True}, "an upstream table was rebuilt whole"),
        ({"pending_count": 26}, "too many changed samples"),
    ],
)
def test_each_reason_alone_forces_a_full_build(changes, reason):
    plan = _plan(**changes)
    assert not plan.incremental and plan.reason == reason and plan.metadata_value == f"full ({reason})"


def test_no_measurement_columns_have_no_type_to_change():
    # A table without measurement columns holds no value of the old type.
    assert _plan(present_columns=COLUMNS[:3], wanted_columns=COLUMNS[:3], present_value_types=[]).incremental


def test_the_first_reason_in_order_is_given():
    everything = dict(present_columns=(), upstream_rebuilt_whole=True, pending_count=1000)
    assert _plan(full_refresh_requested=True, **everything).reason == "full refresh requested"
    assert _plan(**everything).reason == "table missing"


@pytest.mark.parametrize("sample_count", [1, 4, 100, 1_000_003])
def test_a_quarter_of_the_samples_is_still_incremental_one_more_is_not(sample_count):
    # The documented rule: more than 25% of the samples changed -> full refresh.
    limit = sample_count // 4
    assert _plan(pending_count=limit, sample_count=sample_count).incremental
    assert not _plan(pending_count=limit + 1, sample_count=sample_count).incremental


def test_an_empty_samples_table_counts_as_one_sample():
    assert _plan(pending_count=0, sample_count=0).incremental
    assert not _plan(pending_count=1, sample_count=0).incremental
