"""What several test modules do with a lab database: run the checks alone as the audit job does,
refresh and compare the whole flat table and refresh state with the independent recomputation,
tick the sensor as the daemon does."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence

from dagster import (
    AssetCheckKey,
    AssetSelection,
    DagsterInstance,
    RunRequest,
    SensorResult,
    SkipReason,
    build_sensor_context,
    materialize,
)

import lab_assets.checks.specs as checks
from lab_assets.defs.assets import LAB_ASSETS
from lab_assets.defs.sensors import lab_source_change_sensor
from lab_assets.digests.sql import (
    DIGEST_STATE,
    MEASUREMENT_BUCKETS,
    measurement_bucket_sums_select,
    measurement_digest_select,
)
from lab_assets.lineage.sql import LINEAGE_BUCKETS, LINEAGE_STATE, lineage_bucket_sums_select
from lab_assets.mysql.resource import MySQLResource
from lab_assets.names import SAMPLE_MEASUREMENT_DIGESTS as DIGEST_TABLE
from lab_assets.names import (
    STATE_ROW_COUNTS,
)
from lab_assets.sources.hashes import row_hash_expressions
from lab_assets.sources.locations import TableLocations
from lab_assets.sources.value_types import ValueType, parse_value_type
from lab_assets.sql.bulk import unchunked_select
from lab_assets_tests.databases import LabDatabase
from lab_assets_tests.lab_data import assert_flat_table_is_exact, roots_and_depths

DIGEST_BUCKETS_TABLE, LINEAGE_BUCKETS_TABLE = DIGEST_STATE.buckets_table, LINEAGE_STATE.buckets_table
BASE_SAMPLES = 3_000  # the refresh tests' lab: lab_data.generate(BASE_SAMPLES)

# --- checks ---------------------------------------------------------------------------------------

CHECKS = {spec.name: spec for spec in checks.ALL_CHECKS}


def audit(db, *names: str) -> dict:
    """The named checks (default: all) alone, as the lab_integrity_audit job runs them."""
    keys = [AssetCheckKey(CHECKS[n].asset_key, n) for n in names or CHECKS]
    result = materialize(
        LAB_ASSETS, selection=AssetSelection.checks(*keys), resources=db.resources(), raise_on_error=False
    )
    assert not result.get_asset_materialization_events(), "the audit must not rebuild anything"
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def run_check(db, name: str):
    return audit(db, name)[name]


def all_checks_passed_except(result, *failing: str) -> None:
    """Every check of the run passed but ``failing``."""
    by_name = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert len(by_name) == len(CHECKS)
    assert sorted(name for name, e in by_name.items() if not e.passed) == sorted(failing)


# --- refresh --------------------------------------------------------------------------------------


def refresh_and_compare_all(db, tags=None, value_sql: str = "{}") -> dict[str, dict]:
    """Refresh, check the flat table (values read as ``value_sql``: lab_data.read_sources) and the
    refresh state whole; each table's materialization metadata."""
    result = db.materialize_all(tags=tags)
    with db.connect() as connection:
        assert_flat_table_is_exact(connection, value_sql=value_sql)
    assert_refresh_state_is_exact(db)
    materializations = {
        e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()
    }
    for table in ("sample_lineage", DIGEST_TABLE, "experiment_measurements"):
        # Exact even where it is summed from a bucket table instead of counted.
        assert (
            materializations[table].metadata["dagster/row_count"].value
            == db.query(f"SELECT COUNT(*) FROM {table}")[0][0]
        )
    assert_column_summary_is_exact(db, materializations["experiment_measurements"].metadata)
    return {name: m.metadata for name, m in materializations.items()}


def _markdown_cells(text: str) -> list[list[str]]:
    """The cells of a Markdown table's rows (header first, the separator line left out)."""
    lines = [line for line in text.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]


