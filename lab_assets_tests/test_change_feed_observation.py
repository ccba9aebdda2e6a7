"""The sources' observations through the binlog (lab_assets.change_feed.observation), on a private
mariadbd with a ROW binlog: each observation's version stays the same exactly while the table
does not change, its row count is the table's, what the flat table consumed matches what
"Observe all" reports afterwards, and nothing reads a source table whole unless the binlog
cannot tell."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.definitions.data_version import DATA_VERSION_TAG, get_input_data_version_tag
from dagster._core.definitions.observe import observe

from lab_assets.defs.assets import sample_measurements, samples
from lab_assets.names import EXPERIMENT_MEASUREMENTS, FULL_REFRESH_TAG, FULL_REFRESH_VALUE
from lab_assets_tests.binlog_lab import PrivateLab, binlog_server, built_lab, rows_read, without_binlog_grants
from lab_assets_tests.extra_server import ExtraServer

pytestmark = pytest.mark.integration
SOURCES = ("samples", "sample_measurements")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExtraServer]:
    with binlog_server(tmp_path_factory.mktemp("feed_observation")) as started:
        yield started


@pytest.fixture
def lab(server: ExtraServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateLab]:
    monkeypatch.setenv("LAB_CHANGE_FEED", "binlog")
    yield from built_lab(server, 2_000)


def observed(db: PrivateLab, instance: DagsterInstance) -> dict[str, dict]:
    """Observe both sources (the UI's "Observe all"); per source its version, row count and feed."""
    assert observe([samples, sample_measurements], resources=db.resources(), instance=instance).success
    return latest_observations(instance)


def latest_observations(instance: DagsterInstance) -> dict[str, dict]:
    found = {}
    for table in SOURCES:
        (record,) = instance.fetch_observations(AssetKey(table), limit=1, ascending=False).records
        observation = record.asset_observation
        assert observation is not None
        metadata = observation.metadata
        found[table] = {
            "version": observation.tags[DATA_VERSION_TAG],
            "rows": metadata["dagster/row_count"].value,
            "feed": metadata["change_feed"].value,
            "reason": metadata["change_feed_reason"].value,
        }
    return found


def consumed(instance: DagsterInstance) -> dict[str, str]:
    """The source versions the latest materialization of the flat table was built from."""
    (record,) = instance.fetch_materializations(AssetKey(EXPERIMENT_MEASUREMENTS), limit=1, ascending=False).records
    assert record.asset_materialization is not None
    tags = record.asset_materialization.tags or {}
    return {table: tags[get_input_data_version_tag(AssetKey(table))] for table in SOURCES}


def refresh(db: PrivateLab, instance: DagsterInstance, tags=None) -> None:
    """The sensor's job (lab_refresh: observations first, then the tables), in process."""
    from lab_assets.definitions import defs

    result = defs.resolve_job_def("lab_refresh").execute_in_process(
        resources=db.resources(), instance=instance, tags=tags
    )
    assert result.success


def counts(db: PrivateLab) -> dict[str, int]:
    return {table: db.query(f"SELECT COUNT(*) FROM {table}")[0][0] for table in SOURCES}


def test_observations_follow_the_binlog_and_agree_with_the_built_table(lab):
    instance = DagsterInstance.ephemeral()
    refresh(lab, instance)
    first = latest_observations(instance)
    assert {o["feed"] for o in first.values()} == {"scan"}, first  # no position observed yet: hashed once
    assert {t: o["rows"] for t, o in first.items()} == counts(lab)

    # Nothing changed: the binlog says so, without reading either table; "Observe all" agrees
    # with what the table was built from.
    before = rows_read(lab)
    quiet = observed(lab, instance)
    assert rows_read(lab) - before < 200, rows_read(lab) - before  # the sources hold ~5,000 rows
    assert {o["feed"] for o in quiet.values()} == {"binlog"}, quiet
    assert {t: o["version"] for t, o in quiet.items()} == consumed(instance)

    # One table changed: only its version moves, and stays put until it changes again.
    (measured,) = lab.query("SELECT MIN(sample_id) FROM sample_measurements WHERE value IS NOT NULL")[0]
    lab.execute(f"UPDATE sample_measurements SET value = value + 1 WHERE sample_id = {measured}")
    changed = observed(lab, instance)
    assert changed["samples"]["version"] == consumed(instance)["samples"]
    assert changed["sample_measurements"]["version"] != consumed(instance)["sample_measurements"]
    assert observed(lab, instance)["sample_measurements"]["version"] == changed["sample_measurements"]["version"]

    # Rows come and go on both tables (a transaction touching both): row counts follow them.
    lab.execute(
        "START TRANSACTION",
        "INSERT INTO samples (id, parent_id, experiment_id) VALUES (900001, NULL, 3), (900002, 900001, 3)",
        "INSERT INTO sample_measurements VALUES (900001, 'ph', 7), (900002, 'ph', 6.5), (900002, 'vol', 2)",
        f"DELETE FROM sample_measurements WHERE sample_id = {measured}",
        "COMMIT",
    )
    grown = observed(lab, instance)
    assert {t: o["rows"] for t, o in grown.items()} == counts(lab)
    assert grown["samples"]["version"] != changed["samples"]["version"]
    assert grown["sample_measurements"]["version"] != changed["sample_measurements"]["version"]

    # The refresh job observes, then builds from what it observed: in sync afterwards.
    refresh(lab, instance)
    assert {t: o["version"] for t, o in observed(lab, instance).items()} == consumed(instance)


def test_a_deleted_sample_or_a_full_refresh_makes_the_observation_hash(lab):
    """A deleted sample's children and measurements go by the foreign key's cascade, which the
    binlog does not show: the observation hashes (and counts) the tables instead."""
    instance = DagsterInstance.ephemeral()
    refresh(lab, instance)
    (leaf,) = lab.query(
        "SELECT MIN(s.id) FROM samples s WHERE NOT EXISTS (SELECT 1 FROM samples c WHERE c.parent_id = s.id)"
        " AND EXISTS (SELECT 1 FROM sample_measurements m WHERE m.sample_id = s.id)"
    )[0]
    # A parent of leaves only: the cascade deletes its children (InnoDB cascades 15 levels at most).
    (parent,) = lab.query(
        "SELECT MIN(p.id) FROM samples p WHERE EXISTS (SELECT 1 FROM samples c WHERE c.parent_id = p.id)"
        " AND NOT EXISTS (SELECT 1 FROM samples c JOIN samples g ON g.parent_id = c.id WHERE c.parent_id = p.id)"
    )[0]
    lab.execute(f"DELETE FROM samples WHERE id IN ({leaf}, {parent})")
    gone = observed(lab, instance)
    assert {o["feed"] for o in gone.values()} == {"scan"}, gone
    assert all("deleted" in o["reason"] for o in gone.values()), gone
    assert {t: o["rows"] for t, o in gone.items()} == counts(lab)

    refresh(lab, instance, tags={FULL_REFRESH_TAG: FULL_REFRESH_VALUE})
    full = latest_observations(instance)
    assert {o["reason"] for o in full.values()} == {"a full refresh reads the sources whole"}, full
    assert {t: o["version"] for t, o in observed(lab, instance).items()} == consumed(instance)


def test_an_account_without_the_grants_hashes_under_auto_and_stops_under_binlog(lab, monkeypatch):
    """The observation's own fallback: an account that may not read the binlog hashes each table
    and says why under LAB_CHANGE_FEED=auto, and stops naming the grant under binlog."""
    with without_binlog_grants(lab, "observe_select_only") as narrow:
        instance = DagsterInstance.ephemeral()
        result = observe(
            [samples, sample_measurements], resources=narrow.resources(), instance=instance, raise_on_error=False
        )
        assert not result.success
        failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert len(failures) == 2 and all("REPLICATION SLAVE" in str(e.event_specific_data) for e in failures)
        monkeypatch.setenv("LAB_CHANGE_FEED", "auto")
        hashed = observed(narrow, instance)
        assert {o["feed"] for o in hashed.values()} == {"scan"}, hashed
        assert all("REPLICATION SLAVE" in o["reason"] for o in hashed.values()), hashed
        assert {t: o["rows"] for t, o in hashed.items()} == counts(lab)
