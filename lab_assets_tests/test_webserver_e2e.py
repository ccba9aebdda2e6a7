"""End to end, as a UI user: dagster-webserver in a subprocess (temporary DAGSTER_HOME, a throwaway
lab database), driven through its GraphQL API like the UI: list assets, checks and sensors, launch a
materialization of every asset, poll the run, read the metadata the UI shows, and compare the whole
flat table with the independent recomputation."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from lab_assets.definitions import defs
from lab_assets_tests.lab_data import assert_flat_table_is_exact, generate, insert

WEBSERVER = str(Path(sys.executable).with_name("dagster-webserver"))
DAGSTER = str(Path(sys.executable).with_name("dagster"))
STARTUP_SECONDS = 40
RUN_SECONDS = 60

# No daemon here, so runs must launch at once: the default (non-queued) run coordinator. Since
# dagster 1.x's default is the QueuedRunCoordinator, it is set explicitly.
DAGSTER_YAML = """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
telemetry:
  enabled: false
"""

REPOSITORIES = """{ repositoriesOrError { __typename
  ... on RepositoryConnection { nodes { name location { name } } }
  ... on PythonError { message } } }"""

ASSETS = """{ assetNodes { assetKey { path } groupName kinds description isMaterializable isObservable
  assetChecksOrError { __typename ... on AssetChecks { checks { name description } } } } }"""

SENSORS = """query Sensors($selector: RepositorySelector!) { sensorsOrError(repositorySelector: $selector) {
  __typename ... on Sensors { results { name description sensorState { status } } }
  ... on PythonError { message } } }"""

LAUNCH = """mutation Launch($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message stack } ... on InvalidSubsetError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on PipelineNotFoundError { message } } }"""

RUN = """query Run($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status startTime endTime } } }"""

MATERIALIZATIONS = """{ assetNodes { assetKey { path } isMaterializable
  assetMaterializations(limit: 1) { runId metadataEntries { label __typename
    ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text }
    ... on TableSchemaMetadataEntry { schema { columns { name type } } } } } } }"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Webserver:
    """``dagster-webserver`` (or ``dagster dev``, webserver plus daemon) on a free local port."""

    def __init__(self, home: Path, lab_db_url: str, dev: bool = False, extra_env: dict[str, str] | None = None):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "webserver.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DAGSTER_"))}
        env.update(LAB_DB_URL=lab_db_url, DAGSTER_HOME=str(home), **(extra_env or {}))
        program = [DAGSTER, "dev"] if dev else [WEBSERVER]
        with self.log_path.open("w") as log:
            # A session of its own: the webserver, its code server, the daemon and the runs form a
            # process group that stop() ends as a whole.
            self.process = subprocess.Popen(
                [*program, "-m", "lab_assets.definitions", "-h", "127.0.0.1", "-p", str(self.port)],
                cwd=home,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_tail(self) -> str:
        return self.log_path.read_text()[-4000:]

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(
            f"{self.base}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def wait_until_loaded(self, seconds: float = STARTUP_SECONDS) -> list[dict]:
        """Poll until the code location has loaded; returns its repositories."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"webserver exited:\n{self.log_tail()}"
            try:
                data = self.graphql(REPOSITORIES)["repositoriesOrError"]
                if data["__typename"] == "RepositoryConnection" and data["nodes"]:
                    return data["nodes"]
            except requests.RequestException:
                pass
            time.sleep(0.5)
        pytest.fail(f"webserver not ready after {seconds} s:\n{self.log_tail()}")

    def launch(self, selector: dict, asset_names: list[str], tags: dict[str, str] | None = None) -> str:
        """Launch a materialization of ``asset_names`` as the UI does; returns the run id."""
        params = {
            "selector": {
                **selector,
                "pipelineName": "__ASSET_JOB",
                "assetSelection": [{"path": [n]} for n in asset_names],
            },
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }
        launched = self.graphql(LAUNCH, {"params": params})["launchPipelineExecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]["runId"]

    def wait_for_run(self, run_id: str, seconds: float = RUN_SECONDS) -> dict:
        """Poll until the run has ended (or ``seconds`` passed); returns status, startTime, endTime."""
        deadline = time.monotonic() + seconds
        while True:
            run = self.graphql(RUN, {"runId": run_id})["runOrError"]
            if run["status"] in {"SUCCESS", "FAILURE", "CANCELED"} or time.monotonic() > deadline:
                return run
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


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
    print(f"webserver ready in {time.monotonic() - started:.1f} s")
    selector = {"repositoryName": repository["name"], "repositoryLocationName": repository["location"]["name"]}

    # Assets, as the asset graph shows them: group, kinds, description.
    nodes = {"/".join(n["assetKey"]["path"]): n for n in server.graphql(ASSETS)["assetNodes"]}
    graph = defs.resolve_asset_graph()
    assert set(nodes) == {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {name for name, n in nodes.items() if n["isObservable"]} == {"samples", "sample_measurements"}
    for name, node in nodes.items():
        assert node["groupName"] in {"lab_sources", "lab_flat_table"}, name
        assert "mysql" in node["kinds"], name
        assert node["description"], name

    # Checks (lab_assets/defs/checks.py) and sensors (lab_assets/defs/sensors.py): the UI lists
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
    print(f"run {run_id} succeeded {time.monotonic() - started:.1f} s after start")

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