def assert_column_summary_is_exact(db, metadata=None) -> None:
    """lab_column_summary (and the materialization's ``column_summary``, where given) equal, for
    every measurement column of experiment_measurements, to COUNT, MIN and MAX over the whole
    table computed here: text compared by its bytes, FLOAT read as DOUBLE (bit for bit), the
    rest in its own type."""
    columns = db.query(
        "SELECT column_name, data_type, character_set_name FROM information_schema.columns"
        " WHERE table_schema = DATABASE() AND table_name = 'experiment_measurements'"
        " AND column_name NOT IN ('experiment_id', 'top_parent_id', 'sample_id') ORDER BY ordinal_position"
    )
    as_double = any(data_type == "float" for _, data_type, _ in columns)
    low_high = "CAST(min_value AS DOUBLE), CAST(max_value AS DOUBLE)" if as_double else "min_value, max_value"
    stored = {
        name: (count, low, high)
        for name, count, low, high in db.query(
            f"SELECT column_name, non_null_count, {low_high} FROM lab_column_summary"
        )
    }
    assert sorted(stored) == sorted(name for name, _, _ in columns)
    shown = {}
    if metadata is not None and columns:
        [header, *lines] = _markdown_cells(metadata["column_summary"].value)
        assert header == ["column", "measurement type", "non-null values", "min", "max"]
        assert [line[0] for line in lines] == [name for name, _, _ in columns]
        shown = {line[0]: line[2:] for line in lines}
    for name, _, charset in columns:
        column = f"`{name}`"
        exact = f"CAST({column} AS BINARY)" if charset else f"CAST({column} AS DOUBLE)" if as_double else column
        [(count, low, high, plain_low, plain_high)] = db.query(
            f"SELECT COUNT({column}), MIN({exact}), MAX({exact}), MIN({column}), MAX({column})"
            " FROM experiment_measurements"
        )
        assert stored[name] == (count, low, high), name
        if shown:
            if charset:  # the metadata shows the bytes as text again; MIN(`{name}`) would follow the collation
                codec = {"latin1": "cp1252"}.get(charset, "utf-8")
                plain_low, plain_high = (None if v is None else v.decode(codec) for v in (low, high))
            # A cell is read back stripped, so the expected text is too ('a ' shows as 'a').
            expected = [str(count), *("" if v is None else str(v).strip() for v in (plain_low, plain_high))]
            assert shown[name] == expected, name


def refresh_and_compare(db, tags=None, value_sql: str = "{}"):
    return refresh_and_compare_all(db, tags, value_sql)["experiment_measurements"]["refresh"].value


def bucket_sums(rows, width) -> dict[int, tuple[int, int, int, int]]:
    """{bucket: (row count, sum of hash_a, sum of hash_b, state rows)} of the state rows
    (sample_id, count, hash_a, hash_b)."""
    sums: defaultdict[int, tuple[int, int, int, int]] = defaultdict(lambda: (0, 0, 0, 0))
    for sample_id, count, hash_a, hash_b in rows:
        bucket = (sample_id + 2**31) // width
        total = sums[bucket]
        sums[bucket] = (total[0] + count, total[1] + hash_a, total[2] + hash_b, total[3] + 1)
    return dict(sums)


def keyed(rows) -> dict[int, tuple[int, ...]]:
    """{first column: the other columns as ints} (the servers return sums as DECIMAL)."""
    return {int(row[0]): tuple(int(v) for v in row[1:]) for row in rows}


def value_type_of(db) -> ValueType:
    """sample_measurements.value's type, as the refresh hashes it."""
    ((column_type, character_set, collation),) = db.query(
        "SELECT column_type, character_set_name, collation_name FROM information_schema.columns"
        " WHERE table_schema = DATABASE() AND table_name = 'sample_measurements' AND column_name = 'value'"
    )
    return parse_value_type(column_type, character_set, collation)


def whole_table_digests(db) -> dict[int, tuple[int, ...]]:
    """The digests as the full refresh computes them, from scratch over the sources."""
    return keyed(
        db.query(unchunked_select(measurement_digest_select(TableLocations.single(db.name), value_type_of(db))))
    )


