"""Pure decision logic of the source-change sensor, kept apart from Dagster and the database.

The sensor ticks every 5 s (lab_assets/defs/sensors.py). A quiet tick must be cheap whatever
the lab's size, but the source tables have no timestamps and ``sample_measurements`` has no key,
and a content hash of both reads them whole.
So a tick first reads each table's ``UPDATE_TIME`` from information_schema (no scan) and hashes
the contents only when that time moved, when the last reading could still move within the same
second (the column has 1-second resolution), or when the periodic full check is due (a server
restart or a table evicted from the dictionary cache resets UPDATE_TIME to NULL).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

FULL_CHECK_INTERVAL_SECONDS = 600


@dataclass
class SensorCursor:
    """What the sensor keeps between ticks: the last update times and content fingerprint it read,
    when it last checked the contents and how far it has read the binlog."""

    update_times: dict[str, str | None] = field(default_factory=dict)
    fingerprint: str | None = None
    unsettled: bool = True  # the last reading was in the same second as a change
    last_full_check: float = 0.0
    changes_seen: int = 0
    binlog_read_up_to: list | None = None  # how far the ticks have read the binlog (change feed)

    @classmethod
    def parse(cls, raw: str | None) -> SensorCursor:
        """The cursor a tick stored, or a fresh one on the first tick."""
        return cls(**json.loads(raw)) if raw else cls()

    def serialize(self) -> str:
        """The cursor as the tick stores it: JSON, keys sorted."""
        return json.dumps(asdict(self), sort_keys=True)


def needs_fingerprint(cursor: SensorCursor, update_times: dict[str, str | None], now: float) -> str | None:
    """Why this tick must hash the tables, or None for a quiet tick."""
    if cursor.fingerprint is None:
        return "no earlier reading"
    if update_times != cursor.update_times:
        return "a source table was written"
    if cursor.unsettled:
        return "the last change was within the same second as the last reading"
    if now - cursor.last_full_check >= FULL_CHECK_INTERVAL_SECONDS:
        return "periodic full check"
    return None


def refresh_skip_reason(
    cursor: SensorCursor, live: str, recorded: str | None, written_since_last_reading: bool, retry_due: bool
) -> str | None:
    """Why no refresh is needed, or None to start one.

    ``live`` sums the sources; ``recorded`` the same sums over what the tables were last built
    from, with the pending marks (None before the first build or with the flat table missing).
    Equal: the tables are current. Otherwise a refresh starts, except when the sources hold the
    very content the last refresh was started for (``cursor.fingerprint``), nothing was written
    since the last reading and no retry is due: that refresh failed or was stopped, and it is
    started again at most once per periodic check (``retry_due``, every
    :data:`FULL_CHECK_INTERVAL_SECONDS`), so a fixed cause (a grant, a killed run) is picked up
    without a loop of failing runs. When something was written meanwhile (a change the last
    refresh may have seen half-way, then put back), the same content starts a new refresh."""
    if recorded == live:
        cursor.fingerprint = live
        return "the tables match the sources"
    if live == cursor.fingerprint and not written_since_last_reading and not retry_due:
        return (
            "the tables are behind the sources, and the refresh started for this content did not bring"
            f" them up to date (see its run); it is started again at the next periodic check (every"
            f" {FULL_CHECK_INTERVAL_SECONDS} s) or change to the sources"
        )
    return None


def is_unsettled(update_times: dict[str, str | None], server_now: str) -> bool:
    """True if a table was written in the current second: another write could follow unseen."""
    return any(t is not None and t >= server_now for t in update_times.values())


def run_key(changes_seen: int, fingerprint: str) -> str:
    """Deterministic per distinct content change: the same change seen twice gives the same key,
    and content that returns to an earlier state still gets a new key (the counter)."""
    return f"lab-sources-{changes_seen}-{hashlib.sha1(fingerprint.encode()).hexdigest()[:16]}"
