"""The asset graph, as a table of contents: lab sources -> measurement-type catalog, sample
lineage and measurement digests -> flat table. Each asset calls into lab_assets.refresh; each
asset's checks (lab_assets.checks.specs) are evaluated by its own step."""

import time
from collections.abc import Iterator

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetOut,
    DataVersion,
    ObserveResult,
    Output,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    multi_asset,
    observable_source_asset,
)
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._core.definitions.metadata.metadata_set import TableMetadataSet

from lab_assets.catalog.value_type import source_value_type
from lab_assets.change_feed.mode import scan_asked
from lab_assets.change_feed.observation import POSITION_KEY, Observed, observe_source, position_from_record
from lab_assets.checks.specs import CATALOG_CHECKS, FLAT_TABLE_CHECKS, LINEAGE_CHECKS
from lab_assets.defs.freshness import behind_sources
from lab_assets.derivations.step import derive_source_tables
from lab_assets.flat_table.step import flat_table_outputs
from lab_assets.io_manager import SqlRelation, TableWrite
from lab_assets.mysql.resource import MySQLResource
from lab_assets.names import (
    EXPERIMENT_MEASUREMENTS,
    MEASUREMENT_TYPES,
    SAMPLE_LINEAGE,
    SAMPLE_MEASUREMENT_DIGESTS,
    SAMPLE_MEASUREMENTS,
    SAMPLES,
    TABLE_WRITERS_POOL,
)
from lab_assets.sources.hashes import MEASUREMENTS_COLUMNS, SAMPLES_COLUMNS, fingerprint_select
from lab_assets.state.guard import check_sources

SOURCES_GROUP = "lab_sources"
# The deliverables first: the tables scientists query are in the main group; the refresh's own
# bookkeeping is apart, in a group whose assets say they are internal, so nobody mistakes a
# digest table for data.
FLAT_GROUP = "lab_flat_table"
INTERNAL_GROUP = "lab_internal"


def _table_out(description: str, group: str = FLAT_GROUP) -> AssetOut:
    """A table written inside MySQL by the IO manager (a TableWrite), optional in a subset run."""
    return AssetOut(
        dagster_type=TableWrite, group_name=group, kinds={"mysql"}, is_required=False, description=description
    )


# What each column of the lab's two tables means, by lab_assets' name for it (the lab may call
# it otherwise: LAB_SAMPLE_COLUMNS, LAB_MEASUREMENT_COLUMNS); a column lab_assets does not read
# says so.
SOURCE_COLUMN_DESCRIPTIONS = {
    SAMPLES: {
        "id": "The sample's id.",
        "parent_id": "The sample it was made from; NULL for a root sample.",
        "experiment_id": "The experiment the sample belongs to.",
    },
    SAMPLE_MEASUREMENTS: {
        "sample_id": "The sample measured (samples.id).",
        "measurement_type": "What was measured; each type becomes one column of experiment_measurements.",
        "value": "The measured value; experiment_measurements publishes it in this column's type.",
    },
}
MEASUREMENT_TYPES_COLUMNS = TableSchema(
    columns=[
        TableColumn("measurement_type", "text", "The measurement type as stored in sample_measurements."),
        TableColumn("column_name", "text", "Its column in experiment_measurements (kept for good once given)."),
        TableColumn("sample_count", "int", "How many sample ids have a measurement of this type."),
        TableColumn("measurement_count", "int", "How many rows of sample_measurements have this type."),
    ]
)


def _observe(
    context: AssetExecutionContext, mysql: MySQLResource, table: str, columns: tuple[str, ...]
) -> ObserveResult:
    """A source table's data version (from the binlog where the change feed may be used, else row
    count and content hash in one scan: lab_assets.change_feed.observation), its metadata and
    whether experiment_measurements was built from this version (lab_assets.defs.freshness)."""
    started = time.monotonic()
    check_sources(mysql)  # a renamed source column: one sentence, not a raw 1054

    def scan() -> tuple[int, str]:
        value_type = source_value_type(mysql) if table == SAMPLE_MEASUREMENTS else None
        row_count, hash_a, hash_b = mysql.fetch_one(fingerprint_select(mysql.tables, table, columns, value_type))
        return int(row_count), f"{row_count}-{hash_a}-{hash_b}"

    observed = observe_source(mysql, table, _previous(context, table), scan, scan_asked(context.run.tags))
    ours = {theirs: mine for mine, theirs in mysql.tables.source(table).columns}
    described = SOURCE_COLUMN_DESCRIPTIONS[table]
    column_schema = TableSchema(
        columns=[
            TableColumn(
                name=c.name,
                type=c.column_type,
                description=described.get(ours.get(c.name, ""), "Not read by lab_assets."),
                constraints=TableColumnConstraints(nullable=c.nullable),
            )
            for c in mysql.table_columns(table)
        ]
    )
    return ObserveResult(
        data_version=DataVersion(observed.version),
        metadata={
            **behind_sources(context.instance, AssetKey(table), observed.version),
            **TableMetadataSet(
                row_count=observed.row_count,
                table_name=f"{mysql.tables.database_of(table)}.{mysql.tables.source(table).name}",
                column_schema=column_schema,
            ),
            **observed.metadata,
            "observe_seconds": round(time.monotonic() - started, 3),
        },
    )


def _previous(context: AssetExecutionContext, table: str) -> Observed | None:
    """The latest observation of ``table`` this instance recorded, as the change feed reads it."""
    records = context.instance.fetch_observations(AssetKey(table), limit=1, ascending=False).records
    observation = records[0].asset_observation if records else None
    version = (observation.tags or {}).get(DATA_VERSION_TAG) if observation is not None else None
    if observation is None or version is None:
        return None
    row_count = TableMetadataSet.extract(observation.metadata).row_count
    if row_count is None:
        return None
    position = observation.metadata.get(POSITION_KEY)
    return Observed(version, int(row_count), position_from_record(getattr(position, "value", None)))


