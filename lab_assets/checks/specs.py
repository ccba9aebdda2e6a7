"""Asset checks, declared as check specs of the assets whose steps evaluate them: one integrity
property each, offenders named in the result's metadata (``offenders``, ``offender_count``).

Every run that builds a table reports its checks from the step that built it, from what that step
already holds (lab_assets.checks.source_checks and .flat_table_checks): the lineage checks from the
lineage it wrote, the measurement checks from the catalog's scan, the flat table's checks from the
verification of the rows it wrote. A run that selects only the checks (the ``lab_integrity_audit``
job, or checks picked alone in the UI) evaluates them over the whole live sources and tables
instead. Every result says what it covered (``covered``, ``covered_rows``).

Checks of the lab's source tables hang on the first asset built from them (``sample_lineage``
for ``samples``, ``measurement_types`` for ``sample_measurements``): Dagster does not execute
checks of observable source assets.

The blocking checks (the catalog's column names and column count) fail the catalog's step in a
build, so ``experiment_measurements`` is not rebuilt and the last good table stays
(lab_assets.checks.evaluation.raise_if_blocking_failed). Their specs do not set Dagster's
``blocking``: that would also fail the audit's step, and Dagster then skips the flat table's
checks in the same audit; the audit rebuilds nothing, so it reports every check instead.
"""

from dagster import AssetCheckSpec, AssetKey

import lab_assets.names as names
from lab_assets.flat_table.sql import MAX_MEASUREMENT_COLUMNS
from lab_assets.names import (
    EXPERIMENT_MEASUREMENTS,
    MEASUREMENT_TYPES,
    SAMPLE_LINEAGE,
    SAMPLE_MEASUREMENTS,
    SAMPLES,
)

_SAMPLES = AssetKey(SAMPLES)
_MEASUREMENTS = AssetKey(SAMPLE_MEASUREMENTS)

# --- lineage: checks of `samples`, evaluated with sample_lineage ---------------------------------

NO_PARENT_CYCLES = AssetCheckSpec(
    names.NO_PARENT_CYCLES,
    asset=SAMPLE_LINEAGE,
    additional_deps=[_SAMPLES],
    description="No parent cycles: every sample either reaches a root or hangs under a missing parent."
    " Names the samples on or under a cycle (they get top_parent_id NULL). Non-blocking: all other"
    " rows are still published.",
)
NO_MISSING_PARENTS = AssetCheckSpec(
    names.NO_MISSING_PARENTS,
    asset=SAMPLE_LINEAGE,
    additional_deps=[_SAMPLES],
    description="No missing parents: every parent_id names an existing sample. Names the samples under"
    " a parent that does not exist (they get top_parent_id NULL) and the missing parent ids."
    " Non-blocking.",
)

# --- measurements: checks of `sample_measurements`, evaluated with measurement_types ------------

