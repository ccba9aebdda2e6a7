"""SQL of the measurement-type catalog: one scan of sample_measurements grouped by type, with the
column name recorded for each type earlier."""

from __future__ import annotations

from lab_assets.names import CATALOG_FACTS_TABLE, COLUMN_NAMES_TABLE, MEASUREMENT_TYPES
from lab_assets.sources.locations import TableLocations
from lab_assets.sql.statements import Column, TableDefinition


def measurement_type_catalog_select(tables: TableLocations, charset: str, collation: str) -> str:
    """One row per distinct measurement type as the column's own collation compares them: the
    type, its sample and measurement counts, how many of its rows repeat a sample's (sample, type)
    pair, whether it has more than one spelling (byte-wise), and the column name recorded for it earlier (in
    :data:`COLUMN_NAMES_TABLE`, NULL if none). Rows with a NULL type come back as one more row
    with a NULL type (the caller leaves it out of the catalog; the checks count it): the same scan
    answers three integrity checks.

    Types that the collation holds equal (``VOL`` and ``vol`` under a case-insensitive one) are
    one type; the representative kept is the greatest spelling byte-wise (``vol`` over ``VOL``),
    so the choice does not depend on row order. A recorded name matches when its spelling equals
    the type under the same collation, so a new spelling of a type finds the type's column.
    The outer grouping (one row per type with its recorded name) also keys on the type's bytes:
    under a NO PAD collation (MySQL 8's default utf8mb4_0900_ai_ci) 'ph' and 'ph ' are two types,
    which ``{charset}_bin`` (PAD SPACE) alone would merge when their counts are equal.
    """
    for kind, name in (("character set", charset), ("collation", collation)):
        if not name.replace("_", "").isalnum():
            raise ValueError(f"unexpected {kind} name {name!r}")
    recorded = tables.qualified(COLUMN_NAMES_TABLE)
    return f"""SELECT type_group.measurement_type, type_group.sample_count, type_group.measurement_count,
  type_group.repeated_measurements, type_group.several_spellings, MIN(recorded.column_name) AS recorded_column
FROM (
  SELECT MAX(measurement_type COLLATE {charset}_bin) AS measurement_type,
    COUNT(DISTINCT sample_id) AS sample_count,
    COUNT(*) AS measurement_count,
    COUNT(sample_id) - COUNT(DISTINCT sample_id) AS repeated_measurements,
    MIN(measurement_type COLLATE {charset}_bin) <> MAX(measurement_type COLLATE {charset}_bin) AS several_spellings
  FROM {tables.sample_measurements} AS m
  GROUP BY measurement_type
) AS type_group
LEFT JOIN {recorded} AS recorded
  ON CONVERT(recorded.measurement_type USING {charset}) COLLATE {collation}
   = type_group.measurement_type COLLATE {collation}
GROUP BY type_group.measurement_type, CAST(type_group.measurement_type AS BINARY), type_group.sample_count,
  type_group.measurement_count, type_group.repeated_measurements, type_group.several_spellings"""


# What the catalog's scan counted besides the catalog (lab_assets.checks.evaluation.CatalogScan),
# one row: kept with the catalog, so a refresh after which no measurement row came or went keeps
# both without scanning sample_measurements again.
CATALOG_FACTS = ("null_type_rows", "types_with_repeats", "types_with_several_spellings", "measurement_rows")
CATALOG_FACTS_DEFINITION = TableDefinition(
    columns=(Column("fact_row", "TINYINT NOT NULL"), *(Column(c, "BIGINT NOT NULL") for c in CATALOG_FACTS)),
    primary_key=("fact_row",),
)
PUBLISHED_CATALOG_COLUMNS = ("measurement_type", "column_name", "sample_count", "measurement_count")


def catalog_facts_replace(tables: TableLocations) -> str:
    """The one row of facts, replaced (four bound values, in :data:`CATALOG_FACTS` order)."""
    return f"REPLACE INTO {tables.qualified(CATALOG_FACTS_TABLE)} VALUES (1, %s, %s, %s, %s)"


def catalog_facts_select(tables: TableLocations) -> str:
    """The one row of facts the last catalog scan recorded, in :data:`CATALOG_FACTS` order."""
    return f"SELECT {', '.join(CATALOG_FACTS)} FROM {tables.qualified(CATALOG_FACTS_TABLE)} WHERE fact_row = 1"


def published_catalog_select(tables: TableLocations) -> str:
    """The catalog as the last refresh published it."""
    return f"SELECT {', '.join(PUBLISHED_CATALOG_COLUMNS)} FROM {tables.qualified(MEASUREMENT_TYPES)}"
