"""``LAB_CHANGE_FEED``: how lab_assets learns which sample ids changed.

* ``auto`` (the default): the binlog when the account may read it, else scanning the source
  tables; which one, and why, is logged.
* ``binlog``: the binlog, required: stop with the missing grant or setting named.
* ``scan``: scan the source tables, never read the binlog.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from lab_assets.names import CHANGE_FEED_SCAN, CHANGE_FEED_TAG, FULL_REFRESH_TAG, FULL_REFRESH_VALUE

LAB_CHANGE_FEED_ENV = "LAB_CHANGE_FEED"


class ChangeFeedMode(enum.Enum):
    """How lab_assets learns which sample ids changed, as ``LAB_CHANGE_FEED`` names it."""

    AUTO = "auto"
    BINLOG = "binlog"
    SCAN = "scan"


DEFAULT_MODE = ChangeFeedMode.AUTO


def parse_change_feed_mode(text: str | None) -> ChangeFeedMode:
    """The mode ``text`` names (case and surrounding spaces ignored; unset or empty: ``auto``);
    ``ValueError`` in one sentence naming the variable and the allowed values otherwise, so a typo
    stops the definitions from loading instead of silently scanning."""
    value = (text or "").strip().lower()
    if not value:
        return DEFAULT_MODE
    for mode in ChangeFeedMode:
        if mode.value == value:
            return mode
    allowed = ", ".join(mode.value for mode in ChangeFeedMode)
    raise ValueError(f"{LAB_CHANGE_FEED_ENV} is {text!r}: set it to one of {allowed} (unset means auto).")


def change_feed_mode(environ: Mapping[str, str]) -> ChangeFeedMode:
    """The mode ``environ`` sets (e.g. ``os.environ``)."""
    return parse_change_feed_mode(environ.get(LAB_CHANGE_FEED_ENV))


def scan_asked(run_tags: Mapping[str, str]) -> str | None:
    """Why a run with these tags reads the sources whole even where the binlog could say what
    changed (a full refresh; the sensor's periodic check found a difference the binlog did not
    name), or None: the refresh's plan and the observations of the sources say the same."""
    if run_tags.get(FULL_REFRESH_TAG) == FULL_REFRESH_VALUE:
        return "a full refresh reads the sources whole"
    if run_tags.get(CHANGE_FEED_TAG) == CHANGE_FEED_SCAN:
        return "the sensor's periodic check found a difference the binlog did not name"
    return None
