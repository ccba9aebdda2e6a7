"""SQL of the measurement-type catalog: one scan of sample_measurements grouped by type, with the
column name recorded for each type earlier."""

from __future__ import annotations

from lab_assets.names import COLUMN_NAMES_TABLE, SAMPLE_MEASUREMENTS, SAMPLES
from lab_assets.sources.locations import SOURCE_COLUMNS, TableLocations

SAMPLES_COLUMNS = SOURCE_COLUMNS[SAMPLES]
MEASUREMENTS_COLUMNS = SOURCE_COLUMNS[SAMPLE_MEASUREMENTS]


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
