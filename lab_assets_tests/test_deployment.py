"""The deployment files (dagster.yaml, workspace.yaml, docker-compose.yml, Dockerfile) without a
Docker engine: they parse, reference files that exist, set the environment the code reads, agree
with each other, and the very dagster.yaml runs a real instance on the local MariaDB."""

from __future__ import annotations

import itertools
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest
import sqlalchemy as sa
import yaml
from dagster import AssetKey, DagsterInstance
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus, RunsFilter
from dagster._utils.tags import TagConcurrencyLimitsCounter

from lab_assets.mysql.resource import LAB_OUTPUT_DATABASE_ENV, MySQLResource
from lab_assets.mysql.sessions import LAB_DB_URL_ENV
from lab_assets.names import (
    SENSOR_NAME,
)
from lab_assets.names import (
    SENSOR_RUN_TAGS as REFRESH_RUN_TAGS,
)
from lab_assets.names import (
    SENSOR_TRIGGER_TAG as REFRESH_TAG_KEY,
)
from lab_assets.names import (
    TABLE_WRITERS_POOL as FLAT_TABLE_POOL,
)
from lab_assets_tests.databases import SERVER_URL, SESSION_PREFIX, server_connection
from lab_assets_tests.lab_data import assert_flat_table_is_exact, generate, insert

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
DAGSTER_MYSQL_URL_ENV = "DAGSTER_MYSQL_URL"


def _load(name: str):
    with (ROOT / name).open() as handle:
        return yaml.safe_load(handle)


def _env_refs(node) -> set[str]:
    """Every ``{env: NAME}`` in a parsed dagster.yaml."""
    if isinstance(node, dict):
        found = {node["env"]} if set(node) == {"env"} else set()
        return found.union(*(_env_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node))
    return set()


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per Dockerfile instruction, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [tuple(line.split(None, 1)) for line in lines]  # type: ignore[misc] - every instruction has arguments


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, arguments in _dockerfile():
        if instruction == "ENV":
            for pair in arguments.split():
                name, value = pair.split("=", 1)
                env[name] = value
    return env


DAGSTER_SERVICES = ("webserver", "daemon")
DAGSTER_YAML = "dagster.yaml"  # every instance's configuration
MYSQL_STORAGE_YAML = "docker/storage-mysql.yaml"  # what the deployment appends to it


def _deployment_dagster_yaml(home: Path) -> None:
    """``home/dagster.yaml`` as the image holds it (Dockerfile): the repository's dagster.yaml
    with docker/storage-mysql.yaml appended."""
    (home / "dagster.yaml").write_text((ROOT / DAGSTER_YAML).read_text() + (ROOT / MYSQL_STORAGE_YAML).read_text())


COMPOSE_FILE = "docker-compose.yml"
ENV_EXAMPLE = ".env.example"
ACCOUNTS_SCRIPT = "docker/mysql-init/20-accounts.sh"
INIT_DIR = "/docker-entrypoint-initdb.d/"
# The variables .env must give a value: compose refuses to start without them.
PASSWORD_VARIABLES = ("MYSQL_ROOT_PASSWORD", "LAB_ASSETS_DB_PASSWORD", "DAGSTER_DB_PASSWORD")
BIND_VARIABLES = ("LAB_MYSQL_BIND_ADDRESS", "LAB_UI_BIND_ADDRESS")
# Compose's interpolation (compose specification, "Interpolation"): $$, $VAR, ${VAR},
# ${VAR:-default} / ${VAR-default}, ${VAR:?error} / ${VAR?error}.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
)


class ComposeInterpolationError(ValueError):
    pass


