"""How lab_assets reaches the server: the URL (never shown with its password), one engine
(connection pool) per URL, the session settings the engine gives every connection it opens, the
connections the account's limits leave, and explicit transactions.

The bottom of the connection code: ``server_errors`` and ``mysql`` import from here.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from lab_assets.mysql.tls import PreferredTlsConnection

LAB_DB_URL_ENV = "LAB_DB_URL"
# MySQL's and MariaDB's default wait_timeout (8 hours, documented): the floor every lab_assets
# session sets for itself, so a connection that waits while others load data is not dropped by a
# server configured with a short global wait_timeout.
SESSION_WAIT_TIMEOUT_SECONDS = 28800


_ENCODING_HINT = (
    "If the password holds any of @ : / % # ? or spaces, URL-encode it, e.g."
    " python -c 'import urllib.parse, getpass; print(urllib.parse.quote(getpass.getpass(), safe=\"\"))'"
    " (@ is %40, / is %2F, : is %3A, % is %25)."
)
# The SQLAlchemy drivers lab_assets connects through: PyMySQL only (its init_command carries the
# session settings, and the error codes lab_assets explains are PyMySQL's).
DRIVERS = ("mysql+pymysql", "mariadb+pymysql")


class LabUrlError(ValueError):
    """A URL lab_assets cannot use, said in one sentence naming its variable, with no part of the
    password."""


def parse_url(url: str, variable: str = LAB_DB_URL_ENV) -> sa.URL:
    """The SQLAlchemy URL in ``url``; :class:`LabUrlError` naming ``variable`` and how to encode a
    password if it cannot be read unambiguously, or what to write if its scheme names a driver
    lab_assets does not use (a typo such as ``mysql+pymsql://``, or ``mysql://``, which means
    MySQLdb). No message shows any part of the password: a parse error (which quotes the text it
    failed on) is replaced, and a URL with two ``@`` or an odd host (an unencoded password split at
    its own ``@``, whose pieces would show up as host or database names in connection errors) is
    refused before anything connects."""
    problem = None
    try:
        parsed = sa.make_url(url)
    except Exception:  # noqa: BLE001 - its message quotes a piece of the URL (maybe of the password)
        parsed, problem = None, "it cannot be parsed (the part after the last ':' of the host is not a port)"
    if parsed is not None and url.split("://", 1)[-1].count("@") > 1:
        problem = "it holds more than one '@'"
    elif parsed is not None and parsed.host and any(c in parsed.host for c in "@/:%"):
        problem = "its host name holds '@', '/', ':' or '%'"
    if parsed is None or problem is not None:
        raise LabUrlError(
            f"{variable} is not a valid URL such as mysql+pymysql://user:password@host:3306/lab: {problem}."
            f" {_ENCODING_HINT}"
        ) from None
    if parsed.drivername not in DRIVERS:
        raise LabUrlError(
            f"{variable} ({shown(parsed)}) starts with {parsed.drivername}://, a driver lab_assets cannot use: check"
            f" the scheme, which must be mysql+pymysql:// (lab_assets reaches MySQL and MariaDB through PyMySQL)."
        )
    return parsed


def shown(url: sa.URL) -> str:
    """``url`` as messages show it: the password as ``***``."""
    return url.render_as_string(hide_password=True)


_ENGINES: dict[tuple[str, int], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(url: str, temp_table_memory_mb: int) -> Engine:
    """One engine (connection pool) per URL and session settings for the process."""
    key = (url, temp_table_memory_mb)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = _new_engine(url, temp_table_memory_mb)
        return engine


def dispose_engines() -> None:
    """Closes every pooled connection this process holds (tests call it after each test, so a
    session touching hundreds of databases stays far below the server's max_connections)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        engine.dispose()


# A process that ends with connections in its pools drops their sockets without a goodbye: the
# server counts each as an aborted client and, at MariaDB's default log_warnings (2), writes
# "Aborted connection ... (Got an error reading communication packets)" to its error log, a line
# per refresh run in the lab's log. Disposing the pools at exit ends each connection with COM_QUIT.
atexit.register(dispose_engines)


# MariaDB's EMPTY_STRING_IS_NULL turns a bound '' (a measurement type spelled as the empty
# string) into NULL, so the pivot would look for a NULL type and publish NULL cells. Every
# connection of lab_assets drops that one mode from its session, keeping the rest of the server's.
WITHOUT_EMPTY_STRING_IS_NULL = (
    "sql_mode = TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@session.sql_mode, ','), ',EMPTY_STRING_IS_NULL,', ','))"
)
# sql_select_limit's largest value, "no limit" (DEFAULT would give the server's global value).
MAX_SELECT_LIMIT = 18446744073709551615


def session_settings(temp_table_memory_mb: int) -> str:
    """The one SET statement the driver runs on every connection the engine opens (PyMySQL's
    ``init_command``), before anything else, so no code path (a worker thread's connection, a
    parallel fill's) can go without it. Session only, never global: the server keeps whatever
    defaults its DBA gave it for other sessions.

    What it sets, with :func:`server_session_settings`:

    * ``completion_type`` 0: RELEASE, a DBA's default, would end the session at the first COMMIT
      or ROLLBACK (SQLAlchemy rolls back a new connection once).
    * ``wait_timeout`` at least the servers' default 8 hours: a connection that waits while
      others load data is not dropped by a short global value.
    * Temporary tables up to ``temp_table_memory_mb`` in memory: spilled to disk, MariaDB's
      lookups into the lineage CTE's intermediate table made the lineage build many times slower.
    * Defaults a DBA may set globally for interactive sessions, which would break statements that
      must see and change every row: ``sql_safe_updates`` (refuses a DELETE by a joined key),
      ``sql_select_limit`` (cuts a catalog read short), ``max_join_size`` (through
      ``sql_big_selects``).
    * ``sql_mode`` without MariaDB's EMPTY_STRING_IS_NULL (:data:`WITHOUT_EMPTY_STRING_IS_NULL`).
    ``autocommit``: the engine's AUTOCOMMIT isolation turns it on for every connection."""
    memory = int(temp_table_memory_mb) * 1024 * 1024
    return (
        f"SET SESSION completion_type = 0, {WITHOUT_EMPTY_STRING_IS_NULL},"
        f" tmp_table_size = {memory}, max_heap_table_size = {memory},"
        f" wait_timeout = GREATEST(@@session.wait_timeout, {SESSION_WAIT_TIMEOUT_SECONDS}),"
        f" sql_safe_updates = 0, sql_select_limit = {MAX_SELECT_LIMIT}, sql_big_selects = 1"
    )


def server_session_settings(is_mariadb: bool) -> tuple[str, ...]:
    """The session settings whose names differ between MariaDB and MySQL 8, run right after the
    engine opens a connection (its ``connect`` event), when the server is known.

    * READ COMMITTED, READ WRITE: a statement that reads the sources (``INSERT ... SELECT``
      included) takes a consistent snapshot and no row locks, so it neither waits on a lab
      transaction nor holds one up (under REPEATABLE READ or SERIALIZABLE, InnoDB share-locks the
      rows an ``INSERT ... SELECT`` reads); a server default of read-only transactions would
      refuse lab_assets' writes.
    * No statement time limit (MariaDB ``max_statement_time``, MySQL 8 ``max_execution_time``):
      a DBA's guard for interactive queries would cut a build's long statement short."""
    limit = "max_statement_time" if is_mariadb else "max_execution_time"
    return ("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED, READ WRITE", f"SET SESSION {limit} = 0")


def _new_engine(url: str, temp_table_memory_mb: int) -> Engine:
    engine = _create_engine(url, session_settings(temp_table_memory_mb))

    def apply_server_session_settings(dbapi_connection: Any, _record: Any) -> None:
        mariadb = "mariadb" in str(getattr(dbapi_connection, "server_version", "")).lower()
        with dbapi_connection.cursor() as cursor:
            for statement in server_session_settings(mariadb):
                cursor.execute(statement)

    def preferred_tls_context_shared(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return PreferredTlsConnection(*cargs, **cparams)

    event.listen(engine, "do_connect", preferred_tls_context_shared)
    event.listen(engine, "connect", apply_server_session_settings)
    return engine


# The most connections one process opens to the server at once, per URL: the engine's pool size.
# A step that would open more waits for one of its own to be returned.
MAX_CONNECTIONS = 9


def _create_engine(url: str, init_command: str) -> Engine:
    # AUTOCOMMIT: MySQL commits implicitly around DDL anyway, so transactions are opened
    # explicitly (see `transaction`) exactly where a change must be all-or-nothing.
    return sa.create_engine(
        parse_url(url),
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=True,
        # One idle connection kept per database; the few more a step opens side by side
        # (lab_source_derivations) are closed when returned, so a process that reaches many
        # databases (a code server, the test session) holds few connections.
        pool_size=1,
        max_overflow=MAX_CONNECTIONS - 1,
        connect_args={"connect_timeout": 10, "init_command": init_command},
    )


@contextmanager
def transaction(connection: Connection) -> Iterator[Connection]:
    """An explicit transaction on an AUTOCOMMIT connection: COMMIT on success, else ROLLBACK."""
    connection.exec_driver_sql("START TRANSACTION")
    try:
        yield connection
    except BaseException:
        connection.exec_driver_sql("ROLLBACK")
        raise
    connection.exec_driver_sql("COMMIT")


def is_mariadb(connection: Connection) -> bool:
    """MariaDB or MySQL: a few session variables are named differently (lab_assets.sql.statements)."""
    return bool(getattr(connection.dialect, "is_mariadb", False))


def spare_connections(connection: Connection) -> int:
    """How many more connections lab_assets may open now, beside those it holds: the smaller of
    what the account's limit (``@@session.max_user_connections``: the account's
    MAX_USER_CONNECTIONS, else the server's max_user_connections, 0 meaning none) and the
    server's ``max_connections`` leave, plus the idle connections of this engine's pool (reused,
    not opened). The account's open connections are counted in information_schema.processlist,
    which shows an account without the PROCESS privilege its own sessions only."""
    account_limit, server_limit = connection.exec_driver_sql(
        "SELECT @@session.max_user_connections, @@global.max_connections"
    ).one()
    (open_by_account,) = connection.exec_driver_sql(
        "SELECT COUNT(*) FROM information_schema.processlist WHERE user = SUBSTRING_INDEX(CURRENT_USER(), '@', 1)"
    ).one()
    (_, open_on_server) = connection.exec_driver_sql("SHOW GLOBAL STATUS LIKE 'Threads_connected'").one()
    spare = int(server_limit) - int(open_on_server)
    if int(account_limit) > 0:
        spare = min(spare, int(account_limit) - int(open_by_account))
    idle = getattr(connection.engine.pool, "checkedin", lambda: 0)()  # QueuePool's idle connections
    return max(0, spare) + int(idle)


SERVER_DEFAULT_RECURSION_LIMIT = 1000


def recursion_limit(sample_count: int) -> int:
    """A recursion limit no tree of ``sample_count`` samples can reach (never below the default)."""
    return max(SERVER_DEFAULT_RECURSION_LIMIT, sample_count + 1)


def recursion_limit_statement(is_mariadb: bool, limit: int) -> str:
    """The session setting that bounds recursive CTEs; the variable's name differs per server."""
    variable = "max_recursive_iterations" if is_mariadb else "cte_max_recursion_depth"
    return f"SET SESSION {variable} = {int(limit)}"
