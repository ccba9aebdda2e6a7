"""The catalog's counts, read from the sums of :mod:`lab_assets.catalog.counts_sql`: rebuilt whole
from one read of sample_measurements (a scan), or, when the change feed names the changed sample
ids, moved by the difference of those ids' rows, read by the sample_id index, so that no
statement reads a source table whole. The facts of :class:`CatalogScan` are written with the
counts (in one transaction on the feed's path): their row is also the mark that the state and
the sums are whole, so a rebuild that stopped half way is rebuilt again, never moved."""

from __future__ import annotations

from dataclasses import dataclass

from dagster import DagsterLogManager
from sqlalchemy.engine import Connection

from lab_assets.catalog.counts_sql import (
    counted_catalog_select,
    delta_definition,
    delta_insert_statement,
    groups_definition,
    several_spellings_select,
    spellings_definition,
    state_definition,
    state_delete_statements,
    state_fill_statement,
    state_refill_statement,
    sums_broken_select,
    sums_fill_correction,
    sums_fill_statements,
    sums_update_statements,
)
from lab_assets.catalog.sql import (
    CATALOG_FACTS,
    CATALOG_FACTS_DEFINITION,
    catalog_facts_replace,
    catalog_facts_select,
    measurement_type_catalog_select,
)
from lab_assets.checks.evaluation import CatalogScan
from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.sessions import transaction
from lab_assets.names import (
    CATALOG_FACTS_TABLE,
    COLUMN_NAMES_TABLE,
    DELTA_SUFFIX,
    SAMPLE_TYPE_COUNTS,
    TYPE_GROUPS,
    TYPE_SPELLINGS,
    helper_table,
)
from lab_assets.sql.statements import TableDefinition


@dataclass(frozen=True)
class SourceCollations:
    """How the source column compares types (``charset``, ``collation``) and the no-pad binary
    collation that keeps every spelling apart (``no_pad``)."""

    charset: str
    collation: str
    no_pad: str


class SumsParted(RuntimeError):
    """The sums moved by a delta came out impossible: the state and the sums have parted."""


def counted_catalog(
    log: DagsterLogManager,
    mysql: MySQLResource,
    collations: SourceCollations,
    ids_table: str | None,
    keep_counts: bool = True,
) -> tuple[list[tuple], CatalogScan]:
    """The catalog's rows (as :func:`lab_assets.catalog.sql.measurement_type_catalog_select`
    returns them) and the scan's facts: by delta over the feed's ``ids_table`` where the state is
    whole and of the source's collations, else rebuilt whole from one read of sample_measurements.

    ``keep_counts`` False (no ids, and a refresh that stores no binlog position: the change feed
    is off or cannot be used): one scan grouped by type, as before the counts existed, and the
    state and its facts left as they are. They stay right for the binlog refresh that may follow:
    it reads every change since the position it stored last, which is also where the state
    stands."""
    if ids_table is not None:
        problem = _state_problem(mysql, collations)
        if problem is None:
            try:
                return _moved(mysql, collations, ids_table)
            except SumsParted as error:
                problem = str(error)
        log.warning(f"the catalog's counts are rebuilt from one scan of sample_measurements: {problem}")
    elif not keep_counts:
        select = measurement_type_catalog_select(mysql.tables, collations.charset, collations.collation)
        rows = [tuple(row) for row in mysql.fetch_all(select)]
        return rows, _facts(rows)
    return _rebuilt(mysql, collations)


def _definitions(collations: SourceCollations) -> dict[str, TableDefinition]:
    return {
        SAMPLE_TYPE_COUNTS: state_definition(collations.no_pad),
        TYPE_SPELLINGS: spellings_definition(collations.no_pad, collations.charset, collations.collation),
        TYPE_GROUPS: groups_definition(collations.charset, collations.collation),
    }


def _state_problem(mysql: MySQLResource, collations: SourceCollations) -> str | None:
    """Why the state cannot be moved by a delta (missing, of another layout or collation, or not
    marked whole by the facts' row), or None."""
    for table, definition in _definitions(collations).items():
        columns = {c.name: c for c in mysql.table_columns(table)}
        if list(columns) != list(definition.column_names):
            return f"{table} is missing or of another layout"
        for key in ("group_key", "spelling"):
            wanted = collations.collation if key == "group_key" else collations.no_pad
            if key in columns and columns[key].collation != wanted:
                return f"{table}.{key} is not in {wanted} (the source column's collation changed)"
    if mysql.column_names(CATALOG_FACTS_TABLE) != list(CATALOG_FACTS_DEFINITION.column_names):
        return f"{CATALOG_FACTS_TABLE} is missing or of another layout"
    if len(mysql.fetch_all(catalog_facts_select(mysql.tables))) != 1:
        return "the last rebuild of the counts did not finish"
    return None


