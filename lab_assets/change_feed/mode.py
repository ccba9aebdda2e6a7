"""``LAB_CHANGE_FEED``: how lab_assets learns which sample ids changed.

* ``auto`` (the default): the binlog when the account may read it, else scanning the source
  tables; which one, and why, is logged.
* ``binlog``: the binlog, required: stop with the missing grant or setting named.
* ``scan``: scan the source tables, never read the binlog.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

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
