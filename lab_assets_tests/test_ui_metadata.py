"""What a user sees in the Dagster UI: every asset and check has a group, kinds and a description;
every table an asset writes or observes carries row count, column schema and table name in its
materialization (or observation); long builds log progress."""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from decimal import Decimal
from typing import cast

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance
from dagster._core.definitions.observe import observe

from lab_assets.definitions import defs
from lab_assets.defs.assets import sample_measurements, samples
from lab_assets.io_manager.progress import logged_step
from lab_assets_tests.lab_data import column_for_types, expected_flat_table, generate, insert, read_sources

TABLE_ASSETS = ["measurement_types", "sample_lineage", "sample_measurement_digests", "experiment_measurements"]
SOURCE_ASSETS = ["samples", "sample_measurements"]


def test_every_asset_has_group_kind_and_description():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == set(TABLE_ASSETS + SOURCE_ASSETS)
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert "mysql" in node.kinds, key
        assert node.description and len(node.description) > 40, key
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    # The deliverables first: the refresh's bookkeeping in a group of its own, described as internal.
    assert groups == {
        "samples": "lab_sources",
        "sample_measurements": "lab_sources",
        "experiment_measurements": "lab_flat_table",
        "measurement_types": "lab_flat_table",
        "sample_lineage": "lab_flat_table",
        "sample_measurement_digests": "lab_internal",
    }
    for key, group in groups.items():
        description = graph.get(AssetKey(key)).description or ""
        assert description.startswith("Internal:") == (group == "lab_internal"), key


# Words of an implementer, not of a scientist reading a check's result: such detail belongs in the
# check's metadata (how_it_is_checked).
JARGON = ("induction", "collation", "CRC32", "InnoDB", "MAX(", "IS NULL", "Blocking", "covers", "bucket")


def test_every_asset_check_has_a_description_a_scientist_can_read():
    graph = defs.resolve_asset_graph()
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        name = f"{check_key.asset_key.to_user_string()}:{check_key.name}"
        assert spec.description, f"{name} has no description"
        assert [w for w in JARGON if w in spec.description] == [], name
        assert len(spec.metadata["how_it_is_checked"]) > 20, name


def test_table_writing_assets_share_the_flat_table_pool():
    graph = defs.resolve_asset_graph()
    for name in TABLE_ASSETS:
        assert graph.get(AssetKey(name)).pools == {"lab_flat_table"}, name


def _latest_metadata(instance: DagsterInstance, key: str, event_type: DagsterEventType) -> dict:
    fetch = (
        instance.fetch_materializations
        if event_type == DagsterEventType.ASSET_MATERIALIZATION
        else instance.fetch_observations
    )
    records = fetch(AssetKey(key), limit=1, ascending=False).records
    assert records, f"no {event_type} for {key}"
    event = records[0].event_log_entry.dagster_event
    assert event is not None  # materialization and observation records are Dagster events
    data = (
        event.step_materialization_data.materialization
        if event_type == DagsterEventType.ASSET_MATERIALIZATION
        else event.asset_observation_data.asset_observation
    )
    return dict(data.metadata)


def _columns_of(lab_db, table: str) -> list[str]:
    return [
        r[0]
        for r in lab_db.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE()"
            " AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
    ]


def test_every_materialization_carries_row_count_column_schema_and_table_name(lab_db):
    """... and a description of every column."""
    instance = DagsterInstance.ephemeral()
    lab_db.materialize_all(instance=instance)
    for table in TABLE_ASSETS:
        metadata = _latest_metadata(instance, table, DagsterEventType.ASSET_MATERIALIZATION)
        (count,) = lab_db.query(f"SELECT COUNT(*) FROM `{table}`")[0]
        assert metadata["dagster/row_count"].value == count > 0, table
        assert metadata["dagster/table_name"].value == f"{lab_db.name}.{table}", table
        schema = metadata["dagster/column_schema"].value
        assert [c.name for c in schema.columns] == _columns_of(lab_db, table), table
        # Every column of every table says what it holds.
        undescribed = [c.name for c in schema.columns if not (c.description and len(c.description) > 10)]
        assert undescribed == [], table
    flat = _latest_metadata(instance, "experiment_measurements", DagsterEventType.ASSET_MATERIALIZATION)
    assert flat["measurement_columns"].value == 2
    assert flat["measurement_types_added"].value == "none"  # first build: nothing was added


