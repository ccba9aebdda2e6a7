"""Statement events in the binlog that the change feed cannot express as changed sample ids.

A row-based binlog still logs DDL (TRUNCATE, ALTER, RENAME, DROP, CREATE ... LIKE) as statements,
and a session with ``binlog_format`` STATEMENT or MIXED logs its writes as statements too. Any
such statement that may touch a source table makes the reader fall back to a scan. Matching is
on identifiers in the statement's text, so it errs towards falling back (a comment or string
naming a source table does too): a fallback costs a scan, a miss would cost exactness.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# An identifier chain: `quoted` or bare parts joined by dots (db.table, table.column).
_PART = r"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
_CHAIN = re.compile(rf"(?<![A-Za-z0-9_$`]){_PART}(?:\s*\.\s*{_PART})*")
_FIRST_WORDS = re.compile(r"^\s*(?:/\*.*?\*/\s*)*([A-Za-z]+)(?:\s+([A-Za-z]+))?", re.DOTALL)
# Transaction control: not a change of its own.
TRANSACTION_WORDS = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "XA")
# Statements that change no row of the table they name.
HARMLESS_WORDS = ("ANALYZE", "OPTIMIZE", "GRANT", "REVOKE", "FLUSH")
# Statements that write rows: in a row-based binlog they appear only from a statement-format session.
ROW_WRITE_WORDS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD")


def statement_kind(query: str) -> str:
    """The statement's first word (after leading comments), upper case; '' if none."""
    match = _FIRST_WORDS.match(query)
    return match.group(1).upper() if match else ""


def _unquote(part: str) -> str:
    part = part.strip()
    return part[1:-1].replace("``", "`") if part.startswith("`") else part


def touched_source(query: str, default_schema: str, source_database: str, source_names: Sequence[str]) -> str | None:
    """The source table (``database.table``) a statement event may touch, or None.

    ``default_schema``: the session's current database when it ran (the event's schema); a name
    not qualified by a database is the source table when that is the source database. A
    ``DROP DATABASE`` of the source database touches both tables."""
    words = _FIRST_WORDS.match(query)
    if words and words.group(1).upper() == "DROP" and (words.group(2) or "").upper() in ("DATABASE", "SCHEMA"):
        for match in _CHAIN.finditer(query):
            if _unquote(match.group(0)).lower() == source_database.lower():
                return f"{source_database}.{source_names[0]}"
    names = {name.lower(): name for name in source_names}
    in_source = default_schema.lower() == source_database.lower()
    for match in _CHAIN.finditer(query):
        parts = [_unquote(p) for p in re.findall(_PART, match.group(0))]
        lowered = [p.lower() for p in parts]
        for index, part in enumerate(lowered):
            # samples / samples.id when the session was in the source database; db.samples(.id) when
            # db is the source database. other_db.samples is another database's table.
            in_context = in_source if index == 0 else lowered[index - 1] == source_database.lower()
            if part in names and in_context:
                return f"{source_database}.{names[part]}"
    return None


def statement_fallback(
    query: str, default_schema: str, source_database: str, source_names: Sequence[str]
) -> str | None:
    """One sentence when a statement event stops the feed, else None (see the module docstring)."""
    kind = statement_kind(query)
    shown = " ".join(query.split())
    shown = shown if len(shown) <= 120 else shown[:117] + "..."
    words = shown.upper()
    if words.startswith("XA COMMIT") and not words.endswith("ONE PHASE"):
        # MariaDB logs an XA transaction's rows at XA PREPARE: a commit read here may make rows
        # visible that were logged before the stored position.
        return (
            f"the binlog holds {shown}, the commit of an XA transaction prepared earlier, whose rows it logged"
            " at XA PREPARE: a scan refreshes instead"
        )
    if kind in TRANSACTION_WORDS or kind in HARMLESS_WORDS:
        return None
    if kind in ROW_WRITE_WORDS:
        # A write logged as a statement names the tables it writes only as written: a view or a
        # trigger may write a source table under another name, so any such write stops the feed.
        return (
            f"the binlog holds a {kind} logged as a statement, not as rows ({shown}), because the writing"
            " session's binlog_format was not ROW (it may write a source table through a view or a trigger):"
            " a scan refreshes instead; set binlog_format=ROW for every session (SET GLOBAL binlog_format=ROW"
            " and the server's configuration)"
        )
    table = touched_source(query, default_schema, source_database, source_names)
    if table is None:
        return None
    return (
        f"the binlog holds a {kind} statement on {table} ({shown}), whose changed rows the binlog does not"
        " list: a scan refreshes and re-establishes the binlog position"
    )


def transaction_effect(query: str, in_transaction: bool) -> str | None:
    """What a statement event does to the transaction being read: ``begin`` (BEGIN, XA START),
    ``end`` (COMMIT, ROLLBACK, or any statement outside a transaction, such as DDL or XA COMMIT,
    which is a transaction of its own) or None (inside a transaction: a statement-format write,
    SAVEPOINT, ROLLBACK TO)."""
    kind = statement_kind(query)
    words = " ".join(query.split()).upper()
    if kind == "BEGIN" or words.startswith("XA START"):
        return "begin"
    if kind == "COMMIT" or (kind == "ROLLBACK" and not words.startswith("ROLLBACK TO")):
        return "end"
    if not in_transaction and kind not in ("SAVEPOINT", "RELEASE"):
        return "end"
    return None
