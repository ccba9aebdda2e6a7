"""The catalog reads lab_assets makes (information_schema and the primary key's ends): the columns
of a table, whether a table exists, the index a walk forces, the span of sample ids and what the
source tables lack of what lab_assets reads."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection

from lab_assets.names import SAMPLES
from lab_assets.sources.locations import (
    TableLocations,
    id_type_problem,
    own_table_clash,
)
from lab_assets.sql.statements import quote_identifier


@dataclass(frozen=True)
class ColumnInfo:
    """One column as information_schema describes it."""

    name: str
    column_type: str  # e.g. "int(11)" (MariaDB) or "int" (MySQL 8.0.19+): shown, never parsed
    nullable: bool
    character_set: str | None  # None for non-text columns
    collation: str | None


def table_columns(connection: Connection, schema: str, table: str) -> list[ColumnInfo]:
    """The table's columns in their order; empty if the table does not exist. Read by position:
    MySQL 8 labels information_schema's result columns in upper case, MariaDB as written."""
    rows = connection.exec_driver_sql(
        "SELECT column_name, column_type, is_nullable, character_set_name, collation_name"
        " FROM information_schema.columns WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()
    return [ColumnInfo(str(r[0]), str(r[1]), r[2] == "YES", r[3], r[4]) for r in rows]


def column_names(connection: Connection, schema: str, table: str) -> list[str]:
    """The table's column names in their order; empty if the table does not exist."""
    return [column.name for column in table_columns(connection, schema, table)]


def table_exists(connection: Connection, schema: str, table: str) -> bool:
    """Whether ``schema.table`` exists."""
    return (
        connection.exec_driver_sql(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        ).first()
        is not None
    )


def index_starting_with(connection: Connection, schema: str, table: str, column: str) -> str | None:
    """The name of an index of ``table`` whose first column is ``column`` (a unique one first),
    or None."""
    row = connection.exec_driver_sql(
        "SELECT index_name FROM information_schema.statistics"
        " WHERE table_schema = %s AND table_name = %s AND column_name = %s AND seq_in_index = 1"
        " ORDER BY non_unique, index_name LIMIT 1",
        (schema, table, column),
    ).first()
    return None if row is None else str(row[0])


def sample_id_span(connection: Connection, tables: TableLocations) -> int:
    """``MAX(id) - MIN(id) + 1`` of samples (0 when empty): at least the number of samples, exactly
    that while ids are dense, read from the primary key's two ends instead of counting every row.
    The one bound used for recursion limits and for the share of changed samples."""
    sample_id = quote_identifier(tables.source(SAMPLES).column("id"))
    (span,) = connection.exec_driver_sql(
        f"SELECT COALESCE(MAX({sample_id}) - MIN({sample_id}) + 1, 0) FROM {tables.qualified(SAMPLES)}"
    ).one()
    return int(span)


def source_drift(connection: Connection, tables: TableLocations) -> str | None:
    """One sentence naming what the source tables lack of what lab_assets reads (a missing table
    or column, the variable that names it, what is there instead), or None. Read from
    information_schema, which shows only what the account may read (so a table without SELECT
    looks missing; the grant check runs first)."""
    database = tables.source_database
    names = [source.name for source in tables.sources]
    rows = connection.exec_driver_sql(
        "SELECT table_name, column_name, column_type FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name IN (%s, %s) ORDER BY ordinal_position",
        (database, *names),
    ).fetchall()
    present: dict[str, list[str]] = {}
    types: dict[str, dict[str, str]] = {}
    for table, column, column_type in rows:  # keyed in lower case: lower_case_table_names may fold names
        present.setdefault(str(table).lower(), []).append(str(column))
        types.setdefault(str(table).lower(), {})[str(column).lower()] = str(column_type)
    problems: list[str] = [clash for source in tables.sources if (clash := own_table_clash(tables, source))]
    if problems:
        return "; ".join(problems)
    for source in tables.sources:
        if source.name.lower() not in present:
            there = sorted(
                str(row[0])
                for row in connection.exec_driver_sql(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (database,)
                )
            )
            problems.append(str(source.drift(database, None, there)))
        elif (problem := source.drift(database, present[source.name.lower()], ())) is not None:
            problems.append(problem)
        elif (problem := id_type_problem(database, source, types[source.name.lower()])) is not None:
            problems.append(problem)
    return "; ".join(problems) or None