def test_every_column_of_the_flat_table_is_described(lab_db):
    """The column schema of experiment_measurements, as the asset page shows it: every column has a
    description; a measurement column's names its type as stored and how many sample ids have it,
    counted here from the source rows, ids not in samples included (types equal under the column's
    case-insensitive collation are one type, spelled by the greatest spelling; a sample measured
    twice counts once)."""
    with lab_db.connect() as connection:
        insert(connection, *generate(300))
    lab_db.execute(
        "INSERT INTO sample_measurements VALUES (2, 'vol', 501), (4, 'VOL', 3), (5, 'pH-1', 6.5),"
        " (6, 'pH-1', NULL), (7, 'pH-1', 1), (7, 'pH-1', 2)",
        # a measurement of a sample id that is not a sample: the description says such ids count
        "SET foreign_key_checks = 0",
        "INSERT INTO sample_measurements VALUES (4242, 'pH-1', 7)",
    )
    instance = DagsterInstance.ephemeral()
    lab_db.materialize_all(instance=instance)
    metadata = _latest_metadata(instance, "experiment_measurements", DagsterEventType.ASSET_MATERIALIZATION)
    described = {c.name: c.description for c in metadata["dagster/column_schema"].value.columns}
    assert all(described.values()), [name for name, text in described.items() if not text]

    assert "experiment" in described["experiment_id"]
    assert "root sample" in described["top_parent_id"] and "cycle" in described["top_parent_id"]
    assert "primary key" in described["sample_id"]

    with lab_db.connect() as connection:
        _, measurements = read_sources(connection)
    column_for = column_for_types(m[1] for m in measurements)
    spellings: dict[str, set[str]] = defaultdict(set)
    samples_with: dict[str, set[int]] = defaultdict(set)
    for sample_id, measurement_type, _ in measurements:
        if measurement_type is not None:
            spellings[column_for(measurement_type)].add(measurement_type)
            if sample_id is not None:
                samples_with[column_for(measurement_type)].add(sample_id)
    assert set(described) == {"experiment_id", "top_parent_id", "sample_id", *spellings}
    assert 4 in samples_with[column_for("vol")]  # through its 'VOL' measurement
    assert len(samples_with[column_for("pH-1")]) == 4  # 5, 6, 7 and the orphan 4242
    for column, types in spellings.items():
        stored = max(types, key=lambda t: t.encode("utf-8"))
        text = described[column]
        assert f"Measurement type {stored!r} as stored" in text, (column, text)
        [count] = re.findall(r"(\d+) sample ids? ha(?:s|ve) it", text)
        assert int(count) == len(samples_with[column]), (column, text)


def test_a_new_measurement_type_is_reported_in_the_materialization(lab_db):
    instance = DagsterInstance.ephemeral()
    lab_db.materialize_all(instance=instance)
    lab_db.execute("INSERT INTO sample_measurements VALUES (4, 'pH-1', 6.5), (5, 'temp', 21)")
    lab_db.materialize_all(instance=instance)
    flat = _latest_metadata(instance, "experiment_measurements", DagsterEventType.ASSET_MATERIALIZATION)
    assert flat["measurement_types_added"].value == "pH-1, temp"
    added_columns = flat["measurement_columns_added"].value.split(", ")
    assert added_columns[1] == "measurement_temp" and added_columns[0].startswith("measurement_ph_1__")
    assert flat["measurement_columns"].value == 4
    rows = lab_db.query(
        f"SELECT `{added_columns[0]}`, measurement_temp FROM experiment_measurements"
        " WHERE sample_id IN (4, 5) ORDER BY sample_id"
    )
    assert rows == [(Decimal("6.500000"), None), (None, Decimal("21.000000"))]


def test_observations_of_the_sources_carry_row_count_column_schema_and_table_name(lab_db):
    instance = DagsterInstance.ephemeral()
    result = observe([samples, sample_measurements], resources=lab_db.resources(), instance=instance)
    assert result.success
    expected_columns = {
        "samples": ["id", "parent_id", "experiment_id", "ts"],
        "sample_measurements": ["sample_id", "measurement_type", "value"],
    }
    for table in SOURCE_ASSETS:
        metadata = _latest_metadata(instance, table, DagsterEventType.ASSET_OBSERVATION)
        assert metadata["dagster/row_count"].value == 20
        assert metadata["dagster/table_name"].value == f"{lab_db.name}.{table}"
        assert [c.name for c in metadata["dagster/column_schema"].value.columns] == expected_columns[table]
        columns = _latest_metadata(instance, table, DagsterEventType.ASSET_OBSERVATION)["dagster/column_schema"]
        assert all(c.description for c in columns.value.columns), table
    samples_schema = _latest_metadata(instance, "samples", DagsterEventType.ASSET_OBSERVATION)[
        "dagster/column_schema"
    ].value
    assert samples_schema.columns[0].constraints.nullable is False  # id is the primary key
    assert samples_schema.columns[1].constraints.nullable is True


