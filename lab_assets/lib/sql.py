"""SQL text builders. Identifiers are backtick-quoted here; values always travel as bound
parameters (``%s`` placeholders, the PyMySQL paramstyle) and never enter SQL text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


def quote_identifier(name: str) -> str:
    """Backtick-quote a MySQL identifier; a backtick inside is doubled."""
    if not name:
        raise ValueError("an SQL identifier cannot be empty")
    if "\x00" in name:
        raise ValueError(f"an SQL identifier cannot contain NUL: {name!r}")
    return "`" + name.replace("`", "``") + "`"


def qualified_name(schema: str, table: str) -> str:
    return f"{quote_identifier(schema)}.{quote_identifier(table)}"


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # e.g. "INT", "DECIMAL(16,6)", "INT NOT NULL"

    def definition(self) -> str:
        return f"{quote_identifier(self.name)} {self.sql_type}"


@dataclass(frozen=True)
class TableDefinition:
    """Columns and keys of a table that the IO manager creates."""

    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = field(default=())

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def create_statement(self, schema: str, table: str) -> str:
        parts = [c.definition() for c in self.columns]
        if self.primary_key:
            parts.append(f"PRIMARY KEY ({', '.join(map(quote_identifier, self.primary_key))})")
        for index_columns in self.indexes:
            parts.append(f"KEY ({', '.join(map(quote_identifier, index_columns))})")
        body = ",\n  ".join(parts)
        # utf8mb4_bin: text kept exactly as the lab stored it (case and accents preserved).
        return (
            f"CREATE TABLE {qualified_name(schema, table)} (\n  {body}\n)"
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        )


def insert_select_statement(schema: str, table: str, columns: Sequence[str], select_sql: str) -> str:
    column_list = ", ".join(map(quote_identifier, columns))
    return f"INSERT INTO {qualified_name(schema, table)} ({column_list})\n{select_sql}"


def insert_values_statement(schema: str, table: str, columns: Sequence[str]) -> str:
    column_list = ", ".join(map(quote_identifier, columns))
    placeholders = ", ".join(["%s"] * len(columns))
    return f"INSERT INTO {qualified_name(schema, table)} ({column_list}) VALUES ({placeholders})"


def in_list_condition(expression: str, values: Sequence[object]) -> tuple[str, tuple[object, ...]]:
    """``expression IN (%s, ...)`` with its parameters; an empty list matches nothing."""
    if not values:
        return "1 = 0", ()
    return f"{expression} IN ({', '.join(['%s'] * len(values))})", tuple(values)
