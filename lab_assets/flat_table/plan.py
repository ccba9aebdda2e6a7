"""The flat table's full-or-incremental decision, as a pure function (tested without a database).

An incremental refresh rebuilds the pending samples' rows; a full refresh rebuilds every row and
swaps the table in. Full wins whenever the table's shape or the record of what changed cannot be
trusted, and when so many samples changed that rebuilding them one by one costs more than a build.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Above this share of changed samples a full refresh replaces the incremental one: an incremental
# refresh rewrites each changed row in place, a full one rebuilds the table in key order. Chosen,
# not measured; the same rule decides for the state tables (lineage, digests).
FULL_REFRESH_FRACTION = 0.25


def too_many_changed(changed: int, sample_count: int) -> bool:
    """True when ``changed`` samples are more than :data:`FULL_REFRESH_FRACTION` of
    ``sample_count`` (an empty table counts as one sample)."""
    return changed > FULL_REFRESH_FRACTION * max(sample_count, 1)


@dataclass(frozen=True)
class FlatTablePlan:
    """``incremental`` True: rebuild only the pending samples' rows; False: the whole table.
    ``reason`` says why, for the run log and the materialization's ``refresh`` metadata."""

    incremental: bool
    reason: str

    @property
    def metadata_value(self) -> str:
        """What the materialization's ``refresh`` metadata shows: ``incremental`` or ``full (why)``."""
        return "incremental" if self.incremental else f"full ({self.reason})"


def plan_flat_table(
    *,
    full_refresh_requested: bool,
    present_columns: Sequence[str],
    wanted_columns: Sequence[str],
    present_value_types: Sequence[str],
    wanted_value_type: str,
    upstream_rebuilt_whole: bool,
    pending_count: int,
    sample_count: int,
) -> FlatTablePlan:
    """The first reason that forces a full refresh, in this order, else incremental.

    ``present_columns``: the table's columns now (empty if it does not exist); ``wanted_columns``:
    the columns the catalog asks for, in order; ``present_value_types``: the types of the table's
    measurement columns now (lab_assets.sources.value_types ``ddl``, or the catalog's text where it
    does not parse); ``wanted_value_type``: sample_measurements.value's. A column of another type
    would round, overflow or refuse the lab's values, and rows of two types must never mix: the
    table is rebuilt whole with the new type and swapped in. ``upstream_rebuilt_whole``: the pending table holds
    the full-refresh marker; ``pending_count``: rows in the pending table; ``sample_count``: the
    samples' id span."""
    if full_refresh_requested:
        return FlatTablePlan(False, "full refresh requested")
    if not present_columns:
        return FlatTablePlan(False, "table missing")
    if list(present_columns) != list(wanted_columns):
        return FlatTablePlan(False, "measurement columns changed")
    changed_types = sorted(set(present_value_types) - {wanted_value_type})
    if changed_types:
        return FlatTablePlan(
            False, f"measurement column type changed: {', '.join(changed_types)} -> {wanted_value_type}"
        )
    if upstream_rebuilt_whole:
        return FlatTablePlan(False, "an upstream table was rebuilt whole")
    if too_many_changed(pending_count, sample_count):
        return FlatTablePlan(False, "too many changed samples")
    return FlatTablePlan(True, f"{pending_count} changed samples")
