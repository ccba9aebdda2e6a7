"""The asset graph: lab sources -> measurement-type catalog and sample lineage -> flat table."""

import time

import pandas as pd
from dagster import (
    AssetExecutionContext,
    DataVersion,
    MetadataValue,
    ObserveResult,
    asset,
    observable_source_asset,
)

from lab_assets.defs.resources import MySQLResource
from lab_assets.io_manager import SqlRelation, existing_columns
from lab_assets.lib.flat_table import MeasurementColumn, flat_table_definition, pivot_select
from lab_assets.lib.lineage import LINEAGE_TABLE, lineage_select, recursion_limit
from lab_assets.lib.naming import column_name_for_type
from lab_assets.lib.sql import qualified_name
from lab_assets.lib.sources import (
    MEASUREMENTS_COLUMNS,
    SAMPLES_COLUMNS,
    fingerprint_select,
    measurement_type_catalog_select,
)

SOURCES_GROUP = "lab_sources"
FLAT_GROUP = "lab_flat_table"
FLAT_TABLE = "experiment_measurements"


def _observe(mysql: MySQLResource, table: str, columns: tuple[str, ...]) -> ObserveResult:
    started = time.monotonic()
    row_count, hash_sum, hash_xor = mysql.fetch_one(fingerprint_select(mysql.database, table, columns))
    return ObserveResult(
        data_version=DataVersion(f"{row_count}-{hash_sum}-{hash_xor}"),
        metadata={
            "dagster/row_count": MetadataValue.int(int(row_count)),
            "observe_seconds": round(time.monotonic() - started, 3),
        },
    )


@observable_source_asset(
    name="samples",
    group_name=SOURCES_GROUP,
    description="The lab system's samples (id, parent_id, experiment_id, ts): trees of samples, each"
    " made from a parent sample. Read-only for lab_assets; observed as row count and content hash.",
    tags={"dagster/kind/mysql": ""},
)
def samples(mysql: MySQLResource) -> ObserveResult:
    return _observe(mysql, "samples", SAMPLES_COLUMNS)


@observable_source_asset(
    name="sample_measurements",
    group_name=SOURCES_GROUP,
    description="The lab system's measurements: one row per sample, measurement type and value; new"
    " types appear at any time. Read-only for lab_assets; observed as row count and content hash.",
    tags={"dagster/kind/mysql": ""},
)
def sample_measurements(mysql: MySQLResource) -> ObserveResult:
    return _observe(mysql, "sample_measurements", MEASUREMENTS_COLUMNS)


def _binary_collation_of_measurement_type(mysql: MySQLResource) -> str:
    (charset,) = mysql.fetch_one(
        "SELECT character_set_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = 'sample_measurements' AND column_name = 'measurement_type'",
        (mysql.database,),
    )
    return f"{charset}_bin"


@asset(
    deps=[sample_measurements],
    group_name=FLAT_GROUP,
    kinds={"mysql", "pandas"},
    description="Catalog of measurement types: one row per distinct type (as the source column's"
    " collation compares them) with the type as stored, its column in experiment_measurements and"
    " how many samples have it.",
)
def measurement_types(context: AssetExecutionContext, mysql: MySQLResource) -> pd.DataFrame:
    rows = mysql.fetch_all(
        measurement_type_catalog_select(mysql.database, _binary_collation_of_measurement_type(mysql))
    )
    catalog = pd.DataFrame(
        {
            "measurement_type": [r[0] for r in rows],
            "column_name": [column_name_for_type(r[0]) for r in rows],
            "sample_count": pd.array([int(r[1]) for r in rows], dtype="int64"),
            "measurement_count": pd.array([int(r[2]) for r in rows], dtype="int64"),
        }
    ).sort_values("column_name", ignore_index=True)
    context.log.info(f"{len(catalog)} measurement types: {', '.join(catalog['measurement_type'])}")
    context.add_output_metadata({"preview": MetadataValue.md(catalog.to_markdown(index=False))})
    return catalog


@asset(
    deps=[samples],
    group_name=FLAT_GROUP,
    kinds={"mysql"},
    description="Root enrichment: each sample's root sample (top_parent_id) and depth, computed in"
    " MySQL with one recursive CTE for trees of any depth. Samples on a parent cycle or under a"
    " missing parent get top_parent_id NULL.",
)
def sample_lineage(mysql: MySQLResource) -> SqlRelation:
    (sample_count,) = mysql.fetch_one(f"SELECT COUNT(*) FROM {qualified_name(mysql.database, 'samples')}")
    return SqlRelation(
        select_sql=lineage_select(mysql.database),
        definition=LINEAGE_TABLE,
        recursion_limit=recursion_limit(int(sample_count)),
    )


@asset(
    name=FLAT_TABLE,
    deps=[samples, sample_measurements],
    group_name=FLAT_GROUP,
    kinds={"mysql"},
    description="The flat table scientists query: one row per sample with experiment_id, its root"
    " sample (top_parent_id), sample_id and one measurement_<type> DECIMAL(16,6) column per"
    " measurement type (NULL where the sample has no such measurement). Built inside MySQL and"
    " swapped in atomically.",
)
def experiment_measurements(
    context: AssetExecutionContext,
    mysql: MySQLResource,
    measurement_types: pd.DataFrame,
    sample_lineage: SqlRelation,
) -> SqlRelation:
    columns = [
        MeasurementColumn(measurement_type=t, column_name=c)
        for t, c in zip(measurement_types["measurement_type"], measurement_types["column_name"])
    ]
    definition = flat_table_definition(columns)
    with mysql.connect() as connection:
        before = {name.lower() for name in existing_columns(connection, mysql.database, FLAT_TABLE)}
    added = [c.column_name for c in columns if before and c.column_name.lower() not in before]
    if added:
        context.log.info(f"new measurement columns: {', '.join(added)}")
    context.add_output_metadata({"measurement_columns": len(columns), "measurement_columns_added": ", ".join(added) or "none"})
    select_sql, params = pivot_select(mysql.database, sample_lineage.as_from_item(), sample_lineage.params, columns)
    return SqlRelation(select_sql=select_sql, params=params, definition=definition)
