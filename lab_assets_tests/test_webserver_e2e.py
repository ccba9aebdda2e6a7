"""End to end, as a UI user: dagster-webserver in a subprocess (temporary DAGSTER_HOME, a throwaway
lab database), driven through its GraphQL API like the UI: list assets, checks and sensors, launch a
materialization of every asset, poll the run, read the metadata the UI shows, and compare the whole
flat table with the independent recomputation."""

from __future__ import annotations

import time

import pytest

from lab_assets.definitions import defs
from lab_assets.names import SENSOR_NAME
from lab_assets_tests.lab_data import assert_flat_table_is_exact, generate, insert
from lab_assets_tests.webserver import ASSETS, DAGSTER_YAML, JOBS, MATERIALIZATIONS, SENSORS, Webserver

OBSERVATIONS = """{ assetNodes { assetKey { path } assetObservations(limit: 1) { metadataEntries { label
  ... on TextMetadataEntry { text } ... on FloatMetadataEntry { floatValue } } } } }"""


@pytest.mark.timeout(150)
def test_webserver_lists_everything_and_materializes_the_flat_table(lab_db, tmp_path):
    with lab_db.connect() as connection:
        insert(connection, *generate(2_000))
    (tmp_path / "dagster.yaml").write_text(DAGSTER_YAML)
    server = Webserver(tmp_path, lab_db.url)
    try:
        _drive(server, lab_db)
    finally:
        server.stop()
    assert server.process.returncode is not None


