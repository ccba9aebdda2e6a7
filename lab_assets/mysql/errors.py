"""Errors explained in one sentence: a connection that could not be opened (what failed, for
the URL in LAB_DB_URL with its password hidden, and what to check), and server errors whose cause
is usually a setting or a grant (named). The original error is chained by the caller."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pymysql
from sqlalchemy.engine import Connection

from lab_assets.mysql.sessions import (
    LAB_DB_URL_ENV,
    SESSION_WAIT_TIMEOUT_SECONDS,
    LabUrlError,
    is_mariadb,
    parse_url,
    shown,
)

# Server errors whose cause is usually a server setting or a grant, with what to look at.
_LIKELY_CAUSES = {
    2006: "the server closed the connection: wait_timeout (idle connections; lab_assets raises its own"
    f" sessions' to at least {SESSION_WAIT_TIMEOUT_SECONDS} s), max_allowed_packet, a server restart, or a proxy's"
    " idle timeout",
    2013: "the connection was lost during a statement: max_execution_time (MySQL 8), net_write_timeout /"
    " net_read_timeout, a KILL by a DBA or a monitoring tool, or a proxy's timeout",
    1205: "a lock wait timed out (innodb_lock_wait_timeout). Every lab_assets session reads the sources at READ"
    " COMMITTED, which takes no row locks on them, so the wait was on one of lab_assets' own tables (another"
    " writer of the output database); a wait on samples or sample_measurements means a session without READ"
    " COMMITTED",
    1226: "the account's connection limit was reached (max_user_connections, or the account's"
    " MAX_USER_CONNECTIONS): lab_assets needs two connections (its build lock's and one to work on) and"
    " opens more side by side only where the limit leaves room when it starts them, so the limit is below"
    " two or another program on the same account opened connections meanwhile; give lab_assets an account of"
    " its own, or raise the limit (README.md, 'Connections')",
    1264: "a value is beyond its column's range: lab_assets keeps sample and experiment ids as INT (up to"
    " 2147483647), so a lab id beyond it cannot be published; measurement values take their source column's"
    " type, so a value out of range means that type changed while this run built (the next run rebuilds)",
    1290: "the server runs with an option that refuses this statement, named in the server message: read_only"
    " or super_read_only (lab_assets writes its own tables, so its output database must be on a writable"
    " server), or MariaDB's max_session_mem_used (lab_assets' sessions keep temporary tables in memory up to"
    " MySQLResource.temp_table_memory_mb: lower it, or raise the limit)",
    1040: "the server's connection limit (max_connections) was reached by all its clients together",
    1665: "the server logs statements (binlog_format=STATEMENT), which InnoDB refuses for INSERT ... SELECT at"
    " READ COMMITTED: ask the DBA for binlog_format=ROW or MIXED (MySQL 8 and MariaDB defaults)",
    1969: "a statement ran past the account's or the server's max_statement_time (MariaDB); lab_assets"
    " lifts it for its own sessions, so it was set where a session cannot change it (a DBA's limit"
    " on the account: MAX_STATEMENT_TIME in GRANT)",
    3024: "a statement ran past max_execution_time (MySQL 8); lab_assets lifts it for its own sessions",
    1142: "a privilege is missing (README.md, 'Pointing lab_assets at a production lab system')",
    1044: "a privilege is missing (README.md, 'Pointing lab_assets at a production lab system')",
}


def server_error_code(error: BaseException) -> int | None:
    """The MySQL error number of a PyMySQL or SQLAlchemy error, else None."""
    original = getattr(error, "orig", error)
    args = getattr(original, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


class LabDatabaseError(RuntimeError):
    """A server error with its likely cause named (the original is chained as ``__cause__``)."""


def explained(error: BaseException, connection: Connection | None = None) -> BaseException:
    """``error``, or a :class:`LabDatabaseError` that names its likely server setting first. With
    ``connection`` (the session the error came from), a lock wait also names that session's
    isolation level."""
    code = server_error_code(error)
    cause = _LIKELY_CAUSES.get(code) if code is not None else None
    if cause is None:
        return error
    if code == LOCK_WAIT_TIMEOUT and connection is not None:
        cause += f" (this session reads at {_isolation_level(connection)})"
    if code == _ACCOUNT_LIMIT and "max_user_connections" not in str(error).lower():
        cause = _HOURLY_LIMIT
    explanation = LabDatabaseError(f"MySQL error {code}: {cause}. Server message: {getattr(error, 'orig', error)}")
    explanation.__cause__ = error
    return explanation


LOCK_WAIT_TIMEOUT = 1205
_ACCOUNT_LIMIT = 1226  # max_user_connections, or one of the account's hourly limits (named in the message)
_HOURLY_LIMIT = (
    "the account reached an hourly limit a DBA set on it (MAX_QUERIES_PER_HOUR, MAX_UPDATES_PER_HOUR or"
    " MAX_CONNECTIONS_PER_HOUR: the server message names it): a lab_assets run uses many statements and"
    " connections; raise or remove that limit for lab_assets' account"
)


def _isolation_level(connection: Connection) -> str:
    variable = "tx_isolation" if is_mariadb(connection) else "transaction_isolation"  # MySQL 8 has no tx_
    try:
        return str(connection.exec_driver_sql(f"SELECT @@session.{variable}").scalar())
    except Exception:  # noqa: BLE001 - the session may be gone; the explanation stands without it
        return "an isolation level that could not be read"


_DUPLICATE_KEY = 1062


def raise_on_lost_values(connection: Connection) -> None:
    """After an ``INSERT IGNORE`` (which skips duplicate keys, as meant, but would also store an
    out-of-range or mistyped value clamped or truncated, as a warning): raises the first such
    warning as the error it would have been, explained, so no value is silently changed."""
    for _level, code, message in connection.exec_driver_sql("SHOW WARNINGS").fetchall():
        if int(code) != _DUPLICATE_KEY:
            error = pymysql.err.DataError(int(code), str(message))
            raise explained(error) from error


@contextmanager
def explaining(connection: Connection | None = None) -> Iterator[None]:
    """Raises a server error of the block as :func:`explained` gives it (the original chained)."""
    try:
        yield
    except Exception as error:
        clearer = explained(error, connection)
        if clearer is error:
            raise
        raise clearer from error


UNKNOWN_DATABASE = 1049
_CANNOT_CONNECT = 2003  # PyMySQL: any socket error while connecting, the reason in parentheses
_UNKNOWN_HOST = (
    "Name or service not known",
    "nodename nor servname",
    "Temporary failure in name resolution",
    "No address associated",
    "getaddrinfo failed",
    "Errno -2]",
    "Errno -3]",
    "Errno -5]",
)
_ENCODED = "the password URL-encoded if it holds @ : / % # ? or spaces"


def connection_problem(error: BaseException, url: str) -> str:
    """One sentence for an error raised while opening a connection to ``url`` (LAB_DB_URL): the
    variable and the URL with its password hidden, what failed (refused, unknown host, timed out,
    access denied, unknown database, a driver lab_assets cannot use) and what to check. Errors of
    statements on an open connection are :func:`explained` instead."""
    if isinstance(error, LabUrlError):
        return str(error)  # names the variable and hides the password already
    try:
        parsed = parse_url(url)
    except LabUrlError as url_error:
        return str(url_error)
    server = f"{parsed.host or 'localhost'}:{parsed.port or 3306}"
    start = f"{LAB_DB_URL_ENV} ({shown(parsed)}): "
    code = server_error_code(error)
    message = _server_message(error)
    reason = message[message.find("(") + 1 : -1] if code == _CANNOT_CONNECT and message.endswith(")") else message
    if code == _CANNOT_CONNECT and "Connection refused" in reason:
        return (
            start + f"nothing accepts connections on {server} (connection refused): check that the server runs"
            " and listens on that host and port."
        )
    if code == _CANNOT_CONNECT and any(text in reason for text in _UNKNOWN_HOST):
        return start + f"the host name {parsed.host} is unknown (it does not resolve): check the host in the URL."
    if code == _CANNOT_CONNECT and "timed out" in reason:
        return (
            start + f"{server} did not answer within 10 s (timed out): check the host and port, and that no"
            " firewall drops the connection."
        )
    if code == _CANNOT_CONNECT:
        return start + f"could not connect to {server} ({reason}): check the host, port and TLS options of the URL."
    if code == 1045:
        return (
            start + f"{server} refused the account ({message}): check the user name and password ({_ENCODED}),"
            " and that the account may connect from this host."
        )
    if code == UNKNOWN_DATABASE:
        return (
            start + f"{server} has no database {parsed.database} (unknown database): check the name in the"
            " URL, or create it with the lab's samples and sample_measurements tables (or, to try lab_assets"
            " out, let make run DEMO=1 create it as a demo database with 20 samples)."
        )
    if code == 1044:
        return (
            start + f"the account may not use database {parsed.database} on {server} ({message}): check the"
            " name in the URL, or grant the account SELECT on it (README.md, 'Pointing lab_assets at a"
            " production lab system')."
        )
    clearer = explained(error)  # a limit or setting met while opening (max_connections, an hourly limit)
    if clearer is not error:
        return start + str(clearer)
    if isinstance(error, ImportError) or type(error).__name__ == "NoSuchModuleError":
        return start + f"its driver cannot be loaded ({message}): reinstall lab_assets (pip install -e .)."
    return start + f"could not connect to {server} ({type(error).__name__}: {message}): check the URL."


def _server_message(error: BaseException) -> str:
    """The driver's text of ``error`` without its error number (PyMySQL's ``args[1]``)."""
    original = getattr(error, "orig", error)
    args = getattr(original, "args", ())
    return str(args[1]) if len(args) > 1 and isinstance(args[0], int) else str(original)
