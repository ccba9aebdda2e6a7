"""Progress logging for long statements: one SQL statement (INSERT ... SELECT over a million rows)
can run for minutes without anything to report, so the UI's run log would go quiet. ``logged_step``
logs when a step starts, a heartbeat every ``interval`` seconds while it runs, and when it ends."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

DEFAULT_HEARTBEAT_SECONDS = 15.0


class InfoLogger(Protocol):
    """What :func:`logged_step` logs to: anything whose ``info`` may be called from the heartbeat's
    thread, such as Dagster's log manager."""

    def info(self, msg: str) -> None:
        """Log ``msg`` at INFO."""


@contextmanager
def logged_step(log: InfoLogger, what: str, interval: float = DEFAULT_HEARTBEAT_SECONDS) -> Iterator[None]:
    """Log ``what: started``, ``what: still running after N s`` every ``interval`` seconds, and
    ``what: done in N s`` (or ``failed after N s``). Dagster's log manager is thread-safe, so the
    heartbeat runs in a daemon thread while the statement blocks the step's thread."""
    started = time.monotonic()
    log.info(f"{what}: started")
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(interval):
            log.info(f"{what}: still running after {time.monotonic() - started:.0f} s")

    thread = threading.Thread(target=heartbeat, name=f"progress: {what}", daemon=True)
    thread.start()
    try:
        yield
    except BaseException:
        stop.set()
        thread.join()
        log.info(f"{what}: failed after {time.monotonic() - started:.2f} s")
        raise
    stop.set()
    thread.join()
    log.info(f"{what}: done in {time.monotonic() - started:.2f} s")
