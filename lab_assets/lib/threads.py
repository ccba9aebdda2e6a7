"""Running independent blocking calls (SQL statements on their own connections) side by side."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

T = TypeVar("T")


def completed_in_threads(
    tasks: Mapping[str, Callable[[], T]],
) -> Iterator[tuple[str, T | None, BaseException | None]]:
    """Starts every task in its own thread and yields ``(name, result, None)`` or ``(name, None,
    error)`` as each one finishes, in the order they finish. The threads are daemons: a process
    that is stopped (a terminated run) exits without waiting for their statements."""
    finished: queue.Queue[tuple[str, T | None, BaseException | None]] = queue.Queue()

    def run(name: str, task: Callable[[], T]) -> None:
        try:
            finished.put((name, task(), None))
        except BaseException as error:  # handed to the caller, who decides
            finished.put((name, None, error))

    for name, task in tasks.items():
        threading.Thread(target=run, args=(name, task), name=f"lab_assets: {name}", daemon=True).start()
    for _ in tasks:
        yield finished.get()
