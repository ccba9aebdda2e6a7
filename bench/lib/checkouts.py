"""A lab_assets checkout's CLI run as a cold process with that checkout's own venv, so an older
commit in another worktree is measured the same way as this one."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.lib.runs import FINISHED_STEP, MATERIALIZE_ALL
from bench.lib.server import connect, database_url

FULL_REFRESH_TAGS = {"lab_assets/refresh": "full"}
# `dagster asset materialize` takes no --tags: the implicit asset job has the same selection ('*').
FULL_REFRESH = ("job", "execute", "-m", "lab_assets.definitions", "-j", "__ASSET_JOB")
SOURCE_TABLES = ("samples", "sample_measurements")


@dataclass
class Build:
    command: list[str]
    started: float  # perf_counter()
    seconds: float
    exit_code: int
    log_path: Path
    steps: dict[str, float]


def checkout_dagster(repo: Path) -> Path:
    """The checkout's own console script, refused when it would run another venv's interpreter
    (a venv copied from another worktree keeps that worktree's shebang and editable install)."""
    dagster = repo / ".venv" / "bin" / "dagster"
    if not dagster.exists():
        raise SystemExit(f"{dagster} does not exist: create the checkout's venv (make install in {repo})")
    shebang = dagster.read_text().splitlines()[0]
    interpreter = Path(shebang[2:].strip())
    if interpreter.parent.resolve() != dagster.parent.resolve():
        raise SystemExit(f"{dagster} starts {shebang!r}, not {dagster.parent}/python; recreate that venv")
    return dagster


def revision(repo: Path) -> str:
    """Short commit of the checkout, ``+dirty`` when its tracked files differ from it."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return commit + ("+dirty" if dirty else "")


def output_tables(database: str) -> list[str]:
    """Tables of ``database`` other than the two sources (lab_assets' own, from earlier builds)."""
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            " AND table_name NOT IN (%s, %s) ORDER BY table_name",
            (database, *SOURCE_TABLES),
        )
        return [str(row[0]) for row in cursor.fetchall()]


def run_build(repo: Path, database: str, full: bool, log_path: Path) -> Build:
    """One lab_assets build: the checkout's CLI as a cold process, cwd the checkout."""
    dagster = checkout_dagster(repo)
    arguments = [*FULL_REFRESH, "--tags", json.dumps(FULL_REFRESH_TAGS)] if full else list(MATERIALIZE_ALL)
    command = [str(dagster), *arguments]
    with tempfile.TemporaryDirectory(prefix="lab_writer_delay_dagster_home_") as home:
        env = {**os.environ, "LAB_DB_URL": database_url(database), "DAGSTER_HOME": home}
        # Outputs go to bench_<size> itself, and only the checkout's own code is imported.
        for name in ("LAB_OUTPUT_DATABASE", "PYTHONPATH"):
            env.pop(name, None)
        with log_path.open("w") as log:
            started = time.perf_counter()
            exit_code = subprocess.run(
                command, env=env, cwd=repo, stdout=log, stderr=subprocess.STDOUT, check=False
            ).returncode
            seconds = time.perf_counter() - started
    steps: dict[str, float] = {}
    for line in log_path.read_text().splitlines():
        finished = FINISHED_STEP.search(line)
        if finished:
            value = float(finished.group("value")) / (1000 if finished.group("unit") == "ms" else 1)
            steps[finished.group("step")] = round(value, 2)
    return Build(command, started, seconds, exit_code, log_path, steps)