def _drive(server: Webserver, lab_db) -> None:
    started = time.monotonic()
    [repository] = server.wait_until_loaded()
    print(f"webserver ready in {time.monotonic() - started:.1f} s")  # noqa: T201 - shown with the test's output
    selector = {"repositoryName": repository["name"], "repositoryLocationName": repository["location"]["name"]}

    # Assets, as the asset graph shows them: group, kinds, description.
    nodes = {"/".join(n["assetKey"]["path"]): n for n in server.graphql(ASSETS)["assetNodes"]}
    graph = defs.resolve_asset_graph()
    assert set(nodes) == {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {name for name, n in nodes.items() if n["isObservable"]} == {"samples", "sample_measurements"}
    for name, node in nodes.items():
        assert node["groupName"] in {"lab_sources", "lab_flat_table", "lab_internal"}, name
        assert "mysql" in node["kinds"], name
        assert node["description"], name

    # Checks (lab_assets/checks/specs.py) and sensors (lab_assets/defs/sensors.py): the UI lists
    # exactly what the definitions hold, each with a description.
    checks = {
        (name, check["name"]): check["description"]
        for name, node in nodes.items()
        if node["assetChecksOrError"]["__typename"] == "AssetChecks"
        for check in node["assetChecksOrError"]["checks"]
    }
    assert set(checks) == {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert all(checks.values()), checks
    sensors = server.graphql(SENSORS, {"selector": selector})["sensorsOrError"]
    assert sensors["__typename"] == "Sensors", sensors
    assert {s["name"] for s in sensors["results"]} == {s.name for s in (defs.sensors or [])}
    # The sensor runs by default (no daemon here, so it never ticks in this test).
    assert {s["name"]: s["sensorState"]["status"] for s in sensors["results"]} == {SENSOR_NAME: "RUNNING"}

    # Materialize every materializable asset, as the "Materialize all" button does.
    materializable = [name for name, n in nodes.items() if n["isMaterializable"]]
    assert sorted(materializable) == [
        "experiment_measurements",
        "measurement_types",
        "sample_lineage",
        "sample_measurement_digests",
    ]
    run_id = server.launch(selector, materializable)

    status = server.wait_for_run(run_id)["status"]
    assert status == "SUCCESS", f"run {run_id} ended {status}:\n{server.log_tail()}"
    print(f"run {run_id} succeeded {time.monotonic() - started:.1f} s after start")  # noqa: T201 - shown with the test's output

    # What the asset pages show after the run: row count, column schema, table name.
    after = {"/".join(n["assetKey"]["path"]): n for n in server.graphql(MATERIALIZATIONS)["assetNodes"]}
    for name, node in after.items():
        if not node["isMaterializable"]:
            continue
        [materialization] = node["assetMaterializations"]
        assert materialization["runId"] == run_id, name
        entries = {e["label"]: e for e in materialization["metadataEntries"]}
        (count,) = lab_db.query(f"SELECT COUNT(*) FROM `{name}`")[0]
        assert entries["dagster/row_count"]["intValue"] == count > 0, name
        assert entries["dagster/table_name"]["text"] == f"{lab_db.name}.{name}", name
        columns = [c["name"] for c in entries["dagster/column_schema"]["schema"]["columns"]]
        assert columns == [
            r[0]
            for r in lab_db.query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE()"
                " AND table_name = %s ORDER BY ordinal_position",
                (name,),
            )
        ], name
    flat_entries = {
        e["label"]: e for e in after["experiment_measurements"]["assetMaterializations"][0]["metadataEntries"]
    }
    assert "measurement_types_added" in flat_entries

    # The whole table, against the independent recomputation.
    with lab_db.connect() as connection:
        _, actual = assert_flat_table_is_exact(connection)
    assert len(actual) == 2_020


TABLES = ["measurement_types", "sample_lineage", "sample_measurement_digests", "experiment_measurements"]


@pytest.mark.timeout(180)
def test_the_ui_shows_tables_in_sync_until_the_sources_change_and_offers_a_full_refresh(lab_db, tmp_path):
    """After a refresh and "Observe all", no table is "Unsynced" (STALE) while nothing changed;
    after a change to sample_measurements and another observation, the tables built from it are,
    and lineage (built from samples only) is not. Job lab_full_refresh is listed with its tag and
    rebuilds every table whole; afterwards everything is in sync again."""
    with lab_db.connect() as connection:
        insert(connection, *generate(200))
    (tmp_path / "dagster.yaml").write_text(DAGSTER_YAML)
    server = Webserver(tmp_path, lab_db.url)
    try:
        [repository] = server.wait_until_loaded()
        selector = {"repositoryName": repository["name"], "repositoryLocationName": repository["location"]["name"]}

        def run(run_id: str) -> None:
            status = server.wait_for_run(run_id)["status"]
            assert status == "SUCCESS", f"run {run_id} ended {status}:\n{server.log_tail()}"

        def observe() -> None:  # the UI's "Observe all"
            run(server.launch(selector, ["samples", "sample_measurements"]))

        def behind(source: str) -> tuple[str, float | None]:
            nodes = {"/".join(n["assetKey"]["path"]): n for n in server.graphql(OBSERVATIONS)["assetNodes"]}
            entries = {e["label"]: e for e in nodes[source]["assetObservations"][0]["metadataEntries"]}
            seconds = entries.get("experiment_measurements_behind_seconds", {}).get("floatValue")
            return entries["experiment_measurements_behind"]["text"], seconds

        def stale() -> set[str]:
            statuses = server.staleness()
            assert all(statuses[t]["staleStatus"] in {"FRESH", "STALE"} for t in TABLES), statuses
            return {t for t in TABLES if statuses[t]["staleStatus"] == "STALE"}

        jobs = server.graphql(JOBS, {"selector": selector})["repositoryOrError"]["jobs"]
        full = next(j for j in jobs if j["name"] == "lab_full_refresh")
        assert {"key": "lab_assets/refresh", "value": "full"} in full["tags"] and full["description"]

        run(server.launch_job(selector, "lab_refresh"))
        assert stale() == set()
        observe()
        assert stale() == set(), server.staleness()
        # The freshness signal: each source's observation says whether the flat table is behind it.
        assert behind("sample_measurements") == ("in sync: built from this version", 0.0)

        lab_db.execute("UPDATE sample_measurements SET value = value + 1 WHERE sample_id = 2")
        observe()
        first_seen = time.time()
        assert stale() == {"measurement_types", "sample_measurement_digests", "experiment_measurements"}
        assert behind("samples") == ("in sync: built from this version", 0.0)
        time.sleep(2)
        observe()
        text, seconds = behind("sample_measurements")
        assert text.startswith("behind: sample_measurements changed after the table was built"), text
        # Since the first observation of the change.
        assert seconds is not None and 2 <= seconds <= time.time() - first_seen + 2, seconds
        causes = server.staleness()["experiment_measurements"]["staleCauses"]
        assert {(tuple(c["key"]["path"]), c["reason"]) for c in causes} == {
            (("sample_measurements",), "has a new data version")
        }

        run_id = server.launch_job(selector, "lab_full_refresh")
        run(run_id)
        assert stale() == set()
        after = {"/".join(n["assetKey"]["path"]): n for n in server.graphql(MATERIALIZATIONS)["assetNodes"]}
        for table in ("sample_lineage", "sample_measurement_digests", "experiment_measurements"):
            [materialization] = after[table]["assetMaterializations"]
            entries = {e["label"]: e for e in materialization["metadataEntries"]}
            assert materialization["runId"] == run_id, table
            assert entries["write"]["text"] == "table swapped in", table
        [flat] = after["experiment_measurements"]["assetMaterializations"]
        refresh = {e["label"]: e for e in flat["metadataEntries"]}["refresh"]["text"]
        assert refresh == "full (full refresh requested)"
    finally:
        server.stop()
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection)
