"""Every name lab_assets gives to something outside Python, once: tables, work-table suffixes,
run tags, the concurrency pool.

The names are part of the contract with the people and deployments around lab_assets
(scientists query the tables, ``dagster.yaml`` limits the run tag and the pool), so they are
defined here and imported everywhere else, never written out again.
"""

from __future__ import annotations

from lab_assets.catalog.naming import MYSQL_MAX_IDENTIFIER_LENGTH

# --- the lab system's tables (read only) --------------------------------------------------------
SAMPLES = "samples"
SAMPLE_MEASUREMENTS = "sample_measurements"
SOURCE_TABLES = (SAMPLES, SAMPLE_MEASUREMENTS)

# --- lab_assets' own tables ---------------------------------------------------------------------
MEASUREMENT_TYPES = "measurement_types"  # the measurement-type catalog
SAMPLE_LINEAGE = "sample_lineage"  # root enrichment; also the refresh's record of samples
SAMPLE_MEASUREMENT_DIGESTS = "sample_measurement_digests"  # the refresh's record of measurements
EXPERIMENT_MEASUREMENTS = "experiment_measurements"  # the flat table scientists query
PENDING_SAMPLES = "lab_pending_samples"  # sample ids the flat table has yet to rebuild
COLUMN_NAMES_TABLE = "lab_measurement_columns"  # the column each type was first given, kept for good
BUILD_LOCK_TABLE = "lab_build_lock"  # which build holds the output database's build lock, since when

# Every table lab_assets creates is one of these, or starts with one of them and "_" (bucket
# tables, ``<table>__<suffix>`` helper tables): a lab table of such a name in the output database
# would be overwritten, so no source may be named so there.
CHANGE_FEED_POSITION = "lab_change_feed_position"  # the binlog position the tables are exact up to
CHANGE_FEED_IDS = "lab_change_feed_ids"  # a refresh's changed sample ids, as the binlog named them
CATALOG_FACTS_TABLE = "lab_catalog_facts"  # what the catalog's last scan counted besides the catalog
ORPHANS_TABLE = "lab_orphan_samples"  # sample ids with measurements but no sample (whole, or by the binlog's ids)
SAMPLE_TYPE_COUNTS = "lab_sample_type_counts"  # the catalog's state: per sample and spelling, its rows
TYPE_SPELLINGS = "lab_type_spellings"  # per spelling of a type, its rows (sums of the state)
STATE_ROW_COUNTS = "lab_state_row_counts"  # each state table's row count, kept with its bucket table
TYPE_GROUPS = "lab_type_groups"  # per type as the source collation groups them: samples, rows, repeats
COLUMN_SUMMARY = "lab_column_summary"  # each flat measurement column's non-NULL count, minimum and maximum
OWN_TABLES = (
    MEASUREMENT_TYPES,
    SAMPLE_LINEAGE,
    SAMPLE_MEASUREMENT_DIGESTS,
    EXPERIMENT_MEASUREMENTS,
    PENDING_SAMPLES,
    COLUMN_NAMES_TABLE,
    BUILD_LOCK_TABLE,
    CHANGE_FEED_POSITION,
    CHANGE_FEED_IDS,
    CATALOG_FACTS_TABLE,
    ORPHANS_TABLE,
    COLUMN_SUMMARY,
    SAMPLE_TYPE_COUNTS,
    TYPE_SPELLINGS,
    TYPE_GROUPS,
    STATE_ROW_COUNTS,
)

# The tables derived from the two sources, in the order their outputs are written.
SOURCE_DERIVED_TABLES = (MEASUREMENT_TYPES, SAMPLE_LINEAGE, SAMPLE_MEASUREMENT_DIGESTS)

# --- helper tables next to a table (``<table>__<suffix>``) ---------------------------------------
# full refreshes: the table built aside, and the old one between the swap and its drop.
NEW_SUFFIX = "new"
OLD_SUFFIX = "old"
# Keyed-row replacements: the rebuilt rows before they are upserted.
ROWS_SUFFIX = "rows"
# Incremental refresh work tables, by role: the ids of buckets whose sums differ (candidates),
# the changed ids among them (changes), samples whose place in a tree changed (moved), the
# candidates' live digests (live).
CANDIDATES_SUFFIX = "candidates"
CHANGES_SUFFIX = "changes"
MOVED_SUFFIX = "moved"
LIVE_SUFFIX = "live"
# After the flat table is written: the rows that differ from what is recorded (suspects), those
# checked against one snapshot of the sources (verified), and whose recorded digest it corrects (stale).
SUSPECTS_SUFFIX = "suspects"
VERIFIED_SUFFIX = "verified"
STALE_SUFFIX = "stale"
DELETED_SUFFIX = "deleted"
WRITTEN_SUFFIX = "written"
# Work tables of deltas: an incremental refresh's column summary (the replaced and the new rows'
# aggregates per column); the catalog's state rows of a change-feed refresh's ids, before (-1) and after (+1).
DELTA_SUFFIX = "delta"


def helper_table(table: str, suffix: str) -> str:
    """``<table>__<suffix>``, within MySQL's identifier limit (the table name is cut, never the suffix)."""
    tail = f"__{suffix}"
    return table[: MYSQL_MAX_IDENTIFIER_LENGTH - len(tail)] + tail


# --- run tags and the concurrency pool (dagster.yaml names both) --------------------------------
# Asks a run to rebuild every table whole: ``--tags '{"lab_assets/refresh": "full"}'``.
FULL_REFRESH_TAG = "lab_assets/refresh"
FULL_REFRESH_VALUE = "full"
# Put by the source-change sensor on its run requests; dagster.yaml's tag_concurrency_limits let
# the run queue start one such run at a time.
SENSOR_TRIGGER_TAG = "lab_assets/trigger"
# A run tagged lab_assets/change_feed=scan finds its changes by scanning even where the binlog
# could be read: the sensor's periodic check found a difference the binlog did not name.
CHANGE_FEED_TAG = "lab_assets/change_feed"
CHANGE_FEED_SCAN = "scan"
SENSOR_NAME = "lab_source_change_sensor"
SENSOR_RUN_TAGS = {SENSOR_TRIGGER_TAG: SENSOR_NAME}
# Every step that writes a table is in this pool; dagster.yaml limits it to one step at a time,
# so two runs never build into the same staging or work tables.
TABLE_WRITERS_POOL = "lab_flat_table"

# Asset checks: specs in lab_assets/checks/specs.py, evaluated in checks/source_checks.py and
# checks/flat_table_checks.py.
NO_PARENT_CYCLES = "no_parent_cycles"
NO_MISSING_PARENTS = "no_missing_parents"
MEASUREMENTS_HAVE_SAMPLES = "measurements_have_samples"
MEASUREMENT_TYPES_NOT_NULL = "measurement_types_not_null"
NO_DUPLICATE_MEASUREMENTS = "no_duplicate_measurements"
ONE_SPELLING_PER_COLUMN = "one_spelling_per_column"
CATALOG_COLUMN_NAMES_UNIQUE = "catalog_column_names_unique"
CATALOG_WITHIN_COLUMN_LIMIT = "catalog_within_column_limit"
ONE_ROW_PER_SAMPLE = "one_row_per_sample"
FLAT_TABLE_RECONCILES = "flat_table_reconciles"
