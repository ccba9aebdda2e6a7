"""SQL text builders. Identifiers are backtick-quoted here; values always travel as bound
parameters (``%s`` placeholders, the PyMySQL paramstyle) and never enter SQL text.

Portability: every statement lab_assets runs is valid on MySQL 8.0 and MariaDB 10.11 alike. The
differences that matter, and where they are handled:

* Recursive-CTE limit: MariaDB ``max_recursive_iterations``, MySQL 8 ``cte_max_recursion_depth``;
  :func:`lab_assets.lineage.sql.recursion_limit_statement` picks by ``dialect.is_mariadb``.
* Sequences (``CREATE SEQUENCE``, ``NEXTVAL``), ``CREATE OR REPLACE TABLE``, ``ADD COLUMN IF NOT
  EXISTS``, ``INSERT ... RETURNING``: MariaDB only, so not used; new columns are found through
  information_schema first (``io_manager.client.add_missing_columns``), tables are swapped with
  ``RENAME TABLE`` (atomic on both).
* information_schema: MySQL 8 labels result columns in upper case (``COLUMN_NAME``), MariaDB in
  the case written, so its rows are read by position, never by name. MySQL 8.0.19+ reports
  ``int`` where MariaDB reports ``int(11)`` (display width); nothing depends on that text.
* Default collation: MySQL 8 ``utf8mb4_0900_ai_ci`` (NO PAD: ``'vol'`` and ``'vol '`` differ),
  MariaDB ``utf8mb4_general_ci`` or ``latin1_swedish_ci`` (PAD SPACE). Grouping and the pivot both
  compare with the source column's own collation, so the types found and the values pivoted
  agree on either server; tables lab_assets creates use ``utf8mb4_bin`` explicitly.
* ``information_schema.tables.update_time``: MySQL 8 caches it (``information_schema_stats_expiry``,
  a day by default); the sensor sets the session value to 0 on MySQL (``defs/sensors.py``).
* Internal temporary tables (the lineage CTE, GROUP BY): MariaDB keeps them in memory up to the
  session ``tmp_table_size`` / ``max_heap_table_size`` that ``MySQLResource.connect`` sets; MySQL 8
  uses its TempTable engine, bounded by the global ``temptable_max_ram`` (1 GiB by default) and,
  from 8.0.28, by ``tmp_table_size`` per table, so the session setting matters less there.
* Used on both as they are: ``INSERT IGNORE``, multi-table ``DELETE t FROM t JOIN k``,
  ``INSERT ... WITH RECURSIVE ... SELECT``, ``INSERT ... SELECT`` reading its own target table,
  ``RENAME TABLE a TO b, c TO d``, ``CRC32``, ``REVERSE``, ``BIT_XOR``, ``CONCAT_WS``.
* MySQL 8's default authentication (``caching_sha2_password``) needs PyMySQL's ``rsa`` extra
  (``cryptography``) on a non-TLS connection; pyproject.toml installs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


def quote_identifier(name: str) -> str:
    """Backtick-quote a MySQL identifier; a backtick inside is doubled, and so is ``%``: every
    statement goes through PyMySQL's ``%``-formatting (SQLAlchemy passes parameters, an empty
    set included), which turns ``%%`` back into ``%``."""
    if not name:
        raise ValueError("an SQL identifier cannot be empty")
    if "\x00" in name:
        raise ValueError(f"an SQL identifier cannot contain NUL: {name!r}")
    return "`" + name.replace("`", "``").replace("%", "%%") + "`"


def qualified_name(schema: str, table: str) -> str:
    """```schema`.`table```, both quoted."""
    return f"{quote_identifier(schema)}.{quote_identifier(table)}"


@dataclass(frozen=True)
class Column:
    """A column of a table the IO manager creates: name, SQL type and what it holds."""

    name: str
    sql_type: str  # e.g. "INT", "DECIMAL(16,6)", "INT NOT NULL"
    # What the column holds, for people: shown in the UI's column schema, not part of the DDL.
    description: str | None = field(default=None, compare=False)

    def definition(self) -> str:
        """The column as CREATE TABLE declares it."""
        return f"{quote_identifier(self.name)} {self.sql_type}"


@dataclass(frozen=True)
class TableDefinition:
    """Columns and keys of a table that the IO manager creates."""

    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = field(default=())

    @property
    def column_names(self) -> tuple[str, ...]:
        """The columns' names, in the table's order."""
        return tuple(c.name for c in self.columns)

    def create_statement(self, schema: str, table: str, with_indexes: bool = True, if_not_exists: bool = False) -> str:
        """CREATE TABLE; ``with_indexes=False`` leaves out the secondary indexes (a bulk load adds
        them afterwards with :meth:`add_indexes_statement`, one sorted build per index)."""
        parts = [c.definition() for c in self.columns]
        if self.primary_key:
            parts.append(f"PRIMARY KEY ({', '.join(map(quote_identifier, self.primary_key))})")
        parts.extend(
            f"KEY ({', '.join(map(quote_identifier, index_columns))})"
            for index_columns in (self.indexes if with_indexes else ())
        )
        body = ",\n  ".join(parts)
        # utf8mb4_bin: text kept exactly as the lab stored it (case and accents preserved).
        return (
            f"CREATE TABLE {'IF NOT EXISTS ' if if_not_exists else ''}{qualified_name(schema, table)} (\n  {body}\n)"
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        )


def add_indexes_statement(schema: str, table: str, definition: TableDefinition) -> str | None:
    """ALTER TABLE adding the definition's secondary indexes (named as CREATE TABLE would name
    them: after their first column), or None when it has none."""
    if not definition.indexes:
        return None
    additions = ", ".join(f"ADD KEY ({', '.join(map(quote_identifier, columns))})" for columns in definition.indexes)
    return f"ALTER TABLE {qualified_name(schema, table)} {additions}"


def insert_select_statement(schema: str, table: str, columns: Sequence[str], select_sql: str) -> str:
    """INSERT of ``select_sql``'s rows into the named ``columns`` of ``schema.table``."""
    column_list = ", ".join(map(quote_identifier, columns))
    return f"INSERT INTO {qualified_name(schema, table)} ({column_list})\n{select_sql}"


