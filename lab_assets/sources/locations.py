"""Where each table lives and what the lab calls its tables and columns: the one place that knows
the source database from the output database, and the lab's names from lab_assets' own.

The lab system's tables are read in the **source database** (the database of ``LAB_DB_URL``), with
SELECT only. Every table lab_assets creates (the flat table, the catalog, lineage and digests,
bucket, pending, work and staging tables) lives in the **output database** (``LAB_OUTPUT_DATABASE``;
the source database when unset). Both are on one server, so one statement can read the sources
and write lab_assets' tables. SQL builders take a :class:`TableLocations` and ask it for each
table's qualified name; none takes a bare database.

lab_assets calls the two source tables ``samples`` and ``sample_measurements`` and reads six of
their columns (:data:`SOURCE_COLUMNS`); a lab may name all eight otherwise (:class:`SourceTable`,
set by the variables of :data:`TABLE_VARIABLES` and :data:`COLUMN_VARIABLES`). SQL builders write
lab_assets' names (``s.id``, ``m.value``): :attr:`TableLocations.samples` is the lab's table itself
when its columns carry those names, else a derived table renaming them, which both servers merge
into the statement (so the lab's indexes serve it as before). Code that needs the real names
(information_schema, grants, index hints, the sensor's update times) asks :meth:`TableLocations.source`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lab_assets.names import OWN_TABLES, SAMPLE_MEASUREMENTS, SAMPLES, SOURCE_TABLES
from lab_assets.sql.statements import qualified_name, quote_identifier

# The columns lab_assets reads of each source table, by lab_assets' names; nothing else is read.
SOURCE_COLUMNS = {
    SAMPLES: ("id", "parent_id", "experiment_id"),
    SAMPLE_MEASUREMENTS: ("sample_id", "measurement_type", "value"),
}
# The variables that name a source table and map its columns (read when the definitions load).
# The variable naming the database of every table lab_assets creates.
LAB_OUTPUT_DATABASE_ENV = "LAB_OUTPUT_DATABASE"
TABLE_VARIABLES = {SAMPLES: "LAB_SAMPLES_TABLE", SAMPLE_MEASUREMENTS: "LAB_MEASUREMENTS_TABLE"}
COLUMN_VARIABLES = {SAMPLES: "LAB_SAMPLE_COLUMNS", SAMPLE_MEASUREMENTS: "LAB_MEASUREMENT_COLUMNS"}
COLUMN_EXAMPLES = {
    SAMPLES: "id=sample_pk,parent_id=derived_from,experiment_id=study_id",
    SAMPLE_MEASUREMENTS: "sample_id=sample_fk,measurement_type=assay,value=result",
}
_MYSQL_IDENTIFIER_LIMIT = 64


def _checked_name(variable: str, name: str, part: str) -> str:
    """``name`` if the server can hold it as a table or column name, else ``ValueError``."""
    problem = None
    if not name:
        problem = "is empty"
    elif len(name) > _MYSQL_IDENTIFIER_LIMIT:
        problem = f"is longer than {_MYSQL_IDENTIFIER_LIMIT} characters"
    elif name != name.strip() or "\x00" in name:
        problem = "has spaces at an end or a NUL"
    elif "." in name:
        problem = "holds '.' (name the table alone: its database is LAB_DB_URL's)"
    if problem is not None:
        raise ValueError(f"{variable} is not a valid name: {part!r} {problem}.")
    return name


def parse_column_map(variable: str, text: str, table: str) -> dict[str, str]:
    """``{lab_assets' name: the lab's}`` from ``text`` such as ``id=sample_pk,parent_id=derived_from``
    (any subset of :data:`SOURCE_COLUMNS` of ``table``; empty: none); ``ValueError`` naming
    ``variable``, the offending part and the expected form."""
    keys = SOURCE_COLUMNS[table]
    expected = (
        f"expected comma-separated name=column pairs with names among {', '.join(keys)}, e.g. {COLUMN_EXAMPLES[table]}"
    )
    mapping: dict[str, str] = {}
    for part in text.split(",") if text.strip() else ():
        key, equals, column = (p.strip() for p in part.partition("="))
        if not equals or not key or not column:
            raise ValueError(f"{variable} has {part.strip()!r}, which is not name=column: {expected}.")
        if key not in keys:
            raise ValueError(
                f"{variable} names {key!r} in {part.strip()!r}, which lab_assets does not read: {expected}."
            )
        if key in mapping:
            raise ValueError(f"{variable} maps {key!r} twice ({part.strip()!r}): {expected}.")
        mapping[key] = _checked_name(variable, column, part.strip())
    return mapping


@dataclass(frozen=True)
class SourceTable:
    """One of the lab's two tables as the lab names it: ``role`` is lab_assets' name for it
    (``samples``, ``sample_measurements``: asset keys, SQL aliases), ``name`` the lab's, and
    ``columns`` the lab's column for each of lab_assets' (:data:`SOURCE_COLUMNS` order)."""

    role: str
    name: str
    columns: tuple[tuple[str, str], ...]

    @classmethod
    def named(cls, role: str, name: str | None = None, column_map: str = "") -> SourceTable:
        """From the settings' text (``ValueError`` naming the variable if malformed)."""
        table = _checked_name(TABLE_VARIABLES[role], name, name) if name else role
        mapping = parse_column_map(COLUMN_VARIABLES[role], column_map, role)
        return cls(role, table, tuple((c, mapping.get(c, c)) for c in SOURCE_COLUMNS[role]))

    def column(self, ours: str) -> str:
        """The lab's name of lab_assets' column ``ours``."""
        return dict(self.columns)[ours]

    @property
    def renamed(self) -> bool:
        """True when some column the lab names otherwise than lab_assets."""
        return any(ours != theirs for ours, theirs in self.columns)

    def select_list(self) -> str:
        """The lab's columns under lab_assets' names (``sample_pk AS id, ...``)."""
        return ", ".join(
            quote_identifier(theirs) + ("" if ours == theirs else f" AS {quote_identifier(ours)}")
            for ours, theirs in self.columns
        )

    def drift(self, database: str, present: Sequence[str] | None, tables_there: Sequence[str]) -> str | None:
        """What is missing, in one sentence naming the table, the column, the variable that maps it
        and what the table has instead; None if nothing is. ``present``: the table's columns (None if
        the server shows no such table), ``tables_there``: the database's tables."""
        variable = TABLE_VARIABLES[self.role]
        if present is None:
            default = "" if self.name != self.role else ", by default"
            others = ", ".join(list(tables_there)[:20]) + (" ..." if len(tables_there) > 20 else "")
            return (
                f"{database} has no table {self.name} that this account can see ({variable} names it{default}):"
                f" its tables are {others or 'none'}"
            )
        have = {c.lower() for c in present}
        missing = [(ours, theirs) for ours, theirs in self.columns if theirs.lower() not in have]
        if not missing:
            return None
        variable = COLUMN_VARIABLES[self.role]
        names = ", ".join(theirs for _, theirs in missing)
        maps = ", ".join(
            f"{ours} to {'it' if len(missing) == 1 else theirs}{', by default' if ours == theirs else ''}"
            for ours, theirs in missing
        )
        plural = "s" if len(missing) > 1 else ""
        return (
            f"{database}.{self.name} has no column{plural} {names} ({variable} maps {maps}):"
            f" its columns are {', '.join(present)}"
        )