def assert_refresh_state_is_exact(db) -> None:
    """What the next refresh diffs against is exact, whole. Nothing here recomputes the row hash
    (a formula change that is harmless must not fail this); instead, it checks these properties.

    * the digests hold one row per sample id found in the measurements, with that id's row count,
      and equal the full refresh's computation from scratch (the incremental path agrees
      with the whole-table path);
    * each bucket table equals the sums over its state table, and the sums the next refresh
      computes from the sources (so an unchanged source gives no candidates);
    * the lineage records each sample's parent and experiment, and its root and depth as found by
      walking parent pointers in Python;
    * each state table's stored row count is its COUNT(*).
    """
    measurements = db.query("SELECT sample_id, measurement_type, value FROM sample_measurements")
    rows_per_sample = Counter(sample_id for sample_id, _, _ in measurements if sample_id is not None)
    digests = keyed(db.query(f"SELECT * FROM {DIGEST_TABLE}"))
    assert set(digests) == set(rows_per_sample)
    assert {sample_id: digest[0] for sample_id, digest in digests.items()} == dict(rows_per_sample)
    assert digests == whole_table_digests(db)
    digest_buckets = keyed(db.query(f"SELECT * FROM {DIGEST_BUCKETS_TABLE}"))
    assert digest_buckets == bucket_sums([(k, *v) for k, v in digests.items()], MEASUREMENT_BUCKETS.width)
    live_digest_buckets = keyed(
        db.query(measurement_bucket_sums_select(TableLocations.single(db.name), value_type_of(db)))
    )
    assert {b: sums[:3] for b, sums in digest_buckets.items()} == live_digest_buckets

    lineage = db.query("SELECT sample_id, parent_id, experiment_id, top_parent_id, depth FROM sample_lineage")
    samples = db.query("SELECT id, parent_id, experiment_id FROM samples")
    assert sorted(row[:3] for row in lineage) == sorted(samples)
    assert {row[0]: (row[3], row[4]) for row in lineage} == roots_and_depths(samples)
    lineage_buckets = keyed(db.query(f"SELECT * FROM {LINEAGE_BUCKETS_TABLE}"))
    # Each recorded row hashed alone, summed here: not through the SQL that sums or keeps buckets.
    recorded = ["sample_id", "parent_id", "experiment_id"]
    hash_a, hash_b = row_hash_expressions(recorded, recorded)
    row_hashes = db.query(f"SELECT sample_id, 1, {hash_a}, {hash_b} FROM sample_lineage")
    assert lineage_buckets == bucket_sums(row_hashes, LINEAGE_BUCKETS.width)
    live_lineage_buckets = keyed(db.query(lineage_bucket_sums_select(TableLocations.single(db.name))))
    assert {b: sums[:3] for b, sums in lineage_buckets.items()} == live_lineage_buckets
    assert dict(db.query(f"SELECT state_table, state_rows FROM {STATE_ROW_COUNTS}")) == {
        DIGEST_TABLE: len(digests),
        "sample_lineage": len(lineage),
    }


# --- sensor ---------------------------------------------------------------------------------------


def requested_runs(evaluation: object) -> Sequence[RunRequest]:
    """The run requests of a sensor evaluation the test knows is a SensorResult (the sensor answers
    a bare SkipReason only before it reads the tables)."""
    assert isinstance(evaluation, SensorResult), evaluation
    assert evaluation.run_requests is not None  # SensorResult stores [] when given none
    return evaluation.run_requests


class Ticker:
    """Ticks the sensor like the daemon does, keeping the cursor."""

    def __init__(self, db: LabDatabase, instance: DagsterInstance):
        self.mysql = MySQLResource(url=db.url)
        self.instance = instance
        self.cursor: str | None = None

    def tick(self) -> tuple[Sequence[RunRequest], str]:
        """The tick's run requests and its skip message ('' when it gave none)."""
        context = build_sensor_context(cursor=self.cursor, instance=self.instance, resources={"mysql": self.mysql})
        result = lab_source_change_sensor(context)
        if isinstance(result, SkipReason):
            return [], result.skip_message or ""
        # The sensor returns a SkipReason before it reads a cursor, else a SensorResult.
        assert isinstance(result, SensorResult), result
        if result.cursor is not None:
            self.cursor = result.cursor
        skip_message = result.skip_reason.skip_message if result.skip_reason else None
        return result.run_requests or [], skip_message or ""

    def settle(self):
        """Ticks until quiet (a change in the same second as a reading takes one more tick)."""
        time.sleep(1.05)
        for _ in range(3):
            requests, _ = self.tick()
            if not requests:
                return
        raise AssertionError("sensor kept requesting runs on unchanged data")