def upsert_select_statement(schema: str, table: str, definition: TableDefinition, source_table: str) -> str:
    """Copy every row of ``source_table`` (same columns) into ``table``: new keys are inserted,
    existing rows get the source's values (INSERT ... SELECT ... ON DUPLICATE KEY UPDATE, with
    the source's columns named in the update: valid on MySQL 8 and MariaDB, unlike the
    ``VALUES()`` form MySQL 8.0.20 deprecated or the row alias MariaDB lacks)."""
    columns = definition.column_names
    column_list = ", ".join(map(quote_identifier, columns))
    picked = ", ".join(f"fresh.{quote_identifier(c)}" for c in columns)
    updates = [
        f"{quote_identifier(c)} = fresh.{quote_identifier(c)}" for c in columns if c not in definition.primary_key
    ]
    source = f"SELECT {picked} FROM {qualified_name(schema, source_table)} AS fresh"
    if not updates:  # a key-only table: existing rows are already right
        return f"INSERT IGNORE INTO {qualified_name(schema, table)} ({column_list}) {source}"
    return (
        f"INSERT INTO {qualified_name(schema, table)} ({column_list})\n"
        f"{source}\n"
        f"ON DUPLICATE KEY UPDATE {', '.join(updates)}"
    )


def insert_values_statement(schema: str, table: str, columns: Sequence[str]) -> str:
    """INSERT of one row of bound values into the named ``columns`` of ``schema.table``."""
    column_list = ", ".join(map(quote_identifier, columns))
    placeholders = ", ".join(["%s"] * len(columns))
    return f"INSERT INTO {qualified_name(schema, table)} ({column_list}) VALUES ({placeholders})"


def balanced_sum(terms: Sequence[str]) -> str:
    """``terms`` added up as a balanced tree of parentheses ("0" for none). A left-deep chain of
    ~1000 additions (one per measurement column) parses into a ~1000-deep expression tree and
    overran MariaDB 10.11's 299 KiB thread stack (error 1436, measured); a balanced one is about
    10 levels deep."""
    if not terms:
        return "0"
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return f"({balanced_sum(terms[:middle])} + {balanced_sum(terms[middle:])})"


def no_pad_binary_collation(is_mariadb: bool) -> str:
    """utf8mb4 compared byte for byte, trailing spaces included (NO PAD), where utf8mb4_bin
    ignores them (PAD SPACE): MariaDB's ``utf8mb4_nopad_bin`` (10.2+), MySQL's
    ``utf8mb4_0900_bin`` (8.0.17+)."""
    return "utf8mb4_nopad_bin" if is_mariadb else "utf8mb4_0900_bin"