# The ids lab_assets keeps as INT: experiment_measurements' identifying columns and the state
# tables' keys. The lab's columns must hold integers; wider integer types are read as they are
# (a value beyond INT's range stops the build with the server's out-of-range error, explained).
ID_COLUMNS = {SAMPLES: ("id", "parent_id", "experiment_id"), SAMPLE_MEASUREMENTS: ("sample_id",)}
_INTEGER_TYPE = re.compile(r"(tinyint|smallint|mediumint|int|integer|bigint)(\(\d+\))?( unsigned)?( zerofill)?")


def id_type_problem(database: str, source: SourceTable, column_types: Mapping[str, str]) -> str | None:
    """One sentence naming the lab's id columns of ``source`` that are not integers (the
    information_schema ``column_type`` of each column, by lower-case name), or None."""
    wrong = [
        f"{theirs} is {column_types[theirs.lower()]}"
        for ours, theirs in source.columns
        if ours in ID_COLUMNS[source.role]
        and theirs.lower() in column_types
        and not _INTEGER_TYPE.fullmatch(column_types[theirs.lower()].lower())
    ]
    if not wrong:
        return None
    return (
        f"{database}.{source.name}: {', '.join(wrong)}; lab_assets reads sample and experiment ids as integers"
        " (it keeps them as INT), so these columns must have an integer type"
    )


def own_table_clash(tables: TableLocations, source: SourceTable) -> str | None:
    """One sentence when the lab's table would be one lab_assets creates and overwrites (same
    database, a name of :data:`OWN_TABLES` or one of their bucket and helper tables), else None."""
    name = source.name.lower()
    if tables.separate or not any(name == own or name.startswith(f"{own}_") for own in OWN_TABLES):
        return None
    return (
        f"{TABLE_VARIABLES[source.role]} names {source.name}, a table lab_assets writes in {tables.output_database}:"
        f" set {LAB_OUTPUT_DATABASE_ENV} to a database of lab_assets' own, so the lab's table is only read"
    )


DEFAULT_SOURCES = (SourceTable.named(SAMPLES), SourceTable.named(SAMPLE_MEASUREMENTS))


