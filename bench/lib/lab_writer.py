"""The lab system's writes during a build: a thread of timed no-op row UPDATEs on its own
connection, another lab session's transaction left open on a few samples, and the latency
summary of the statements."""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass

import pymysql

from bench.lib.server import connect

# The lab's writes: no-op updates of one sample's rows that still take each row's X lock.
LAB_UPDATES = (
    (
        "sample_measurements",
        "UPDATE sample_measurements SET value = value + 0 WHERE sample_id = %s AND measurement_type = 'vol'",
    ),
    ("samples", "UPDATE samples SET ts = ts WHERE id = %s"),
)
LAB_LOCK_WAIT_TIMEOUT_SECONDS = 50
LOST_CONNECTION = {2006, 2013, 2014}


@dataclass
class Statement:
    table: str
    at: float  # perf_counter() when it started
    seconds: float
    error: str | None = None


class OpenTransaction:
    """Another lab session's open transaction: X locks on a few samples' rows in both source
    tables, held until :meth:`close` rolls it back."""

    def __init__(self, database: str, first_id: int, last_id: int) -> None:
        self.samples = sorted({first_id, (first_id + last_id) // 2, last_id})
        self.connection = connect(database)
        ids = ", ".join(map(str, self.samples))
        with self.connection.cursor() as cursor:
            cursor.execute("SET SESSION wait_timeout = 86400")
            cursor.execute("START TRANSACTION")
            cursor.execute(f"UPDATE samples SET ts = ts WHERE id IN ({ids})")
            cursor.execute(f"UPDATE sample_measurements SET value = value + 0 WHERE sample_id IN ({ids})")

    def close(self) -> None:
        self.connection.rollback()
        self.connection.close()


class LabWriter(threading.Thread):
    """The lab system: a pair of no-op row UPDATEs every ``interval`` seconds, each timed; the
    samples in ``avoid`` (held by an open transaction) are left alone."""

    def __init__(self, database: str, interval: float, seed: int, avoid: frozenset[int] = frozenset()) -> None:
        super().__init__(name="lab-writer", daemon=True)
        self.database = database
        self.interval = interval
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.avoid = avoid
        self.statements: list[Statement] = []
        self.connection = self._connect()
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT MIN(id), MAX(id) FROM samples")
            row = cursor.fetchone()
            assert row is not None and row[0] is not None, f"{database}.samples is empty"
            self.first_id, self.last_id = int(row[0]), int(row[1])
            try:
                cursor.execute("SELECT @@session.transaction_isolation")
            except pymysql.MySQLError:  # MariaDB before 11.1 has only tx_isolation
                cursor.execute("SELECT @@session.tx_isolation")
            isolation = cursor.fetchone()
            self.isolation = str(isolation[0]) if isolation else "?"

    def _connect(self) -> pymysql.connections.Connection:
        connection = connect(self.database)  # autocommit
        with connection.cursor() as cursor:
            cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {LAB_LOCK_WAIT_TIMEOUT_SECONDS}")
        return connection

    def run(self) -> None:
        next_at = time.perf_counter()
        try:
            while not self.stop.is_set():
                sample_id = self.random.randint(self.first_id, self.last_id)
                if sample_id in self.avoid:
                    continue
                for table, sql in LAB_UPDATES:
                    self._timed(table, sql, sample_id)
                next_at += self.interval
                now = time.perf_counter()
                if next_at < now:  # a held-up pair: carry on from now, no burst of catch-up writes
                    next_at = now
                self.stop.wait(next_at - now)
        finally:
            self.connection.close()

    def _timed(self, table: str, sql: str, sample_id: int) -> None:
        started = time.perf_counter()
        error = None
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(sql, (sample_id,))
        except pymysql.MySQLError as exc:
            code = exc.args[0] if exc.args else None
            error = f"{code} {exc.args[1] if len(exc.args) > 1 else exc}"
            if code in LOST_CONNECTION or not self.connection.open:
                if self.connection.open:
                    self.connection.close()
                self.connection = self._connect()
        self.statements.append(Statement(table, started, time.perf_counter() - started, error))


def percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for none)."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency_summary(statements: list[Statement]) -> dict[str, float | int]:
    ordered = sorted(s.seconds * 1000 for s in statements)
    return {
        "updates": len(ordered),
        "max_ms": round(ordered[-1], 1) if ordered else 0.0,
        "p99_ms": round(percentile(ordered, 0.99), 1),
        "p50_ms": round(percentile(ordered, 0.50), 1),
        "over_100ms": sum(1 for ms in ordered if ms > 100),
        "over_1s": sum(1 for ms in ordered if ms > 1000),
        "errors": sum(1 for s in statements if s.error),
    }