@observable_source_asset(
    name=SAMPLES,
    group_name=SOURCES_GROUP,
    description="The lab system's samples (id, parent_id, experiment_id; LAB_SAMPLES_TABLE and"
    " LAB_SAMPLE_COLUMNS name them as the lab does): trees of samples, each made from a parent sample."
    " Read-only for lab_assets; observed as row count and content hash of those columns.",
    tags={"dagster/kind/mysql": ""},
)
def samples(context: AssetExecutionContext, mysql: MySQLResource) -> ObserveResult:
    """Observes the lab's samples: row count, content hash (the data version) and columns."""
    return _observe(context, mysql, SAMPLES, SAMPLES_COLUMNS)


@observable_source_asset(
    name=SAMPLE_MEASUREMENTS,
    group_name=SOURCES_GROUP,
    description="The lab system's measurements (sample_id, measurement_type, value; LAB_MEASUREMENTS_TABLE"
    " and LAB_MEASUREMENT_COLUMNS name them as the lab does): one row per sample, measurement type and"
    " value; new types appear at any time. Read-only for lab_assets; observed as row count and content"
    " hash of those columns.",
    tags={"dagster/kind/mysql": ""},
)
def sample_measurements(context: AssetExecutionContext, mysql: MySQLResource) -> ObserveResult:
    """Observes the lab's measurements: row count, content hash (the data version) and columns."""
    return _observe(context, mysql, SAMPLE_MEASUREMENTS, MEASUREMENTS_COLUMNS)


@multi_asset(
    name="lab_source_derivations",
    outs={
        MEASUREMENT_TYPES: AssetOut(
            dagster_type=pd.DataFrame,
            group_name=FLAT_GROUP,
            kinds={"mysql", "pandas"},
            # Servers that require primary keys accept the table. Not the column name alone: two
            # types can hash to one name, and catalog_column_names_unique must then see both rows.
            metadata={
                "primary_key": ["column_name", "measurement_type"],
                "dagster/column_schema": MEASUREMENT_TYPES_COLUMNS,
            },
            is_required=False,
            description="Which column of experiment_measurements holds which measurement type: one row per"
            " type (spellings the source column's collation holds equal are one type) with how many samples"
            " and measurement rows have it.",
        ),
        SAMPLE_LINEAGE: _table_out(
            "Each sample's root sample (top_parent_id) and its depth below it, with the parent_id and"
            " experiment_id they were computed from, for trees of any depth. Samples on a parent cycle or"
            " under a missing parent get top_parent_id NULL. Refreshes recompute only changed samples and"
            " the subtrees under them."
        ),
        SAMPLE_MEASUREMENT_DIGESTS: _table_out(
            "Internal: lab_assets' own bookkeeping, not data to analyse. Per sample, what the last refresh"
            " saw of its measurements (row count and two hash sums), so the next refresh finds changed,"
            " added and deleted measurements without timestamps on the source table. Its other bookkeeping"
            " tables (lab_pending_samples, lab_measurement_columns, lab_build_lock) are not assets.",
            group=INTERNAL_GROUP,
        ),
    },
    deps=[samples, sample_measurements],
    check_specs=[*CATALOG_CHECKS, *LINEAGE_CHECKS],
    internal_asset_deps={
        MEASUREMENT_TYPES: {sample_measurements.key},
        SAMPLE_LINEAGE: {samples.key},
        SAMPLE_MEASUREMENT_DIGESTS: {samples.key, sample_measurements.key},
    },
    can_subset=True,
    pool=TABLE_WRITERS_POOL,
    description="The tables derived from the two sources, computed side by side: each reads the sources"
    " on its own connection (a refresh's change detection is one scan per source), so on a server with"
    " more than one core the catalog, the lineage and the digests take about as long as the slowest.",
)
def lab_source_derivations(context: AssetExecutionContext, mysql: MySQLResource) -> Iterator[Output | AssetCheckResult]:
    """The catalog, the lineage and the digests, each by an incremental or a full refresh, with their
    checks."""
    yield from derive_source_tables(context, mysql)


@multi_asset(
    name=EXPERIMENT_MEASUREMENTS,
    outs={
        EXPERIMENT_MEASUREMENTS: _table_out(
            "The flat table scientists query: one row per sample with experiment_id, its root"
            " sample (top_parent_id), sample_id and one `measurement_<type>` column per measurement type,"
            " in the type of sample_measurements.value (NULL where the sample has no such measurement)."
            " Readers never see a half-written table: a full refresh is swapped in whole, an incremental"
            " refresh replaces the changed rows in one transaction. Each materialization shows its first"
            " rows (preview) and each measurement column's count, minimum and maximum (column_summary)."
        )
    },
    deps=[samples, sample_measurements, SAMPLE_MEASUREMENT_DIGESTS],
    check_specs=FLAT_TABLE_CHECKS,
    can_subset=True,
    pool=TABLE_WRITERS_POOL,
)
def experiment_measurements(
    context: AssetExecutionContext,
    mysql: MySQLResource,
    measurement_types: pd.DataFrame,
    sample_lineage: SqlRelation,
) -> Iterator[Output | AssetCheckResult]:
    """The flat table: an incremental refresh replaces the pending samples' rows, a full refresh
    rebuilds the whole table; its checks are evaluated by the same step."""
    yield from flat_table_outputs(context, mysql, measurement_types, sample_lineage)


LAB_ASSETS = [samples, sample_measurements, lab_source_derivations, experiment_measurements]
