"""``dagster-webserver`` (or ``dagster dev``) in a subprocess of its own on a free local port, driven
through the GraphQL API the UI uses. Shared by the end-to-end and the deployment tests; and the
browser the ``browser`` tests drive the UI in."""

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

WEBSERVER = str(Path(sys.executable).with_name("dagster-webserver"))
DAGSTER = str(Path(sys.executable).with_name("dagster"))
ROOT = Path(__file__).resolve().parents[1]
# The virtual environment the tests run in: `make dev` is run with it as VENV (.venv in a checkout).
VENV = Path(sys.executable).parent.parent
STARTUP_SECONDS = 40
CHROMIUM = Path("/usr/bin/chromium")  # Debian's, driven through Playwright (never Playwright's own download)
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

RUNS = """query Runs($filter: RunsFilter) { runsOrError(filter: $filter) { __typename
  ... on Runs { results { runId status startTime endTime tags { key value } } } ... on PythonError { message } } }"""

STALENESS = """{ assetNodes { assetKey { path } isMaterializable staleStatus
  staleCauses { key { path } reason category dependency { path } } } }"""

JOBS = """query Jobs($selector: RepositorySelector!) { repositoryOrError(repositorySelector: $selector) {
  __typename ... on Repository { jobs { name description tags { key value } } } ... on PythonError { message } } }"""

INSTANCE = """{ instance { info runQueuingSupported } }"""

RUN = """query Run($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status startTime endTime } } }"""

MATERIALIZATIONS = """{ assetNodes { assetKey { path } isMaterializable
  assetMaterializations(limit: 1) { runId metadataEntries { label __typename
    ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text }
    ... on TableSchemaMetadataEntry { schema { columns { name type } } } } } } }"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Webserver:
    """``dagster-webserver`` (or ``dagster dev``, webserver plus daemon) on a free local port.
    ``make_dev``: ``make dev`` itself, run from the repository root as README says (the instance
    is still ``home``: DAGSTER_HOME in the environment overrides the Makefile's default).
    ``from_root``: run from the repository root with DAGSTER_HOME unset, as README's ``dagster dev``
    (Dagster then reads the root's dagster.yaml and stores in a temporary directory there)."""

    def __init__(
        self,
        home: Path,
        lab_db_url: str,
        dev: bool = False,
        extra_env: dict[str, str] | None = None,
        make_dev: bool = False,
        from_root: bool = False,
    ):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "webserver.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DAGSTER_", "MAKE", "MFLAGS"))}
        env.update(LAB_DB_URL=lab_db_url, **(extra_env or {}))
        if not from_root:
            env["DAGSTER_HOME"] = str(home)
        if make_dev:
            # -o: the environment is installed already (the tests run in it); make must not reinstall.
            command = ["make", "--no-print-directory", "-o", f"{VENV}/.installed", "dev"]
            command += [f"VENV={VENV}", f"DAGSTER_PORT={self.port}"]
        else:
            program = [DAGSTER, "dev"] if dev else [WEBSERVER]
            command = [*program, "-m", "lab_assets.definitions", "-h", "127.0.0.1", "-p", str(self.port)]
        with self.log_path.open("w") as log:
            # A session of its own: the webserver, its code server, the daemon and the runs form a
            # process group that stop() ends as a whole.
            self.process = subprocess.Popen(
                command,
                cwd=ROOT if make_dev or from_root else home,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # dagster dev handles SIGTERM as SIGINT, so SIGINT must not be ignored (it is in a
                # shell's background jobs): stop() then ends it and its children in order.
                preexec_fn=_default_sigint,  # noqa: PLW1509 - one signal() call before exec, no lock taken
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

    def launch_job(self, selector: dict, job_name: str) -> str:
        """Launch job ``job_name`` as its page's "Launch run" does; returns the run id."""
        params = {"selector": {**selector, "pipelineName": job_name}, "executionMetadata": {"tags": []}}
        launched = self.graphql(LAUNCH, {"params": params})["launchPipelineExecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]["runId"]

    def staleness(self) -> dict[str, dict]:
        """Each asset's stale status as the UI shows it ("Unsynced" is STALE), with its causes."""
        return {"/".join(n["assetKey"]["path"]): n for n in self.graphql(STALENESS)["assetNodes"]}

    def wait_for_run(self, run_id: str, seconds: float = RUN_SECONDS) -> dict:
        """Poll until the run has ended (or ``seconds`` passed); returns status, startTime, endTime."""
        deadline = time.monotonic() + seconds
        while True:
            run = self.graphql(RUN, {"runId": run_id})["runOrError"]
            if run["status"] in {"SUCCESS", "FAILURE", "CANCELED"} or time.monotonic() > deadline:
                return run
            time.sleep(0.5)

    def runs_tagged(self, tags: dict[str, str]) -> list[dict]:
        """Every run carrying ``tags``: runId, status, startTime, endTime, tags."""
        runs_filter = {"tags": [{"key": k, "value": v} for k, v in tags.items()]}
        runs = self.graphql(RUNS, {"filter": runs_filter})["runsOrError"]
        assert runs["__typename"] == "Runs", runs
        return runs["results"]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def browser_missing() -> str | None:
    """What the ``browser`` tests need and this machine lacks, as what to install; None if nothing."""
    try:
        import playwright.sync_api  # noqa: F401 - importable is what the tests need
    except ImportError:
        return "Playwright is not installed: .venv/bin/pip install -e '.[test]'"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)"
    return None
