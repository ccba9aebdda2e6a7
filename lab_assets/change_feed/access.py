"""Whether the account may read the server's binlog as a change feed and, if not, why: one sentence
naming the missing setting or grant and the statement that fixes it.

What the feed needs, and why:

* ``log_bin`` ON: no binlog, nothing to read (a start-up option, not settable at run time).
* ``binlog_format=ROW``: only row events name the rows a statement changed; STATEMENT or MIXED
  log statements the feed cannot turn into sample ids (MIXED logs some writes as statements).
* ``binlog_row_image``: FULL (both servers' default) or NOBLOB always log the key columns the
  feed reads (the samples' ``id`` and ``parent_id``, the measurements' ``sample_id``: integers,
  never BLOBs). MINIMAL is accepted: it logs the primary key in the before image and the
  assigned columns in the after image, which is enough while the measurements table has no
  primary key (then the before image holds every column) or one that includes ``sample_id``; the
  reader checks each row and falls back, naming ``binlog_row_image=FULL``, when a key column it
  needs is not in the image. A changed ``parent_id`` is then known only as assigned, not compared,
  so such samples are reported as moved (a larger refresh, never a missed one).
* Grants on ``*.*``: REPLICATION SLAVE (the binlog dump) and REPLICATION CLIENT (MySQL 8) /
  BINLOG MONITOR (MariaDB 10.5+, REPLICATION CLIENT being its older name) for ``SHOW BINARY LOG
  STATUS`` / ``SHOW MASTER STATUS`` and ``SHOW BINARY LOGS``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from lab_assets.change_feed.sql import (
    BINARY_LOGS_STATEMENT,
    GRANT_SYNONYMS,
    GRANTS_STATEMENT,
    MONITOR_GRANTS,
    READ_GRANT,
    SERVER_SETTINGS_SELECT,
    grant_fix_statement,
)
from lab_assets.mysql.sessions import is_mariadb

# FULL_NODUP (MariaDB 11): the full before image, the changed columns after.
ROW_IMAGES_WITH_KEYS = ("FULL", "NOBLOB", "MINIMAL", "FULL_NODUP")


@dataclass(frozen=True)
class BinlogAccess:
    """The answer of :func:`check_binlog_access`: ``problem`` is None when the binlog is usable,
    else one sentence naming what is missing and the statement that fixes it."""

    problem: str | None
    binlog_format: str | None = None
    binlog_row_image: str | None = None

    @property
    def usable(self) -> bool:
        """Whether the binlog may be read as a change feed (no problem found)."""
        return self.problem is None


def _granted(grant_lines: list[str], privilege: str) -> bool:
    """Whether one of SHOW GRANTS' global lines (``... ON *.* TO ...``) covers ``privilege``."""
    for line in grant_lines:
        head = line.upper().split(" ON ", 1)
        if len(head) == 2 and head[1].lstrip().startswith("*.*"):
            privileges = {p.strip() for p in head[0].removeprefix("GRANT ").split(",")}
            if privileges & set(GRANT_SYNONYMS[privilege]):
                return True
    return False


def settings_problem(log_bin: object, binlog_format: str | None, row_image: str | None) -> str | None:
    """One sentence for the first server setting that keeps the feed from working, else None."""
    if str(log_bin) not in ("1", "ON"):
        return (
            "the server writes no binlog (log_bin is OFF): start it with log_bin and binlog_format=ROW in its"
            " configuration (MySQL 8 has log_bin on by default; MariaDB needs log-bin in its [mariadbd] section)"
        )
    if (binlog_format or "").upper() != "ROW":
        return (
            f"binlog_format is {binlog_format}, so the binlog holds statements the change feed cannot read as"
            " changed rows: set binlog_format=ROW in the server's configuration and run SET GLOBAL binlog_format=ROW"
        )
    if (row_image or "FULL").upper() not in ROW_IMAGES_WITH_KEYS:
        return (
            f"binlog_row_image is {row_image}, which may leave out the key columns the change feed reads:"
            " set binlog_row_image=FULL in the server's configuration and run SET GLOBAL binlog_row_image=FULL"
        )
    return None


def _compression_problem(connection: Connection, mariadb: bool) -> str | None:
    """A compressed binlog (MariaDB ``log_bin_compress``, MySQL ``binlog_transaction_compression``)
    holds row events the reader cannot decode: they would be skipped unseen, so the feed refuses it."""
    variable = "log_bin_compress" if mariadb else "binlog_transaction_compression"
    row = connection.exec_driver_sql(f"SHOW GLOBAL VARIABLES LIKE '{variable}'").first()
    if row is None or str(row[1]).upper() not in ("ON", "1"):
        return None
    return (
        f"the server compresses its binlog ({variable}=ON), whose compressed row events the change feed"
        f" cannot read: set {variable}=OFF (SET GLOBAL {variable}=OFF and the server's configuration) or"
        " LAB_CHANGE_FEED=scan"
    )


def check_binlog_access(connection: Connection) -> BinlogAccess:
    """Whether this connection's account may read the binlog as the change feed (see the module's
    docstring for what is checked and why). Reads server variables and SHOW GRANTS, and runs
    ``SHOW BINARY LOGS`` as the proof of the monitor grant (a grant through a role shows there
    too); REPLICATION SLAVE is read from SHOW GRANTS, so one held only through a role is found by
    the reader's first binlog dump instead, which then falls back naming it."""
    mariadb = is_mariadb(connection)
    log_bin, binlog_format, row_image, _server_id = connection.exec_driver_sql(SERVER_SETTINGS_SELECT).one()
    problem = settings_problem(log_bin, binlog_format, row_image) or _compression_problem(connection, mariadb)
    if problem is not None:
        return BinlogAccess(problem, binlog_format, row_image)

    (account,) = connection.exec_driver_sql("SELECT CURRENT_USER()").one()
    grant_lines = [str(row[0]) for row in connection.exec_driver_sql(GRANTS_STATEMENT)]
    monitor = MONITOR_GRANTS[mariadb]
    missing = [] if _granted(grant_lines, READ_GRANT) else [READ_GRANT]
    try:
        connection.exec_driver_sql(BINARY_LOGS_STATEMENT).fetchall()
    except DBAPIError:
        missing.append(monitor)
    if not missing:
        return BinlogAccess(None, binlog_format, row_image)
    names = " and ".join(missing)
    also = " (REPLICATION CLIENT is its older name)" if monitor in missing and mariadb else ""
    return BinlogAccess(
        f"the account {account} lacks {names}{also}, which reading the binlog needs:"
        f" run {grant_fix_statement(tuple(missing), str(account))}",
        binlog_format,
        row_image,
    )