def _interpolate(node, env: dict[str, str]):
    """``node`` (parsed compose YAML) with every value interpolated from ``env`` as compose does
    (only values, after parsing, so comments are never interpolated); a required variable that is
    unset (or empty, with ``:?``) raises with compose's message."""
    if isinstance(node, dict):
        return {key: _interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(value, env) for value in node]
    if not isinstance(node, str):
        return node

    def value_of(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name, op = match["name"] or match["bare"], match["op"]
        value = env.get(name)
        missing = value is None or (value == "" and op is not None and op.startswith(":"))
        if op is not None and op.endswith("-") and missing:
            return match["arg"]
        if op is not None and op.endswith("?") and missing:
            raise ComposeInterpolationError(f"required variable {name} is missing a value: {match['arg']}")
        return value or ""

    return _VARIABLE.sub(value_of, node)


def _strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


def _compose_variables() -> dict[str, set[str]]:
    """Every variable the compose file's values use, with the operators it is used with ('' for
    plain ${VAR})."""
    found: dict[str, set[str]] = {}
    for text in _strings(_load(COMPOSE_FILE)):
        for match in _VARIABLE.finditer(text):
            if not match["escaped"]:
                found.setdefault(match["name"] or match["bare"], set()).add(match["op"] or "")
    return found


def _compose(env: dict[str, str]) -> dict:
    """docker-compose.yml as compose sees it with ``env`` (its .env plus the shell's variables)."""
    compose = _interpolate(_load(COMPOSE_FILE), env)
    assert isinstance(compose, dict)
    return compose


def _env_file(name: str) -> dict[str, str]:
    """KEY=VALUE lines of an env file (comments and blank lines skipped)."""
    pairs = {}
    for line in (ROOT / name).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def _passwords(**extra: str) -> dict[str, str]:
    """A value for each password (letters, digits and -._~, as the init script demands)."""
    return {name: f"pw-{name.lower()}-{secrets.token_urlsafe(12)}" for name in PASSWORD_VARIABLES} | extra


def test_the_yaml_files_parse_and_dagster_yaml_is_a_valid_instance_config(tmp_path, monkeypatch):
    from dagster._core.instance.config import dagster_instance_config

    assert _load("workspace.yaml") == {
        "load_from": [{"python_module": {"module_name": "lab_assets.definitions", "location_name": "lab_assets"}}]
    }
    assert set(_load("docker-compose.yml")["services"]) == {"mysql", "webserver", "daemon"}
    # The repository's dagster.yaml reads no variable and sets no storage: every command run from
    # the root works without the deployment's variables (SQLite in the instance's directory).
    assert _env_refs(_load(DAGSTER_YAML)) == set() and "storage" not in _load(DAGSTER_YAML)
    assert _env_refs(_load(MYSQL_STORAGE_YAML)) == {DAGSTER_MYSQL_URL_ENV}
    _deployment_dagster_yaml(tmp_path)
    monkeypatch.setenv(DAGSTER_MYSQL_URL_ENV, "mysql+mysqlconnector://u:p@h:3306/dagster")
    config, _ = dagster_instance_config(str(tmp_path))  # raises on anything the schema rejects
    assert config["storage"] == {"mysql": {"mysql_url": {"env": DAGSTER_MYSQL_URL_ENV}}}
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert limits == [{"key": REFRESH_TAG_KEY, "limit": 1}]
    assert REFRESH_TAG_KEY in REFRESH_RUN_TAGS
    # The sensor puts exactly these tags on its run requests (test_sensor checks real requests).
    assert REFRESH_RUN_TAGS == {REFRESH_TAG_KEY: SENSOR_NAME}
    assert config["concurrency"]["pools"]["default_limit"] == 1
    # The daemon looks at the run queue every second (bench/RESULTS.md, "Write-to-table latency").
    assert config["run_queue"] == {"dequeue_interval_seconds": 1}


def test_the_local_instance_dequeues_every_second_and_a_users_dagster_yaml_is_kept(tmp_path, monkeypatch):
    """`make run` / `make dev` link DAGSTER_HOME/dagster.yaml to the repository's when it is
    missing (or is a file earlier versions wrote): a valid instance config whose daemon looks at
    the run queue every second. A file of the user's own is left as it is."""
    from lab_assets import local_lab

    local_lab.write_dagster_yaml_if_missing(tmp_path / "new")
    instance = DagsterInstance.from_config(str(tmp_path / "new"))
    try:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_coordinator.dequeue_interval_seconds == 1  # type: ignore[attr-defined] - queued, as checked above
    finally:
        instance.dispose()
    earlier, own = tmp_path / "earlier", tmp_path / "own"
    for home, text in ((earlier, local_lab.EARLIER_LOCAL_DAGSTER_YAMLS[1]), (own, "telemetry:\n  enabled: true\n")):
        home.mkdir()
        (home / "dagster.yaml").write_text(text)
        local_lab.write_dagster_yaml_if_missing(home)
    assert (earlier / "dagster.yaml").resolve() == ROOT / DAGSTER_YAML
    assert (own / "dagster.yaml").read_text() == "telemetry:\n  enabled: true\n"
    # create-if-missing (the first step of make run and make dev) writes it with DAGSTER_HOME set.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "made"))
    with pytest.raises(SystemExit, match="must name a database"):  # before it connects anywhere
        local_lab.create_if_missing("mysql+pymysql://root@127.0.0.1:3306")
    assert (tmp_path / "made" / "dagster.yaml").resolve() == ROOT / DAGSTER_YAML


def test_the_compose_file_references_files_that_exist():
    compose = _load("docker-compose.yml")
    mounts = [v.split(":") for v in compose["services"]["mysql"]["volumes"] if v.startswith("./")]
    assert mounts, "the MySQL init files are mounted from the repository"
    for host_path, container_path, *_ in mounts:
        assert (ROOT / host_path).is_file(), host_path
        assert container_path.startswith(INIT_DIR) and container_path.endswith((".sql", ".sh"))
        # A .sh init file is sourced only when it is not executable; run as a program it would not
        # have the entrypoint's docker_process_sql.
        assert not container_path.endswith(".sh") or not os.access(ROOT / host_path, os.X_OK), host_path
    targets = {container: host for host, container, *_ in mounts}
    # The lab schema is the package's own copy (what local_lab and the tests load), and it runs
    # before the accounts script, whose table grants need its tables (init files run in name order).
    assert targets[f"{INIT_DIR}10-lab-source-schema.sql"] == "./lab_assets/source_schema.sql"
    assert targets[f"{INIT_DIR}20-accounts.sh"] == f"./{ACCOUNTS_SCRIPT}"
    assert sorted(targets) == list(targets)
    for service in DAGSTER_SERVICES:
        assert compose["services"][service]["build"] == "."
        assert compose["services"][service]["image"] == compose["services"]["webserver"]["image"]
    assert (ROOT / "Dockerfile").is_file()
    for instruction, arguments in _dockerfile():
        if instruction == "COPY":
            *sources, _ = arguments.split()
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_the_image_carries_this_dagster_yaml_and_workspace_yaml():
    env = _dockerfile_env()
    copies = {tuple(args.split()) for instruction, args in _dockerfile() if instruction == "COPY"}
    assert (DAGSTER_YAML, MYSQL_STORAGE_YAML, "./instance/") in copies
    runs = [args for instruction, args in _dockerfile() if instruction == "RUN"]
    appended = "cat instance/dagster.yaml instance/storage-mysql.yaml > ${DAGSTER_HOME}/dagster.yaml"
    assert any(appended in run for run in runs), runs
    assert env["DAGSTER_HOME"].startswith("/")
    workdir = [args for instruction, args in _dockerfile() if instruction == "WORKDIR"][-1]
    assert ("workspace.yaml", "./workspace.yaml") in copies and workdir.startswith("/")
    compose = _load("docker-compose.yml")
    for service in DAGSTER_SERVICES:
        command = " ".join(compose["services"][service]["command"])
        assert "--workspace workspace.yaml" in command, service
    assert compose["services"]["webserver"]["command"][0] == "dagster-webserver"
    # The daemon only runs: no command turns sensors on behind the back of whoever stopped one.
    assert compose["services"]["daemon"]["command"] == ["dagster-daemon", "run", "--workspace", "workspace.yaml"]


def test_the_instances_of_make_run_and_make_dev_use_the_repository_dagster_yaml(tmp_path):
    """The instance of each lab database links its dagster.yaml to the repository's, so the run
    queue and pool settings are the same everywhere: a valid configuration without any variable."""
    from lab_assets import local_lab

    local_lab.write_dagster_yaml_if_missing(tmp_path / "new")
    assert (tmp_path / "new" / "dagster.yaml").resolve() == ROOT / DAGSTER_YAML
    instance = DagsterInstance.from_config(str(tmp_path / "new"))
    try:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
    finally:
        instance.dispose()


def test_the_compose_environment_is_what_the_code_and_dagster_yaml_read():
    compose = _compose(_passwords())
    mysql = compose["services"]["mysql"]["environment"]
    for service in DAGSTER_SERVICES:
        env = compose["services"][service]["environment"]
        # Everything dagster.yaml reads, plus the lab database and the output database the
        # definitions read.
        assert set(env) == _env_refs(_load(MYSQL_STORAGE_YAML)) | {LAB_DB_URL_ENV, LAB_OUTPUT_DATABASE_ENV}
        assert compose["services"][service]["depends_on"]["mysql"]["condition"] == "service_healthy"

        # lab_assets reads the lab database as the account the init script makes, and writes into
        # the output database it made for it.
        lab = sa.make_url(env[LAB_DB_URL_ENV])
        assert lab.drivername == "mysql+pymysql"
        assert (lab.host, lab.port) == ("mysql", 3306)
        assert (lab.username, lab.password) == (mysql["LAB_ASSETS_DB_USER"], mysql["LAB_ASSETS_DB_PASSWORD"])
        assert MySQLResource(url=env[LAB_DB_URL_ENV]).database == mysql["MYSQL_DATABASE"] == "lab"
        assert env[LAB_OUTPUT_DATABASE_ENV] == mysql[LAB_OUTPUT_DATABASE_ENV] != lab.database

        instance = sa.make_url(env[DAGSTER_MYSQL_URL_ENV])
        assert instance.drivername == "mysql+mysqlconnector"  # dagster-mysql's driver
        assert (instance.host, instance.port) == ("mysql", 3306)
        assert (instance.username, instance.password) == (mysql["DAGSTER_DB_USER"], mysql["DAGSTER_DB_PASSWORD"])
        assert instance.database == mysql["DAGSTER_DB"] not in {lab.database, env[LAB_OUTPUT_DATABASE_ENV]}
    # The package reads exactly one variable of its own through os.environ with a literal name,
    # LAB_DB_URL (local_lab, the helper behind make run, also reads DAGSTER_HOME and VERBOSE; it is
    # not part of the definitions); LAB_OUTPUT_DATABASE is read by name in defs/resources.py.
    sources = "\n".join(p.read_text() for p in (ROOT / "lab_assets").rglob("*.py") if p.name != "local_lab.py")
    assert LAB_DB_URL_ENV == "LAB_DB_URL" and "EnvVar(LAB_DB_URL_ENV)" in sources
    assert "os.environ.get(LAB_OUTPUT_DATABASE_ENV)" in sources
    assert set(re.findall(r"os\.environ(?:\.get)?\(\s*\"(\w+)\"", sources)) <= {"LAB_DB_URL"}


def test_published_ports_listen_on_127_0_0_1_unless_env_says_otherwise():
    """The UI has no login and MySQL holds the lab's data: by default (and with .env.example's
    values) both are published on the loopback address only; LAB_UI_BIND_ADDRESS and
    LAB_MYSQL_BIND_ADDRESS expose each on purpose."""

    def published(env: dict[str, str]) -> dict[str, list[str]]:
        return {name: spec.get("ports", []) for name, spec in _compose(env)["services"].items()}

    local = {"mysql": ["127.0.0.1:3307:3306"], "webserver": ["127.0.0.1:3000:3000"], "daemon": []}
    assert published(_passwords()) == local
    # An empty value falls back too: ":3000:3000" would listen on every interface.
    assert published(_passwords(LAB_UI_BIND_ADDRESS="", LAB_MYSQL_BIND_ADDRESS="")) == local
    assert published(_env_file(ENV_EXAMPLE) | _passwords()) == local
    assert published(_passwords(LAB_UI_BIND_ADDRESS="0.0.0.0")) == local | {"webserver": ["0.0.0.0:3000:3000"]}
    assert published(_passwords(LAB_MYSQL_BIND_ADDRESS="192.0.2.7")) == local | {"mysql": ["192.0.2.7:3307:3306"]}
    for spec in _load(COMPOSE_FILE)["services"].values():
        assert "network_mode" not in spec and "expose" not in spec  # no other way onto the host's network


def test_no_password_is_written_in_the_compose_file():
    """Every password the services get (the root password, the ones inside the URLs, the ones the
    init script sets) is one of .env's; none is left to a default, and the healthcheck needs none."""
    env = _passwords()
    compose = _compose(env)
    mysql = compose["services"]["mysql"]
    # The image would create MYSQL_USER with ALL privileges on MYSQL_DATABASE.
    assert not {"MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_ALLOW_EMPTY_PASSWORD"} & set(mysql["environment"])
    assert mysql["environment"]["MYSQL_ROOT_PASSWORD"] == env["MYSQL_ROOT_PASSWORD"]
    seen = set()
    for name, spec in compose["services"].items():
        for key, value in spec.get("environment", {}).items():
            if key.endswith("PASSWORD"):
                assert value in env.values(), (name, key)
                seen.add(value)
            if "://" in str(value):
                url = sa.make_url(value)
                assert url.password in env.values(), (name, key)
                seen.add(url.password)
        assert "password" not in " ".join(spec.get("healthcheck", {}).get("test", [])).lower(), name
    assert seen == set(env.values())
    for name in PASSWORD_VARIABLES:
        assert {"-", ""}.isdisjoint(_compose_variables()[name]), f"{name} is never optional or defaulted"


def test_every_variable_of_the_compose_file_is_in_env_example_and_a_missing_password_stops_compose():
    variables = _compose_variables()
    example = _env_file(ENV_EXAMPLE)
    assert set(variables) <= set(example), sorted(set(variables) - set(example))
    assert set(variables) == set(PASSWORD_VARIABLES) | set(BIND_VARIABLES)
    for name in PASSWORD_VARIABLES:
        # Required wherever it is used (":?" stops compose on unset or empty), and empty in
        # .env.example: a copied file left as it is stops compose, naming the variable.
        assert variables[name] == {":?"}, name
        assert example[name] == "", f"{ENV_EXAMPLE} must leave {name} empty, not a usable default"
        with pytest.raises(ComposeInterpolationError, match=f"{name} is missing a value: set it in .env"):
            _compose({k: v for k, v in _passwords().items() if k != name})
    with pytest.raises(ComposeInterpolationError, match="is missing a value"):
        _compose(example)
    for name in BIND_VARIABLES:
        assert variables[name] == {":-"} and example[name] == "127.0.0.1", name
    # .env holds the real passwords: never committed.
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".env must be git-ignored"


WORKSPACE_LOCATION = "lab_assets"  # workspace.yaml's location_name


@pytest.mark.parametrize("target", [["--workspace", "workspace.yaml"], []], ids=["workspace.yaml", "pyproject.toml"])
def test_workspace_yaml_and_pyproject_load_the_definitions_as_one_code_location(tmp_path, target):
    # One location name for workspace.yaml (compose, make dev) and pyproject.toml (dagster dev with
    # no arguments): the sensor's on/off state and cursor are kept per location name.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DAGSTER_"))}
    env.update(LAB_DB_URL="mysql+pymysql://root@127.0.0.1:3306/unused", DAGSTER_HOME=str(tmp_path))
    result = subprocess.run(
        [DAGSTER, "definitions", "validate", *target],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert f"Validation successful for code location {WORKSPACE_LOCATION}." in output, output[-3000:]


def test_dg_names_the_code_location_as_workspace_yaml_does():
    from dagster_dg_core.context import DgContext

    assert _load("workspace.yaml")["load_from"][0]["python_module"]["location_name"] == WORKSPACE_LOCATION
    assert DgContext.for_project_environment(ROOT, {}).code_location_name == WORKSPACE_LOCATION


_dagster_databases = iter(range(1_000_000))


@pytest.fixture
def mysql_dagster_home(tmp_path) -> tuple[Path, str]:
    """(DAGSTER_HOME holding the repository's dagster.yaml, DAGSTER_MYSQL_URL of a new throwaway
    database on the test server; the session drops it with the other test databases)."""
    database = f"{SESSION_PREFIX}_dagster_{next(_dagster_databases)}"
    with server_connection() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{database}`")
    home = tmp_path / "dagster_home"
    home.mkdir()
    _deployment_dagster_yaml(home)
    url = SERVER_URL.set(drivername="mysql+mysqlconnector", database=database)
    return home, url.render_as_string(hide_password=False)


@pytest.fixture
def mysql_instance(mysql_dagster_home, monkeypatch):
    """A DagsterInstance from the repository's dagster.yaml, storing in a throwaway database."""
    home, url = mysql_dagster_home
    monkeypatch.setenv(DAGSTER_MYSQL_URL_ENV, url)
    instance = DagsterInstance.from_config(str(home))
    try:
        yield instance
    finally:
        instance.dispose()


def test_dagster_yaml_runs_an_instance_on_the_local_mariadb(mysql_instance, lab_db):
    instance = mysql_instance
    assert [
        type(s).__name__ for s in (instance.run_storage, instance.event_log_storage, instance.schedule_storage)
    ] == ["MySQLRunStorage", "MySQLEventLogStorage", "MySQLScheduleStorage"]
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert "mariadb" in instance.run_storage.get_server_version().lower()  # this test's point

    # A whole run through this instance: run, events, materializations and the pool's slot
    # claims all go through dagster-mysql into MariaDB.
    result = lab_db.materialize_all(instance=instance)
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.status == DagsterRunStatus.SUCCESS
    [record] = instance.get_run_records(RunsFilter(run_ids=[result.run_id]))
    assert record.dagster_run.status == DagsterRunStatus.SUCCESS
    assert record.dagster_run.run_op_concurrency.all_pools == {FLAT_TABLE_POOL}  # the pool was seen
    assert instance.get_runs_count(RunsFilter(statuses=[DagsterRunStatus.SUCCESS])) == 1
    event = instance.get_latest_materialization_event(AssetKey("experiment_measurements"))
    assert event is not None and event.run_id == result.run_id
    assert event.asset_materialization.metadata["dagster/row_count"].value == 20
    assert instance.event_log_storage.supports_global_concurrency_limits
    info = instance.event_log_storage.get_concurrency_info(FLAT_TABLE_POOL)
    assert info.limit == 1 and info.claimed_slots == [] and info.pending_steps == []

    # The table the run built is the table it must be.
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection)

    # A refresh run keeps its tag (the run queue's limit key) in MySQL run storage: created here,
    # read back, found by tag.
    created = instance.create_run_for_job(job_def=result.job_def, tags=REFRESH_RUN_TAGS)
    again = instance.get_run_by_id(created.run_id)
    assert again.status == DagsterRunStatus.NOT_STARTED and again.tags == REFRESH_RUN_TAGS
    assert [r.run_id for r in instance.get_runs(RunsFilter(tags=REFRESH_RUN_TAGS))] == [created.run_id]


def test_dagster_yaml_lets_one_refresh_at_a_time_through(mysql_instance):
    instance = mysql_instance
    # The run queue (what the daemon consults before launching a queued run): while one tagged
    # refresh is in progress a second waits; an untagged run does not.
    limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert instance.run_coordinator.dequeue_interval_seconds == 1
    refresh = DagsterRun(job_name="__ASSET_JOB", tags=REFRESH_RUN_TAGS)
    other = DagsterRun(job_name="__ASSET_JOB", tags={"team": "lab"})
    assert not TagConcurrencyLimitsCounter(limits, []).is_blocked(refresh)
    assert TagConcurrencyLimitsCounter(limits, [refresh]).is_blocked(
        DagsterRun(job_name="__ASSET_JOB", tags=REFRESH_RUN_TAGS)
    )
    assert not TagConcurrencyLimitsCounter(limits, [refresh]).is_blocked(other)

    # The pool, in MariaDB through dagster-mysql: one slot; a step of a second run is refused
    # until the first run frees it.
    storage = instance.event_log_storage
    storage.initialize_concurrency_limit_to_default(FLAT_TABLE_POOL)  # the executor does this on first use
    assert storage.get_concurrency_info(FLAT_TABLE_POOL).slot_count == 1
    assert storage.claim_concurrency_slot(FLAT_TABLE_POOL, "run-a", "experiment_measurements").is_claimed
    assert not storage.claim_concurrency_slot(FLAT_TABLE_POOL, "run-b", "experiment_measurements").is_claimed
    storage.free_concurrency_slots_for_run("run-a")
    assert storage.claim_concurrency_slot(FLAT_TABLE_POOL, "run-b", "experiment_measurements").is_claimed


@pytest.mark.timeout(240)
def test_dagster_dev_on_this_dagster_yaml_queues_and_runs_refreshes(mysql_dagster_home, lab_db):
    """`dagster dev` (webserver + daemon) on the repository's dagster.yaml with MariaDB storage:
    runs launched from the UI are queued, the daemon launches them, and they succeed. The two
    short runs here do not overlap, but that alone would not prove the limits; the test above
    does."""
    from lab_assets_tests.webserver import SENSORS, Webserver

    home, url = mysql_dagster_home
    with lab_db.connect() as connection:
        insert(connection, *generate(2_000))
    server = Webserver(home, lab_db.url, dev=True, extra_env={DAGSTER_MYSQL_URL_ENV: url})
    try:
        [repository] = server.wait_until_loaded(seconds=120)
        selector = {"repositoryName": repository["name"], "repositoryLocationName": repository["location"]["name"]}
        # The sensor runs by default, so this daemon ticks it too: on these never-built tables its
        # first tick may start a refresh of its own (same tag, same queue) unless ours are already
        # queued, which it waits for.
        [sensor] = server.graphql(SENSORS, {"selector": selector})["sensorsOrError"]["results"]
        assert (sensor["name"], sensor["sensorState"]["status"]) == (SENSOR_NAME, "RUNNING")
        tables = ["measurement_types", "sample_lineage", "sample_measurement_digests", "experiment_measurements"]
        run_ids = [server.launch(selector, tables, REFRESH_RUN_TAGS) for _ in range(2)]
        runs = [server.wait_for_run(run_id, seconds=90) for run_id in run_ids]
        refreshes = _refreshes_once_all_ended(server, seconds=90)
    finally:
        server.stop()
    assert [r["status"] for r in runs] == ["SUCCESS", "SUCCESS"], server.log_tail()
    assert {r["runId"] for r in refreshes} >= set(run_ids)
    assert all(r["status"] == "SUCCESS" for r in refreshes), refreshes
    ordered = sorted(refreshes, key=lambda r: r["startTime"])
    for first, second in itertools.pairwise(ordered):
        assert second["startTime"] >= first["endTime"], f"two refreshes overlapped: {refreshes}"
    print(f"{len(refreshes) - 2} refresh(es) started by the sensor")  # noqa: T201 - shown with the test's output
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection)


def _refreshes_once_all_ended(server, seconds: float) -> list[dict]:
    """Every run tagged as a refresh (the sensor's too), once none is queued or running."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        refreshes = server.runs_tagged(REFRESH_RUN_TAGS)
        if all(r["status"] in {"SUCCESS", "FAILURE", "CANCELED"} for r in refreshes) or time.monotonic() > deadline:
            return refreshes
        time.sleep(0.5)


def test_make_runs_summary_says_rows_written_apart_from_rows_in_the_table(lab_db):
    """`make run` prints the flat table's step as (refresh kind, rows written, rows in the table):
    a refresh of one changed sample writes 1 row of 20."""
    from lab_assets.local_lab import _what_was_written

    instance = DagsterInstance.ephemeral()
    built = lab_db.materialize_all(instance=instance)
    assert _what_was_written(instance, built.run_id, "experiment_measurements") == (
        " (full (table missing), 20 rows written, 20 in the table)"
    )
    with lab_db.connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sample_measurements SET value = value + 1 WHERE sample_id = 2 AND measurement_type = 'vol'"
        )
    refreshed = lab_db.materialize_all(instance=instance)
    assert _what_was_written(instance, refreshed.run_id, "experiment_measurements") == (
        " (incremental, 1 rows written, 20 in the table)"
    )
    assert _what_was_written(instance, refreshed.run_id, "sample_lineage") == ""


# The official MySQL image's entrypoint as far as init files go (docker-library/mysql,
# docker-entrypoint.sh: docker_process_init_files, docker_process_sql): set -eo pipefail; each
# file in name order; a .sql file piped into the mysql client as root with --comments and
# --database=$MYSQL_DATABASE, which stops at the first error; a .sh file sourced unless it is
# executable, so it can call docker_process_sql and mysql_error (which exits). Here the client
# reaches the test server over TCP, and every statement sent is also appended to $SQL_LOG.
_ENTRYPOINT = r"""
set -eo pipefail
mysql_note() { printf 'Note: %s\n' "$*"; }
mysql_warn() { printf 'Warn: %s\n' "$*" >&2; }
mysql_error() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
docker_process_sql() {
	if [ -n "$MYSQL_DATABASE" ]; then set -- --database="$MYSQL_DATABASE" "$@"; fi
	tee -a "$SQL_LOG" | "${CLIENT[@]}" --comments "$@"
}
for f; do
	case "$f" in
		*.sh) if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
		*.sql) docker_process_sql < "$f" ;;
		*) mysql_warn "ignoring $f" ;;
	esac
done
"""


def _init_files() -> list[Path]:
    """The repository files the compose file mounts as init files, in the order the entrypoint
    runs them (by name in the container)."""
    mounts = [v.split(":") for v in _load(COMPOSE_FILE)["services"]["mysql"]["volumes"] if v.startswith("./")]
    return [ROOT / host for host, container, *_ in sorted(mounts, key=lambda m: m[1]) if container.startswith(INIT_DIR)]


def _run_init_files(env: dict[str, str], client: list[str], sql_log: Path) -> subprocess.CompletedProcess:
    script = "CLIENT=(" + " ".join(shlex.quote(arg) for arg in client) + ")\n" + _ENTRYPOINT
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL"}}
    return subprocess.run(
        ["bash", "-c", script, "entrypoint", *map(str, _init_files())],
        env=base | env | {"SQL_LOG": str(sql_log)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _mysql_service_env(**names: str) -> dict[str, str]:
    """The mysql service's environment as compose gives it (passwords from a .env), with the
    database and account names replaced by ``names`` (each of them one compose sets)."""
    env = {k: str(v) for k, v in _compose(_passwords())["services"]["mysql"]["environment"].items()}
    assert set(names) <= set(env), set(names) - set(env)
    return env | names


def test_the_accounts_script_refuses_a_password_a_url_cannot_carry_before_any_sql(tmp_path):
    """The passwords go into LAB_DB_URL and DAGSTER_MYSQL_URL unencoded: one with a character
    that would need URL-encoding stops the init, naming the variable, never showing the password,
    before any SQL is sent."""
    for name, password in (("LAB_ASSETS_DB_PASSWORD", "Kq7Vx@Pz4Lm"), ("DAGSTER_DB_PASSWORD", "Tt8Nw/Hh2Jd'")):
        sql_log = tmp_path / f"{name}.sql"
        env = _mysql_service_env(**{name: password})
        result = _run_init_files(env, ["sh", "-c", "cat >/dev/null", "client"], sql_log)
        assert result.returncode != 0
        assert f"{name} (.env) must be ASCII letters, digits and - . _ ~ only" in result.stderr, result.stderr
        assert password[:5] not in result.stdout + result.stderr
        sent = sql_log.read_text() if sql_log.exists() else ""
        assert "CREATE USER" not in sent and "GRANT" not in sent, sent


_init_runs = iter(range(1_000_000))


def _privileges(cursor, user: str) -> set[tuple[str, str, str]]:
    """(database pattern or *, table or *, privilege) of every grant of ``'user'@'%'``, global
    USAGE (no privilege) left out."""
    grantee = f"'{user}'@'%'"
    cursor.execute(
        "SELECT '*', '*', privilege_type FROM information_schema.user_privileges WHERE grantee = %s"
        " UNION ALL SELECT table_schema, '*', privilege_type FROM information_schema.schema_privileges"
        " WHERE grantee = %s"
        " UNION ALL SELECT table_schema, table_name, privilege_type FROM information_schema.table_privileges"
        " WHERE grantee = %s"
        " UNION ALL SELECT table_schema, table_name, privilege_type FROM information_schema.column_privileges"
        " WHERE grantee = %s",
        (grantee,) * 4,
    )
    return {tuple(row) for row in cursor.fetchall()} - {("*", "*", "USAGE")}


def _connect_as(user: str, password: str, database: str | None = None) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=SERVER_URL.host or "127.0.0.1",
        port=SERVER_URL.port or 3306,
        user=user,
        password=password,
        database=database,
        autocommit=True,
    )


DENIED = {1142, 1044}  # table / database access denied


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_the_init_files_give_lab_assets_select_on_the_lab_tables_and_its_own_database_only(tmp_path, monkeypatch):
    """The compose deployment's MySQL, initialised as the official image does it (the init files
    the compose file mounts, in its order, with its environment), on the local MariaDB under
    test-unique names: lab_assets' account may read the two lab tables and nothing else of the lab
    database, holds exactly what lab_assets' grant check asks for on its output database, and a
    whole `dagster asset materialize` with the containers' environment (LAB_DB_URL,
    LAB_OUTPUT_DATABASE, DAGSTER_MYSQL_URL on the deployment's dagster.yaml) builds the exact table; Dagster's
    account has its own database only."""
    from lab_assets.mysql.grants import OUTPUT_PRIVILEGES, missing_privileges
    from lab_assets.names import SAMPLE_MEASUREMENTS, SAMPLES

    client = shutil.which("mysql") or shutil.which("mariadb")
    assert client, "the init files run through the mysql client (Debian: mariadb-client)"
    run = next(_init_runs)
    lab, output, dagster = (f"{SESSION_PREFIX}_init{run}_{role}" for role in ("lab", "out", "dg"))
    lab_assets_user, dagster_user = (f"{role}{SESSION_PREFIX[-6:]}{run}" for role in ("la", "dg"))
    env = _mysql_service_env(
        MYSQL_DATABASE=lab,
        LAB_OUTPUT_DATABASE=output,
        LAB_ASSETS_DB_USER=lab_assets_user,
        DAGSTER_DB=dagster,
        DAGSTER_DB_USER=dagster_user,
    )
    root = [client, "--protocol=tcp", f"--host={SERVER_URL.host or '127.0.0.1'}", f"--port={SERVER_URL.port or 3306}"]
    root.append(f"--user={SERVER_URL.username or 'root'}")
    if SERVER_URL.password:
        env["MYSQL_PWD"] = SERVER_URL.password
    sql_log = tmp_path / "sent.sql"
    instance = None
    try:
        with server_connection() as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{lab}`")  # the entrypoint creates MYSQL_DATABASE first
        result = _run_init_files(env, root, sql_log)
        assert result.returncode == 0, result.stdout + result.stderr

        # Valid on MySQL 8 as well: no MariaDB-only syntax, no GRANT ... IDENTIFIED BY (removed in
        # MySQL 8), users created before they are granted anything.
        sent = sql_log.read_text()
        for forbidden in ("CREATE OR REPLACE", "IDENTIFIED VIA", "IDENTIFIED WITH", "GRANT ALL ON *.*"):
            assert forbidden not in sent.upper(), forbidden
        for grant in re.findall(r"^GRANT .*$", sent, flags=re.MULTILINE):
            assert "IDENTIFIED" not in grant, grant
            # The change feed's two global privileges are the only grant on *.*.
            assert " ON *.* " not in grant or grant.startswith("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* "), (
                grant
            )

        # The grants, read from information_schema as root: exactly these.
        output_pattern, dagster_pattern = output.replace("_", "\\_"), dagster.replace("_", "\\_")
        with server_connection() as connection, connection.cursor() as cursor:
            # The change feed's two global privileges (MariaDB names REPLICATION CLIENT by its
            # newer name, BINLOG MONITOR) and nothing else on *.*.
            feed = {("*", "*", "REPLICATION SLAVE"), ("*", "*", "REPLICATION CLIENT")}
            feed_mariadb = {("*", "*", "REPLICATION SLAVE"), ("*", "*", "BINLOG MONITOR")}
            granted = _privileges(cursor, lab_assets_user)
            assert granted - feed - feed_mariadb == {
                (lab, SAMPLES, "SELECT"),
                (lab, SAMPLE_MEASUREMENTS, "SELECT"),
                *((output_pattern, "*", privilege) for privilege in OUTPUT_PRIVILEGES),
            }
            assert granted & (feed | feed_mariadb) in (feed, feed_mariadb)
            dagster_grants = _privileges(cursor, dagster_user)
            assert {(db, table) for db, table, _ in dagster_grants} == {(dagster_pattern, "*")}
            assert {"SELECT", "INSERT", "CREATE", "ALTER", "INDEX"} <= {p for *_, p in dagster_grants}

        # As lab_assets: the lab tables can be read, not written, and nothing can be made beside them.
        password = env["LAB_ASSETS_DB_PASSWORD"]
        with _connect_as(lab_assets_user, password, lab) as connection, connection.cursor() as cursor:
            for table in (SAMPLES, SAMPLE_MEASUREMENTS):
                cursor.execute(f"SELECT COUNT(*) FROM `{table}`")
                assert cursor.fetchone() == (20,), table  # the seed rows, loaded by the schema file
            for statement in (
                "INSERT INTO samples (parent_id, experiment_id) VALUES (NULL, 1)",
                "UPDATE sample_measurements SET value = value + 1",
                "DELETE FROM samples WHERE id = 20",
                "CREATE TABLE lab_assets_probe (id INT PRIMARY KEY)",
                "ALTER TABLE samples ADD COLUMN probe INT",
                "DROP TABLE sample_measurements",
                f"SELECT 1 FROM `{dagster}`.`alembic_version`",
            ):
                with pytest.raises(pymysql.err.OperationalError) as denied:
                    cursor.execute(statement)
                assert denied.value.args[0] in DENIED, (statement, denied.value.args)

        # lab_assets' own grant check, on the URL the containers get (host, port and names
        # replaced): nothing missing.
        dagster_env = _compose(_passwords() | {"LAB_ASSETS_DB_PASSWORD": password})["services"]["daemon"]["environment"]
        server = {"host": SERVER_URL.host or "127.0.0.1", "port": SERVER_URL.port or 3306}
        lab_url = sa.make_url(dagster_env[LAB_DB_URL_ENV]).set(username=lab_assets_user, database=lab, **server)
        dagster_url = sa.make_url(dagster_env[DAGSTER_MYSQL_URL_ENV]).set(
            username=dagster_user, password=env["DAGSTER_DB_PASSWORD"], database=dagster, **server
        )
        resource = MySQLResource(url=lab_url.render_as_string(hide_password=False), output_database=output)
        with resource.connect() as connection:
            missing, grantee, role_active = missing_privileges(connection, resource.tables)
        assert (missing, grantee, role_active) == ([], f"'{lab_assets_user}'@'%'", False)

        # The full refresh as the daemon's run would do it: a cold CLI process with the
        # containers' environment and DAGSTER_HOME holding the deployment's dagster.yaml.
        home = tmp_path / "dagster_home"
        home.mkdir()
        _deployment_dagster_yaml(home)
        containers = {
            LAB_DB_URL_ENV: lab_url.render_as_string(hide_password=False),
            LAB_OUTPUT_DATABASE_ENV: output,
            DAGSTER_MYSQL_URL_ENV: dagster_url.render_as_string(hide_password=False),
            "DAGSTER_HOME": str(home),
        }
        assert set(containers) - {"DAGSTER_HOME"} == set(dagster_env)
        cli_env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DAGSTER_"))} | containers
        built = subprocess.run(
            [DAGSTER, "asset", "materialize", "-m", "lab_assets.definitions", "--select", "*"],
            cwd=ROOT,
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]
        with server_connection(lab) as connection:
            assert_flat_table_is_exact(connection, output_database=output)
            with connection.cursor() as cursor:
                cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (lab,))
                assert {row[0] for row in cursor.fetchall()} == {SAMPLES, SAMPLE_MEASUREMENTS}, "nothing in lab"
        monkeypatch.setenv(DAGSTER_MYSQL_URL_ENV, containers[DAGSTER_MYSQL_URL_ENV])
        instance = DagsterInstance.from_config(str(home))  # the run is in Dagster's database
        [record] = instance.get_run_records()
        assert record.dagster_run.status == DagsterRunStatus.SUCCESS

        # Dagster's account reads nothing of the lab's or lab_assets' data.
        with _connect_as(dagster_user, env["DAGSTER_DB_PASSWORD"]) as connection, connection.cursor() as cursor:
            for table in (f"`{lab}`.`samples`", f"`{output}`.`experiment_measurements`"):
                with pytest.raises(pymysql.err.OperationalError) as denied:
                    cursor.execute(f"SELECT 1 FROM {table}")
                assert denied.value.args[0] in DENIED, table
    finally:
        if instance is not None:
            instance.dispose()
        with server_connection() as connection, connection.cursor() as cursor:
            for user in (lab_assets_user, dagster_user):
                cursor.execute("DROP USER IF EXISTS %s@'%%'", (user,))
            for database in (lab, output, dagster):
                cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")


def _make_instance(url: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DAGSTER_", "MAKE", "MFLAGS"))}
    if url is not None:
        env["LAB_DB_URL"] = url
    command = ["make", "-s", "--no-print-directory", "instance"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_make_keeps_one_instance_per_lab_database():
    """`make run` / `make dev` record runs in dagster_home/<database>_at_<host>_<port>: another
    database (or the same name on another server) gets another instance, so its runs never show in
    this one's UI; the account and its password are never part of the path."""
    home = ROOT / "dagster_home"
    assert _make_instance(None) == str(home / "lab_at_127.0.0.1_3306")
    assert _make_instance("mysql+pymysql://root@127.0.0.1:3306/lab") == str(home / "lab_at_127.0.0.1_3306")
    other = _make_instance("mysql+pymysql://bob:s%40cret@db.example:3307/other?charset=utf8mb4")
    assert other == str(home / "other_at_db.example_3307")
    assert _make_instance("mysql+pymysql://root@10.0.0.5/lab") == str(home / "lab_at_10.0.0.5")


@pytest.mark.timeout(120)
def test_dagster_dev_from_the_root_runs_on_the_root_dagster_yaml(lab_db, tmp_path):
    """`dagster dev` from the repository root, DAGSTER_HOME unset (README): Dagster reads the root's
    dagster.yaml, which needs no variable, and the UI serves the definitions on its run queue,
    one sensor refresh and one table-writing step at a time."""
    from lab_assets_tests.webserver import INSTANCE, Webserver

    server = Webserver(tmp_path, lab_db.url, dev=True, from_root=True)
    try:
        server.wait_until_loaded(seconds=90)
        instance = server.graphql(INSTANCE)["instance"]
        assert instance["runQueuingSupported"] is True
        # The root file's settings, storage SQLite in the temporary directory.
        assert "- key: lab_assets/trigger" in instance["info"], instance["info"]
        assert "default_limit: 1" in instance["info"] and "run_storage: SqliteRunStorage" in instance["info"]
    finally:
        server.stop()
    assert not list(ROOT.glob(".tmp_dagster_home_*")), "dagster dev left its temporary instance behind"


def _processes_with(marker: str) -> dict[int, str]:
    """pid -> command line of the live processes whose environment holds ``marker``."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "environ").read_bytes():
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # noqa: PERF203 - a process may end between listing and reading it
            continue
    return found


@pytest.mark.timeout(240)
def test_a_background_make_dev_stops_whole_with_the_readme_command(lab_db, tmp_path):
    """README: `make dev &`, then `kill $!`. From a non-interactive shell (background jobs start
    with SIGINT ignored), after the daemon ran the sensor's first refresh, not one process that
    make dev started is left: webserver, daemon, code servers, run workers."""
    import requests

    from lab_assets_tests.webserver import RUNS, VENV, _free_port

    marker = f"lab-assets-stop-{secrets.token_hex(6)}"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DAGSTER_", "MAKE", "MFLAGS"))}
    env.update(LAB_DB_URL=lab_db.url, DAGSTER_HOME=str(tmp_path), LAB_STOP_MARKER=marker)
    log, pid_file = tmp_path / "make-dev.log", tmp_path / "make.pid"
    make = f"make --no-print-directory -o {VENV}/.installed dev VENV={VENV} DAGSTER_PORT={port}"
    shell = subprocess.Popen(
        ["bash", "-c", f"{make} > {log} 2>&1 &\necho $! > {pid_file}\nwait"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 150
        runs: list[dict] = []
        while time.monotonic() < deadline and not any(r["status"] == "SUCCESS" for r in runs):
            time.sleep(1)
            assert shell.poll() is None, log.read_text()[-3000:]
            try:
                tags = [{"key": REFRESH_TAG_KEY, "value": SENSOR_NAME}]
                query = {"query": RUNS, "variables": {"filter": {"tags": tags}}}
                body = requests.post(f"http://127.0.0.1:{port}/graphql", json=query, timeout=10).json()
                runs = body["data"]["runsOrError"].get("results", [])
            except (requests.RequestException, KeyError, TypeError, ValueError):
                continue
        assert any(r["status"] == "SUCCESS" for r in runs), (runs, log.read_text()[-3000:])
        assert len(_processes_with(marker)) >= 4  # make, dagster dev, webserver, daemon, code server
        os.kill(int(pid_file.read_text()), signal.SIGTERM)  # README's `kill $!`
        shell.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _processes_with(marker) == {}, log.read_text()[-3000:]
    finally:
        for pid in _processes_with(marker):  # after a failed stop: nothing of this test left running
            os.kill(pid, signal.SIGKILL)
        shell.wait(timeout=10)
