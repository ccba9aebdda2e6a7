"""Running independent blocking calls (SQL statements on their own connections) side by side."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, as_completed
from typing import TypeVar

T = TypeVar("T")


def started_in_threads(
    tasks: Mapping[str, Callable[[], T]], slots: threading.Semaphore | None = None
) -> dict[str, Future[T]]:
    """Starts every task in its own thread; a future per task name holds its result or error.
    With ``slots``, a task runs only while it holds one of them: at most that many run at once
    (each on its own connection, within the account's connection limit), and a caller that takes
    a slot itself takes turns with them. The threads are daemons: a process that is stopped (a
    terminated run) exits without waiting for their statements."""
    futures: dict[str, Future[T]] = {}
    for name, task in tasks.items():
        future: Future[T] = Future()

        def run(task: Callable[[], T] = task, future: Future[T] = future) -> None:
            try:
                if slots is None:
                    future.set_result(task())
                else:
                    with slots:
                        future.set_result(task())
            except BaseException as error:  # noqa: BLE001 - handed to the caller, who decides
                future.set_exception(error)

        threading.Thread(target=run, name=f"lab_assets: {name}", daemon=True).start()
        futures[name] = future
    return futures


def completed_in_threads(
    tasks: Mapping[str, Callable[[], T]], at_most: int | None = None
) -> Iterator[tuple[str, T | None, BaseException | None]]:
    """Starts every task in its own thread (:func:`started_in_threads`), at most ``at_most`` running
    at once, and yields ``(name, result, None)`` or ``(name, None, error)`` as each one finishes,
    in the order they finish."""
    futures = started_in_threads(tasks, None if at_most is None else threading.Semaphore(max(1, at_most)))
    names = {future: name for name, future in futures.items()}
    for future in as_completed(futures.values()):
        error = future.exception()
        yield names[future], None if error else future.result(), error