def test_a_build_logs_its_progress(lab_db):
    instance = DagsterInstance.ephemeral()
    result = lab_db.materialize_all(instance=instance)
    messages = [e.message for e in instance.all_logs(result.run_id) if e.user_message]
    for table in ("sample_lineage", "experiment_measurements"):
        assert any(f"filling {lab_db.name}.{table}__new: started" in m for m in messages), table
        assert any(f"filling {lab_db.name}.{table}__new: done in" in m for m in messages), table
        assert any(f"swapping {lab_db.name}.{table}__new in as {lab_db.name}.{table}" in m for m in messages), table


class _Recorder:
    def __init__(self):
        self.messages: list[str] = []
        self.threads: set[str] = set()

    def info(self, msg: str) -> None:
        self.messages.append(msg)
        self.threads.add(threading.current_thread().name)


def test_logged_step_beats_while_a_step_runs_and_stops_after():
    log = _Recorder()
    with logged_step(log, "slow statement", interval=0.05):
        time.sleep(0.33)
    count = len(log.messages)
    time.sleep(0.15)
    assert len(log.messages) == count, "no heartbeat after the step ended"
    assert log.messages[0] == "slow statement: started"
    assert log.messages[-1].startswith("slow statement: done in ")
    beats = [m for m in log.messages if m.startswith("slow statement: still running after ")]
    assert 3 <= len(beats) <= 7
    assert "progress: slow statement" in log.threads


def test_logged_step_reports_a_failure_and_reraises():
    log = _Recorder()
    with pytest.raises(RuntimeError, match="boom"):
        with logged_step(log, "bad statement", interval=10):
            raise RuntimeError("boom")
    assert log.messages[0] == "bad statement: started"
    assert log.messages[-1].startswith("bad statement: failed after ")
    assert not any("done in" in m for m in log.messages)


def _markdown_rows(text: str) -> list[list[str]]:
    """The cells of a Markdown table's rows (header first, the separator line left out)."""
    lines = [line for line in text.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]


def _shown(value: object) -> str:
    return "" if value is None else str(value)


def test_the_flat_table_is_in_view_preview_summary_and_rewritten_samples(lab_db):
    """Each materialization of experiment_measurements shows its first 20 rows by sample_id, each
    measurement column's non-NULL count, minimum and maximum, and after an incremental refresh the
    ids of the samples it rewrote with their count: all compared with the recomputation from the
    source rows in plain Python (lab_data), not with the project's SQL."""
    with lab_db.connect() as connection:
        insert(connection, *generate(300))
    instance = DagsterInstance.ephemeral()
    lab_db.materialize_all(instance=instance)

    def expected() -> tuple[list[str], dict[int, dict[str, object]]]:
        with lab_db.connect() as connection:
            samples_rows, measurements = read_sources(connection)
        columns, rows = expected_flat_table(samples_rows, measurements)
        return ["experiment_id", "top_parent_id", "sample_id", *columns], rows

    def assert_in_view(metadata: dict) -> None:
        names, rows = expected()
        [header, *preview] = _markdown_rows(metadata["preview"].value)
        assert header == names
        first = [rows[sample_id] for sample_id in sorted(rows)[:20]]
        assert preview == [[_shown(row[name]) for name in names] for row in first]
        [header, *summary] = _markdown_rows(metadata["column_summary"].value)
        assert header == ["column", "measurement type", "non-null values", "min", "max"]
        for column, _, count, low, high in summary:
            # DECIMAL columns read back as Decimal.
            values = [cast(Decimal, row[column]) for row in rows.values() if row[column] is not None]
            assert [int(count), low, high] == [len(values), str(min(values)), str(max(values))], column
        assert [line[0] for line in summary] == names[3:]

    flat = _latest_metadata(instance, "experiment_measurements", DagsterEventType.ASSET_MATERIALIZATION)
    assert flat["refresh"].value.startswith("full")
    assert "rewritten_sample_ids" not in flat  # a full refresh rewrites them all
    assert_in_view(flat)

    changed = [2, 9, 17, 150, 233]
    lab_db.execute(
        "UPDATE sample_measurements SET value = value + 1 WHERE measurement_type = 'ph' AND sample_id IN"
        f" ({', '.join(map(str, changed))})",
        "INSERT INTO sample_measurements VALUES (4, 'ph', 0.5)",
    )
    lab_db.materialize_all(instance=instance)
    flat = _latest_metadata(instance, "experiment_measurements", DagsterEventType.ASSET_MATERIALIZATION)
    assert flat["refresh"].value.startswith("incremental"), flat["refresh"].value
    with_ph = {r[0] for r in lab_db.query("SELECT sample_id FROM sample_measurements WHERE measurement_type = 'ph'")}
    rewritten = sorted({4, *(s for s in changed if s in with_ph)})
    assert flat["rewritten_samples"].value == len(rewritten)
    assert flat["rewritten_sample_ids"].value == ", ".join(map(str, rewritten))
    assert_in_view(flat)
