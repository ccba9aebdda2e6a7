"""The documented contract, as a user runs it: with only LAB_DB_URL set,
`dagster asset materialize -m lab_assets.definitions --select '*'` from a cold process builds every
table on a database that holds only the two source tables; a second run gives the same table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lab_assets_tests.lab_data import actual_flat_table, assert_flat_table_is_exact, generate, insert, read_sources

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _materialize_everything(url: str, dagster_home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DAGSTER_"))}
    env.update(LAB_DB_URL=url, DAGSTER_HOME=str(dagster_home))
    return subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "lab_assets.definitions", "--select", "*"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_cli_contract_builds_every_table_and_is_repeatable(lab_db, tmp_path):
    with lab_db.connect() as connection:
        insert(connection, *generate(3_000))
    first = _materialize_everything(lab_db.url, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    tables = {r[0] for r in lab_db.query("SHOW TABLES")}
    # Not the catalog's counts (lab_sample_type_counts and its sums and facts): only a build that
    # stores a binlog position keeps them, and this server writes no binlog.
    assert tables == {
        "samples",
        "sample_measurements",
        "measurement_types",
        "sample_lineage",
        "sample_measurement_digests",
        "experiment_measurements",
        "lab_pending_samples",
        "lab_build_lock",
        "lab_orphan_samples",
        "lab_state_row_counts",
        "lab_column_summary",
        "lab_measurement_columns",
        "sample_lineage_buckets_64",
        "sample_measurement_digests_buckets_4",
    }
    with lab_db.connect() as connection:
        source = read_sources(connection)
        first_table = assert_flat_table_is_exact(connection)

    second = _materialize_everything(lab_db.url, tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    with lab_db.connect() as connection:
        assert actual_flat_table(connection) == first_table
        assert read_sources(connection) == source, "the source tables are never written"


def test_cli_without_lab_db_url_fails_naming_the_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DAGSTER_"))}
    env["DAGSTER_HOME"] = str(tmp_path)
    result = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "lab_assets.definitions", "--select", "*"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode != 0
    assert "LAB_DB_URL" in result.stdout + result.stderr


def _fresh_clone(tmp_path: Path) -> Path:
    """The repository as committed, cloned: no dagster_home, no untracked files."""
    clone = tmp_path / "clone"
    root = Path(__file__).resolve().parent.parent
    subprocess.run(["git", "clone", "--quiet", str(root), str(clone)], check=True, timeout=120)
    return clone


def _only_lab_db_url(url: str) -> dict[str, str]:
    """The environment README's commands need: PATH and HOME from the shell, LAB_DB_URL, nothing of
    Dagster's (no DAGSTER_HOME)."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LAB_DB_URL": url}


def test_readme_main_command_works_from_a_fresh_clone_with_only_lab_db_url(lab_db, tmp_path):
    clone = _fresh_clone(tmp_path)
    # The root dagster.yaml (read when DAGSTER_HOME is unset) needs no variable: LAB_DB_URL suffices.
    assert (clone / "dagster.yaml").is_file()
    result = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "lab_assets.definitions", "--select", "*"],
        cwd=clone,
        env=_only_lab_db_url(lab_db.url),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection)


def test_dg_checks_and_launches_the_same_definitions_from_a_fresh_clone(lab_db, tmp_path):
    clone = _fresh_clone(tmp_path)
    dg = str(Path(sys.executable).with_name("dg"))
    env = _only_lab_db_url(lab_db.url)
    check = subprocess.run(
        [dg, "check", "defs"], cwd=clone, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert check.returncode == 0 and "All definitions loaded successfully" in check.stdout + check.stderr, (
        check.stdout + check.stderr
    )[-3000:]
    launch = subprocess.run(
        [dg, "launch", "--assets", "*"], cwd=clone, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert launch.returncode == 0, (launch.stdout + launch.stderr)[-3000:]
    with lab_db.connect() as connection:
        assert_flat_table_is_exact(connection)


def test_create_if_missing_leaves_an_existing_lab_database_as_it_is(lab_db, monkeypatch, tmp_path):
    # make run's first step, on a lab database that already holds more than the demo rows.
    from lab_assets import local_lab

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with lab_db.connect() as connection:
        insert(connection, *generate(300))
    lab_db.execute("CREATE TABLE lab_notes (note VARCHAR(20))", "INSERT INTO lab_notes VALUES ('kept')")
    with lab_db.connect() as connection:
        before = read_sources(connection)
    local_lab.create_if_missing(lab_db.url)
    with lab_db.connect() as connection:
        assert read_sources(connection) == before
    assert lab_db.query("SELECT note FROM lab_notes") == [("kept",)]


def test_a_process_that_loaded_the_definitions_freezes_its_objects_as_its_exit_starts():
    # A handler registered before the import runs after lab_assets' own (atexit runs them last
    # registered first): by then the objects the cyclic collector would walk at exit are frozen.
    probe = "import atexit, gc; atexit.register(lambda: print(gc.get_freeze_count())); import lab_assets.definitions"
    frozen = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert int(frozen) > 100_000  # Dagster's, pandas' and SQLAlchemy's objects, not a handful
