"""A lab on a private mariadbd with a ROW binlog, for the change feed's tests: the server, a
built lab database on it, and what a run's materializations recorded of the feed."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import sqlalchemy as sa

from lab_assets.mysql.sessions import dispose_engines
from lab_assets.names import CHANGE_FEED_POSITION
from lab_assets_tests import lab_data
from lab_assets_tests.databases import LabDatabase, source_schema_statements
from lab_assets_tests.extra_server import ExtraServer, extra_server


@contextlib.contextmanager
def binlog_server(directory: Path) -> Iterator[ExtraServer]:
    """A private mariadbd writing a ROW binlog, its files in ``directory``; with ``userstat``,
    information_schema.TABLE_STATISTICS counts the rows read per table."""
    options = {"log-bin": str(directory / "binlog"), "binlog-format": "ROW", "server-id": "1", "userstat": "1"}
    with extra_server(directory, options) as started:
        yield started
    dispose_engines()


@dataclass
class PrivateLab(LabDatabase):
    """A lab database on the private binlog server (LabDatabase's helpers, another server)."""

    server: ExtraServer | None = None
    user: str = "root"  # the account lab_assets connects as (its URL's); the tests' own connections are root's

    @property
    def url(self) -> str:
        assert self.server is not None
        url = sa.make_url(self.server.url).set(username=self.user, database=self.name)
        return url.render_as_string(hide_password=False)

    def connect(self) -> pymysql.connections.Connection:
        assert self.server is not None
        return self.server.connect(self.name)


@contextlib.contextmanager
def without_binlog_grants(lab: PrivateLab, account: str) -> Iterator[PrivateLab]:
    """``lab`` as lab_assets sees it through ``account``: all privileges on the lab's database,
    none of the binlog's (REPLICATION SLAVE, BINLOG MONITOR); the account is dropped afterwards."""
    assert lab.server is not None
    with lab.server.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE USER IF NOT EXISTS '{account}'@'%'")
        cursor.execute(f"GRANT ALL ON {lab.name}.* TO '{account}'@'%'")
    try:
        yield PrivateLab(lab.name, server=lab.server, user=account)
    finally:
        with lab.server.connect() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP USER '{account}'@'%'")


_labs = iter(range(1000))


def built_lab(server: ExtraServer, samples: int) -> Iterator[PrivateLab]:
    """A lab database of ``samples`` generated samples on ``server``, built once (which stores the
    first binlog position); dropped after the test."""
    db = PrivateLab(f"feedlab_{next(_labs)}", server=server)
    with server.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {db.name}")
    db.execute(*source_schema_statements())
    generated_samples, measurements = lab_data.generate(samples)
    with db.connect() as connection:
        lab_data.insert(connection, generated_samples, measurements)
    first = feed_of(db.materialize_all())
    assert first["change_feed"] == "scan" and "no binlog position recorded yet" in first["change_feed_reason"]
    assert db.query(f"SELECT COUNT(*) FROM {CHANGE_FEED_POSITION}") == [(1,)]
    yield db
    dispose_engines()
    with server.connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE {db.name}")


def feed_of(result) -> dict[str, str]:
    """The change-feed metadata of the run's sample_lineage materialization."""
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "sample_lineage"
    ]
    metadata = event.materialization.metadata
    return {k: str(metadata[k].value) for k in ("change_feed", "change_feed_reason") if k in metadata}


def rows_read(db: PrivateLab) -> int:
    """Rows the server's handlers read so far (MariaDB has no Innodb_rows_read): index lookups,
    index and table scans, on every table of the private server."""
    rows = db.query(
        "SHOW GLOBAL STATUS WHERE Variable_name IN"
        " ('Handler_read_first', 'Handler_read_key', 'Handler_read_last', 'Handler_read_next',"
        " 'Handler_read_prev', 'Handler_read_rnd', 'Handler_read_rnd_next')"
    )
    assert len(rows) == 7
    return sum(int(value) for _, value in rows)
