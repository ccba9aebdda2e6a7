"""Asset checks, declared as check specs of the assets whose steps evaluate them: one integrity
property each, offenders named in the result's metadata (``offenders``, ``offender_count``).
Descriptions say in a scientist's words what holds and what a failure means; how it is computed
sits in the spec's metadata (``how_it_is_checked``).

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


def _how(text: str) -> dict[str, str]:
    """A check's technical detail (what exactly it computes, whether it blocks), kept in the check's
    metadata: its description is for the scientist reading the result, this for the implementer."""
    return {"how_it_is_checked": text}


# --- lineage: checks of `samples`, evaluated with sample_lineage ---------------------------------

NO_PARENT_CYCLES = AssetCheckSpec(
    names.NO_PARENT_CYCLES,
    asset=SAMPLE_LINEAGE,
    additional_deps=[_SAMPLES],
    description="No sample is its own ancestor: following parents up from any sample never comes back"
    " to it. Lists the samples caught in such a loop or below one; they have no root sample"
    " (top_parent_id empty), every other row is still published.",
    metadata=_how(
        "Walks the recorded parent links of sample_lineage; a sample that neither reaches a root nor hangs"
        " under a missing parent is on or under a cycle. Non-blocking."
    ),
)
NO_MISSING_PARENTS = AssetCheckSpec(
    names.NO_MISSING_PARENTS,
    asset=SAMPLE_LINEAGE,
    additional_deps=[_SAMPLES],
    description="Every parent a sample names exists. Lists the missing parent ids and the samples below"
    " them; those samples have no root sample (top_parent_id empty), every other row is still published.",
    metadata=_how("parent_id values absent from samples.id, and the subtrees under them. Non-blocking."),
)

# --- measurements: checks of `sample_measurements`, evaluated with measurement_types ------------

MEASUREMENTS_HAVE_SAMPLES = AssetCheckSpec(
    names.MEASUREMENTS_HAVE_SAMPLES,
    asset=MEASUREMENT_TYPES,
    additional_deps=[_MEASUREMENTS, _SAMPLES],
    description="Every measurement belongs to a known sample. Measurements of an unknown or empty sample"
    " id cannot appear in experiment_measurements; lists them (sample id, type, value).",
    metadata=_how("sample_id IS NULL or absent from samples.id. Non-blocking."),
)
MEASUREMENT_TYPES_NOT_NULL = AssetCheckSpec(
    names.MEASUREMENT_TYPES_NOT_NULL,
    asset=MEASUREMENT_TYPES,
    additional_deps=[_MEASUREMENTS],
    description="Every measurement says what was measured. Measurements without a type are left out of"
    " experiment_measurements; lists them (sample id, value).",
    metadata=_how("measurement_type IS NULL. Non-blocking."),
)
NO_DUPLICATE_MEASUREMENTS = AssetCheckSpec(
    names.NO_DUPLICATE_MEASUREMENTS,
    asset=MEASUREMENT_TYPES,
    additional_deps=[_MEASUREMENTS],
    description="No sample has the same type measured twice. Where it has, experiment_measurements shows"
    " the larger value; lists those samples and types.",
    metadata=_how(
        "Groups by (sample_id, measurement_type) with the source column's collation, as the catalog"
        " does; the flat table keeps MAX(value), so results stay deterministic. Non-blocking."
    ),
)
ONE_SPELLING_PER_COLUMN = AssetCheckSpec(
    names.ONE_SPELLING_PER_COLUMN,
    asset=MEASUREMENT_TYPES,
    additional_deps=[_MEASUREMENTS],
    description="Each measurement column holds one spelling of its type. Spellings the lab's database"
    " treats as equal (such as VOL and vol) share one column; lists every spelling of each such"
    " column, so no value is read as another spelling's by mistake.",
    metadata=_how(
        "Types are identified as the source column's collation compares them (README, Column names):"
        " VOL and vol under a case-insensitive collation, any two emoji under utf8mb4_general_ci."
        " Non-blocking."
    ),
)
CATALOG_COLUMN_NAMES_UNIQUE = AssetCheckSpec(
    names.CATALOG_COLUMN_NAMES_UNIQUE,
    asset=MEASUREMENT_TYPES,
    description="Every measurement type gets a column name of its own. If two would share one,"
    " experiment_measurements is not rebuilt and the last good table stays.",
    metadata=_how(
        "Column names compared as MySQL compares them (case-insensitively), also against experiment_id,"
        " top_parent_id and sample_id. Blocking."
    ),
)
CATALOG_WITHIN_COLUMN_LIMIT = AssetCheckSpec(
    names.CATALOG_WITHIN_COLUMN_LIMIT,
    asset=MEASUREMENT_TYPES,
    description="All measurement types fit in one table. If there are more than the database allows,"
    " experiment_measurements is not rebuilt and the last good table stays.",
    metadata=_how(
        "No more measurement columns than InnoDB's row size allows for the type of sample_measurements.value"
        f" (e.g. 996 of DECIMAL(16,6), 268 of DECIMAL(65,30), 1014 of INT; {MAX_MEASUREMENT_COLUMNS} for the"
        " seed schema) and a table definition within MariaDB's limit. Blocking."
    ),
)

# --- the flat table ------------------------------------------------------------------------------

ONE_ROW_PER_SAMPLE = AssetCheckSpec(
    names.ONE_ROW_PER_SAMPLE,
    asset=EXPERIMENT_MEASUREMENTS,
    additional_deps=[_SAMPLES],
    description="experiment_measurements has exactly one row for each sample, and none for a sample that"
    " does not exist. Lists the samples without a row and the rows without a sample.",
    metadata=_how(
        "sample_id is the primary key; compared with samples.id. A build covers the rows it wrote (all"
        " of them in a full refresh); the audit covers the whole table."
    ),
)
FLAT_TABLE_RECONCILES = AssetCheckSpec(
    names.FLAT_TABLE_RECONCILES,
    asset=EXPERIMENT_MEASUREMENTS,
    additional_deps=[_SAMPLES, _MEASUREMENTS, AssetKey(MEASUREMENT_TYPES)],
    description="Every value in experiment_measurements matches the lab's own records: each measurement"
    " cell, each sample's experiment and its root sample, recomputed another way than the build"
    " computes them. Lists every (sample, column) that differs.",
    metadata=_how(
        "Every measurement cell equals MAX(value) of its (sample, type) in the source (NULL where none),"
        " compared exactly in the type of sample_measurements.value (text byte-wise); the table has"
        " exactly the catalog's columns, each of that type; experiment_id is the sample's; top_parent_id"
        " is the sample's root, proven by induction along parent links (NULL exactly where no root is"
        " reachable). A build covers the rows it wrote and the lineage they depend on (the whole table"
        " in a full refresh: cells through the digests the build recorded, differing rows against the"
        " live sources); the audit recomputes the whole table from the live sources."
    ),
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