MEASUREMENTS_HAVE_SAMPLES = AssetCheckSpec(
    names.MEASUREMENTS_HAVE_SAMPLES,
    asset=MEASUREMENT_TYPES,
    additional_deps=[_MEASUREMENTS, _SAMPLES],
    description="Every measurement belongs to a sample: sample_id is not NULL and names an existing"
    " sample. Such rows cannot be placed in the flat table and are left out; names them"
    " (sample_id, type, value).",
)
MEASUREMENT_TYPES_NOT_NULL = AssetCheckSpec(
    names.MEASUREMENT_TYPES_NOT_NULL,
    asset=MEASUREMENT_TYPES,
    additional_deps=[_MEASUREMENTS],
    description="Every measurement has a type (measurement_type is not NULL). Rows without one are left"
    " out of the flat table; names them (sample_id, value).",
)
NO_DUPLICATE_MEASUREMENTS = AssetCheckSpec(
    names.NO_DUPLICATE_MEASUREMENTS,
    asset=MEASUREMENT_TYPES,
    additional_deps=[_MEASUREMENTS],
    description="No (sample, type) measured twice, types compared with the source column's collation"
    " as the catalog does. The flat table keeps the larger value (MAX), so results stay"
    " deterministic; names the pairs.",
)
ONE_SPELLING_PER_COLUMN = AssetCheckSpec(
    names.ONE_SPELLING_PER_COLUMN,
    asset=MEASUREMENT_TYPES,
    additional_deps=[_MEASUREMENTS],
    description="Each measurement column holds one spelling of its type. Types are identified as the"
    " source column's collation compares them (README, Column names), so spellings it holds equal"
    " (VOL and vol under a case-insensitive collation; any two emoji under utf8mb4_general_ci) share"
    " one column; this names every spelling of each such column, so no value is attributed to"
    " another spelling unseen. Non-blocking.",
)
CATALOG_COLUMN_NAMES_UNIQUE = AssetCheckSpec(
    names.CATALOG_COLUMN_NAMES_UNIQUE,
    asset=MEASUREMENT_TYPES,
    description="The catalog's column names are unique as MySQL compares column names (case-insensitively),"
    " also against experiment_id, top_parent_id and sample_id. Blocking: experiment_measurements is"
    " not rebuilt, the last good table stays.",
)
CATALOG_WITHIN_COLUMN_LIMIT = AssetCheckSpec(
    names.CATALOG_WITHIN_COLUMN_LIMIT,
    asset=MEASUREMENT_TYPES,
    description="The catalog fits in one table: no more measurement columns than InnoDB's row size"
    " allows for the type of sample_measurements.value (e.g. 996 of DECIMAL(16,6), 268 of DECIMAL(65,30),"
    f" 1014 of INT; {MAX_MEASUREMENT_COLUMNS} for the seed schema) and a table definition within MariaDB's limit."
    " Blocking: experiment_measurements is not rebuilt, the last good table stays.",
)

# --- the flat table ------------------------------------------------------------------------------

ONE_ROW_PER_SAMPLE = AssetCheckSpec(
    names.ONE_ROW_PER_SAMPLE,
    asset=EXPERIMENT_MEASUREMENTS,
    additional_deps=[_SAMPLES],
    description="One row per sample: the same ids as samples, each once (sample_id is the primary key)."
    " Names ids without a row and rows without a sample. A build covers the rows it wrote (all of"
    " them in a full refresh); the audit covers the whole table.",
)
FLAT_TABLE_RECONCILES = AssetCheckSpec(
    names.FLAT_TABLE_RECONCILES,
    asset=EXPERIMENT_MEASUREMENTS,
    additional_deps=[_SAMPLES, _MEASUREMENTS, AssetKey(MEASUREMENT_TYPES)],
    description="Reconciliation, computed differently from the build: every measurement cell equals"
    " MAX(value) of its (sample, type) in the source (NULL where none), compared exactly in the type of"
    " sample_measurements.value (text byte-wise), the table has exactly the catalog's columns, each of"
    " that type, experiment_id is the sample's, and top_parent_id is the sample's root, proven"
    " by induction along parent links (NULL exactly where no root is reachable). A build covers the"
    " rows it wrote and the lineage they depend on (the whole table in a full refresh: cells"
    " through the digests the build recorded, differing rows against the live sources); the audit"
    " recomputes the whole table from the live sources. Names (sample_id, column) pairs.",
)

LINEAGE_CHECKS = (NO_PARENT_CYCLES, NO_MISSING_PARENTS)
CATALOG_CHECKS = (
    MEASUREMENTS_HAVE_SAMPLES,
    MEASUREMENT_TYPES_NOT_NULL,
    NO_DUPLICATE_MEASUREMENTS,
    ONE_SPELLING_PER_COLUMN,
    CATALOG_COLUMN_NAMES_UNIQUE,
    CATALOG_WITHIN_COLUMN_LIMIT,
)
FLAT_TABLE_CHECKS = (ONE_ROW_PER_SAMPLE, FLAT_TABLE_RECONCILES)
ALL_CHECKS = (*LINEAGE_CHECKS, *CATALOG_CHECKS, *FLAT_TABLE_CHECKS)