def _rebuilt(mysql: MySQLResource, collations: SourceCollations) -> tuple[list[tuple], CatalogScan]:
    """State, sums and facts rebuilt whole: the facts' row deleted first, written last."""
    tables = mysql.tables
    with mysql.connect() as connection:
        connection.exec_driver_sql(
            CATALOG_FACTS_DEFINITION.create_statement(tables.output_database, CATALOG_FACTS_TABLE, if_not_exists=True)
        )
        connection.exec_driver_sql(f"DELETE FROM {tables.qualified(CATALOG_FACTS_TABLE)}")
        for table, definition in _definitions(collations).items():
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {tables.qualified(table)}")
            connection.exec_driver_sql(definition.create_statement(tables.output_database, table))
        connection.exec_driver_sql(state_fill_statement(tables, collations.no_pad))
        for statement in sums_fill_statements(tables, collations.charset, collations.collation):
            connection.exec_driver_sql(statement)
        (several,) = connection.exec_driver_sql(several_spellings_select(tables)).one()
        if int(several):
            connection.exec_driver_sql(sums_fill_correction(tables, collations.charset, collations.collation))
        return _read_and_marked(connection, mysql, collations)


def _moved(mysql: MySQLResource, collations: SourceCollations, ids_table: str) -> tuple[list[tuple], CatalogScan]:
    """The changed ids' state rows replaced by their live rows and the sums moved by the
    difference, in one transaction with the facts."""
    tables = mysql.tables
    delta = helper_table(SAMPLE_TYPE_COUNTS, DELTA_SUFFIX)
    with mysql.connect() as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {tables.qualified(delta)}")
        connection.exec_driver_sql(delta_definition(collations.no_pad).create_statement(tables.output_database, delta))
        try:
            with transaction(connection):
                connection.exec_driver_sql(delta_insert_statement(tables, ids_table, delta, -1))
                for statement in state_delete_statements(tables, ids_table):
                    connection.exec_driver_sql(statement)
                connection.exec_driver_sql(state_refill_statement(tables, collations.no_pad, ids_table))
                connection.exec_driver_sql(delta_insert_statement(tables, ids_table, delta, 1))
                delta_rows = f"SELECT * FROM {tables.qualified(delta)}"
                for statement in sums_update_statements(tables, delta_rows, collations.charset, collations.collation):
                    connection.exec_driver_sql(statement)
                (broken,) = connection.exec_driver_sql(sums_broken_select(tables)).one()
                if int(broken):
                    raise SumsParted(f"{broken} sums of {TYPE_SPELLINGS} / {TYPE_GROUPS} came out impossible")
                return _read_and_marked(connection, mysql, collations)
        finally:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {tables.qualified(delta)}")


def _read_and_marked(
    connection: Connection, mysql: MySQLResource, collations: SourceCollations
) -> tuple[list[tuple], CatalogScan]:
    """The catalog's rows read from the sums, and their facts written (the mark that they are whole)."""
    tables = mysql.tables
    select = counted_catalog_select(tables, collations.charset, collations.collation, COLUMN_NAMES_TABLE)
    rows = [tuple(row) for row in connection.exec_driver_sql(select).fetchall()]
    scan = _facts(rows)
    connection.exec_driver_sql(catalog_facts_replace(tables), tuple(getattr(scan, fact) for fact in CATALOG_FACTS))
    return rows, scan


def _facts(rows: list[tuple]) -> CatalogScan:
    """What the catalog's rows say besides the catalog (the checks' facts)."""
    typed = [r for r in rows if r[0] is not None]
    return CatalogScan(
        null_type_rows=sum(int(r[2]) for r in rows if r[0] is None),
        types_with_repeats=sum(1 for r in typed if r[3]),
        types_with_several_spellings=sum(1 for r in typed if r[4]),
        measurement_rows=sum(int(r[2]) for r in rows),
    )