def source_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The four :class:`~lab_assets.mysql.resource.MySQLResource` fields that name the lab's tables and
    columns, from the variables set (and not empty) in ``environ``, the defaults for the others;
    ``ValueError`` naming the variable if one is malformed, so a bad value stops the definitions
    from loading."""
    fields = {
        "samples_table": TABLE_VARIABLES[SAMPLES],
        "measurements_table": TABLE_VARIABLES[SAMPLE_MEASUREMENTS],
        "sample_columns": COLUMN_VARIABLES[SAMPLES],
        "measurement_columns": COLUMN_VARIABLES[SAMPLE_MEASUREMENTS],
    }
    given = {name: environ[variable] for name, variable in fields.items() if environ.get(variable)}
    samples, measurements = source_tables(**given)
    return {
        "samples_table": samples.name,
        "measurements_table": measurements.name,
        "sample_columns": given.get("sample_columns", ""),
        "measurement_columns": given.get("measurement_columns", ""),
    }


def source_tables(
    samples_table: str = SAMPLES,
    measurements_table: str = SAMPLE_MEASUREMENTS,
    sample_columns: str = "",
    measurement_columns: str = "",
) -> tuple[SourceTable, SourceTable]:
    """The two source tables as the settings name them (``ValueError`` if one is malformed)."""
    samples = SourceTable.named(SAMPLES, samples_table, sample_columns)
    measurements = SourceTable.named(SAMPLE_MEASUREMENTS, measurements_table, measurement_columns)
    if samples.name.lower() == measurements.name.lower():
        raise ValueError(
            f"{TABLE_VARIABLES[SAMPLE_MEASUREMENTS]} names {measurements.name!r}, the table"
            f" {TABLE_VARIABLES[SAMPLES]} names too: expected the lab's two tables, samples and measurements."
        )
    return samples, measurements


@dataclass(frozen=True)
class TableLocations:
    """Where each table lives (the source or the output database), the index every walk steps through,
    and the lab's names for its two tables and their columns."""

    source_database: str  # holds the lab's two tables; lab_assets only reads it
    output_database: str  # holds every table lab_assets creates
    # The source's index whose first column is samples.parent_id (the lab system's foreign key
    # makes one), or None if it has none: every recursive walk steps through it.
    parent_index: str | None = None
    # What the lab calls the two tables and their columns (samples first).
    sources: tuple[SourceTable, SourceTable] = DEFAULT_SOURCES

    def database_of(self, table: str) -> str:
        """The source database for the two source tables, the output database for any other."""
        return self.source_database if table in SOURCE_TABLES else self.output_database

    def source(self, table: str) -> SourceTable:
        """The lab's names for source table ``table`` (``samples`` or ``sample_measurements``)."""
        return self.sources[SOURCE_TABLES.index(table)]

    def qualified(self, table: str) -> str:
        """```database`.`table``` for ``table`` in the database it lives in; for a source table,
        the lab's table by the lab's name."""
        name = self.source(table).name if table in SOURCE_TABLES else table
        return qualified_name(self.database_of(table), name)

    def readable(self, table: str) -> str:
        """Source table ``table`` as SQL reads it, with lab_assets' column names: the lab's table
        itself when its columns carry them (the SQL of the default names is unchanged), else
        ``(SELECT `sample_pk` AS `id`, ... FROM lab.lims_samples)``, a derived table with no
        aggregate, DISTINCT or LIMIT, which MySQL 8 and MariaDB merge into the statement (so
        conditions and joins reach the lab's indexes). Every use must give it an alias
        (``AS s``): MySQL requires one for a derived table."""
        source = self.source(table)
        return self._renaming(table) if source.renamed else self.qualified(table)

    def _renaming(self, table: str, index_hint: str = "") -> str:
        """The derived table of :meth:`readable`, ``index_hint`` on the lab's table inside it."""
        return f"(SELECT {self.source(table).select_list()} FROM {self.qualified(table)}{index_hint})"

    @property
    def samples(self) -> str:
        """The lab's samples as SQL reads them (:meth:`readable`); alias it."""
        return self.readable(SAMPLES)

    @property
    def sample_measurements(self) -> str:
        """The lab's measurements as SQL reads them (:meth:`readable`); alias it."""
        return self.readable(SAMPLE_MEASUREMENTS)

    def children_join(self, parent_id_sql: str, alias: str = "child") -> str:
        """A recursive walk's step from parents (``parent_id_sql``, e.g. ``tree.sample_id``) to
        their children: ``STRAIGHT_JOIN samples AS child FORCE INDEX (parent index) ON ...``.

        Join order and index are fixed in the SQL, not left to the optimizer's estimates: with
        statistics taken while the table was empty (a restore, ``STATS_AUTO_RECALC=0``) MariaDB
        otherwise scans every sample once per level of the walk (``child ALL`` joined to the
        CTE's ``key0``), which made a 6,000-deep chain cost many times a flat tree (bench/RESULTS.md,
        "Deep trees and stale statistics").
        The index hint names the lab's table, so with renamed columns it sits inside the
        derived table, on the lab's table, where the merged statement keeps it."""
        index = f" FORCE INDEX ({quote_identifier(self.parent_index)})" if self.parent_index else ""
        if not self.source(SAMPLES).renamed:
            return f"STRAIGHT_JOIN {self.samples} AS {alias}{index} ON {alias}.parent_id = {parent_id_sql}"
        return f"STRAIGHT_JOIN {self._renaming(SAMPLES, index)} AS {alias} ON {alias}.parent_id = {parent_id_sql}"

    @property
    def separate(self) -> bool:
        """True when lab_assets writes into a database of its own."""
        return self.source_database != self.output_database

    @classmethod
    def single(cls, database: str) -> TableLocations:
        """Sources and lab_assets' tables in one database (the default layout)."""
        return cls(database, database)
