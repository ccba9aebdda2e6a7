"""The binlog reader's one stream connection: its settings from the engine's URL, the replica
server id it announces, and the guard that refuses the library's reconnects (which resume
mid-transaction, with duplicated or lost rows)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Connection

# Replica server ids the reader announces: 2**31 plus the control connection's CONNECTION_ID(). A
# server ends the older of two binlog dumps announcing one server id (MySQL and MariaDB both), so
# the id must differ from every real replica's (operators number those from 1, far below 2**31)
# and from every other lab_assets reader's at the same moment (the sensor's and a refresh's): a
# connection id is unique on the server while its connection is open, and it stays open for the
# whole read.
REPLICA_SERVER_ID_BASE = 2**31


def _not_the_metadata_advice(record: logging.LogRecord) -> bool:
    """The library warns on every read that ``binlog_row_metadata`` is not FULL; the reader finds
    columns by position and needs no names, so that advice would only mislead a DBA."""
    return "BINLOG_ROW_METADATA" not in record.getMessage()


logging.getLogger("pymysqlreplication").addFilter(_not_the_metadata_advice)


class Reconnected(Exception):
    """The library tried to open a second stream connection."""


def connection_settings(connection: Connection) -> dict:
    """PyMySQL's settings for the engine's own URL (host, port, account, TLS), without a database."""
    _args, settings = connection.engine.dialect.create_connect_args(connection.engine.url)
    settings = {k: v for k, v in settings.items() if k not in ("database", "db", "client_flag")}
    return {**settings, "connect_timeout": 10, "read_timeout": 300, "write_timeout": 300}


_Connection = TypeVar("_Connection")  # what the wrapped connect returns: PyMySQL's, or a test's stand-in


def one_stream(connect: Callable[..., _Connection]) -> Callable[..., _Connection]:
    """``connect`` that opens the stream connection once: a second attempt (the library's own
    reconnect) raises :class:`Reconnected`; the library's control connection (to
    information_schema) is let through."""
    opened = 0

    def wrapper(**settings) -> _Connection:
        nonlocal opened
        if "db" in settings:  # PyMySQL's deprecated name, which the library uses
            settings["database"] = settings.pop("db")
        if settings.get("database") != "information_schema":  # the library's control connection names it
            opened += 1
            if opened > 1:
                raise Reconnected()
        return connect(**settings)

    return wrapper
