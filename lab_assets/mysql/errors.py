"""Server errors whose cause is usually a setting or a grant, explained in one sentence that
names it (the original error chained)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pymysql
from sqlalchemy.engine import Connection

from lab_assets.mysql.sessions import SESSION_WAIT_TIMEOUT_SECONDS, is_mariadb

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
