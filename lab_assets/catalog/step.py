"""The measurement-type catalog (``measurement_types``): one row per distinct measurement type with
its column name and counts, and the record of column names given (``lab_measurement_columns``),
which a type keeps for good."""

from __future__ import annotations

import pandas as pd
from dagster import DagsterLogManager, MetadataValue

from lab_assets.catalog.counts import SourceCollations, counted_catalog
from lab_assets.catalog.naming import column_name_for_type
from lab_assets.catalog.sql import (
    CATALOG_FACTS_DEFINITION,
    PUBLISHED_CATALOG_COLUMNS,
    catalog_facts_select,
    published_catalog_select,
)
from lab_assets.checks.evaluation import CatalogScan
from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.sessions import is_mariadb
from lab_assets.names import (
    CATALOG_FACTS_TABLE,
    COLUMN_NAMES_TABLE,
    MEASUREMENT_TYPES,
    SAMPLE_MEASUREMENTS,
)
from lab_assets.sql.statements import Column, TableDefinition, no_pad_binary_collation
from lab_assets.state.writes import DerivedTable


def column_names_definition(type_collation: str) -> TableDefinition:
    """The column each measurement type (spelling as first seen) was given. VARCHAR(255): the
    catalog's key length (README, Known limits). The type in ``type_collation``
    (:func:`lab_assets.sql.statements.no_pad_binary_collation`), not the utf8mb4_bin of lab_assets'
    other tables: under a NO PAD source collation (MySQL 8's default utf8mb4_0900_ai_ci) 'ph'
    and 'ph ' are two types, which a PAD SPACE key would make one, and ``INSERT IGNORE`` would drop
    the second type's name."""
    return TableDefinition(
        columns=(
            Column("measurement_type", f"VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {type_collation} NOT NULL"),
            Column("column_name", "VARCHAR(64) NOT NULL"),
        ),
        primary_key=("measurement_type",),
    )


def compute_measurement_type_catalog(
    log: DagsterLogManager,
    mysql: MySQLResource,
    keep: bool = False,
    ids_table: str | None = None,
    keep_counts: bool = False,
) -> DerivedTable:
    """One row per distinct measurement type, as the source column's own collation groups them
    (its binary collation picks the representative spelling), with its column name and counts.

    Column names are a published interface: a type keeps the column it was first given
    (recorded in ``lab_measurement_columns``, never forgotten), also when a new spelling of it
    appears or it disappears and comes back; only a type seen for the first time is named by
    :func:`column_name_for_type`, and that name is recorded before it is published.

    ``keep``: the binlog says no measurement row came or went (nor got another sample or type)
    since the last refresh, so the catalog and its scan's counts are as published then: both are
    kept, and sample_measurements is not scanned. ``ids_table``: the change feed's changed sample
    ids, whose rows alone move the counts (:mod:`lab_assets.catalog.counts`); without it the
    counts are rebuilt from one scan where ``keep_counts`` (the refresh stores a binlog position,
    so binlog refreshes follow), else the catalog is one scan grouped by type."""
    if keep and (kept := _kept_catalog(mysql)) is not None:
        assert isinstance(kept.value, pd.DataFrame)
        log.info(f"{len(kept.value)} measurement types, kept: no measurement row came or went (binlog)")
        return kept
    source = mysql.column(SAMPLE_MEASUREMENTS, "measurement_type")
    tables = mysql.tables
    recorded = tables.qualified(COLUMN_NAMES_TABLE)
    with mysql.connect() as connection:
        type_collation = no_pad_binary_collation(is_mariadb(connection))
    definition = column_names_definition(type_collation)
    mysql.execute(definition.create_statement(tables.output_database, COLUMN_NAMES_TABLE, if_not_exists=True))
    if mysql.column(COLUMN_NAMES_TABLE, "measurement_type").collation != type_collation:  # made by an older version
        mysql.execute(f"ALTER TABLE {recorded} MODIFY {definition.columns[0].definition()}")
    collations = SourceCollations(str(source.character_set), str(source.collation), type_collation)
    scanned, scan = counted_catalog(log, mysql, collations, ids_table, keep_counts)
    rows = [r for r in scanned if r[0] is not None]
    names = [r[5] or column_name_for_type(r[0]) for r in rows]
    new = [(r[0], name) for r, name in zip(rows, names, strict=True) if r[5] is None]
    if new:
        with mysql.connect() as connection:
            connection.exec_driver_sql(
                f"INSERT IGNORE INTO {recorded} (measurement_type, column_name) VALUES (%s, %s)", new
            )
        log.info(f"new measurement columns recorded: {', '.join(f'{t!r} -> {n}' for t, n in new)}")
    catalog = pd.DataFrame(
        {
            # object dtype even when empty: an empty list alone would make float64 (DOUBLE) columns
            "measurement_type": pd.Series([r[0] for r in rows], dtype=object),
            "column_name": pd.Series(names, dtype=object),
            "sample_count": pd.array([int(r[1]) for r in rows], dtype="int64"),
            "measurement_count": pd.array([int(r[2]) for r in rows], dtype="int64"),
        }
    ).sort_values("column_name", ignore_index=True)
    log.info(f"{len(catalog)} measurement types: {', '.join(catalog['measurement_type'])}")
    return _derived(catalog, scan)


def _derived(catalog: pd.DataFrame, scan: CatalogScan) -> DerivedTable:
    return DerivedTable(catalog, metadata={"preview": MetadataValue.md(catalog.to_markdown(index=False))}, facts=scan)


def _kept_catalog(mysql: MySQLResource) -> DerivedTable | None:
    """The published catalog and its scan's facts, read back; None when either is missing or of
    another layout (the catalog is then scanned)."""
    tables = mysql.tables
    if mysql.column_names(MEASUREMENT_TYPES)[: len(PUBLISHED_CATALOG_COLUMNS)] != list(PUBLISHED_CATALOG_COLUMNS):
        return None
    if mysql.column_names(CATALOG_FACTS_TABLE) != list(CATALOG_FACTS_DEFINITION.column_names):
        return None
    facts = mysql.fetch_all(catalog_facts_select(tables))
    if len(facts) != 1:
        return None
    rows = mysql.fetch_all(published_catalog_select(tables))
    catalog = pd.DataFrame(
        {
            "measurement_type": pd.Series([r[0] for r in rows], dtype=object),
            "column_name": pd.Series([r[1] for r in rows], dtype=object),
            "sample_count": pd.array([int(r[2]) for r in rows], dtype="int64"),
            "measurement_count": pd.array([int(r[3]) for r in rows], dtype="int64"),
        }
    ).sort_values("column_name", ignore_index=True)
    return _derived(catalog, CatalogScan(*(int(v) for v in facts[0])))
