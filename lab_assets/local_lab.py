"""Local lab database for trying lab_assets out: ``python -m lab_assets.local_lab create-if-missing``
creates the database named by LAB_DB_URL with the lab's source schema and the 20 fixed samples
(only if it does not exist yet) and, with DAGSTER_HOME set, the instance's ``dagster.yaml`` there
(only if it has none: a link to the repository's, :data:`REPOSITORY_DAGSTER_YAML`);
``materialize`` runs job ``lab_refresh`` (:data:`MATERIALIZE_ALL`: every table and check, the
sources observed first) on the instance in DAGSTER_HOME and prints a few progress lines instead
of Dagster's event stream (``VERBOSE=1``: the whole stream); ``show`` prints experiment_measurements.

This is a development helper, not part of the Dagster definitions: lab_assets itself never writes
``samples`` or ``sample_measurements``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance

from lab_assets.mysql.resource import LAB_OUTPUT_DATABASE_ENV, MySQLResource
from lab_assets.mysql.sessions import LAB_DB_URL_ENV, parse_url
from lab_assets.names import EXPERIMENT_MEASUREMENTS
from lab_assets.sql.statements import quote_identifier


def source_schema_statements() -> list[str]:
    text = re.sub(r"--[^\n]*", "", files("lab_assets").joinpath("source_schema.sql").read_text())
    return [statement.strip() for statement in text.split(";") if statement.strip()]


# The instance configuration of every way lab_assets runs: the repository's dagster.yaml, linked
# into each instance `make run` and `make dev` use (DAGSTER_HOME, one per lab database) when it
# has none, so a change to it reaches them all. Where the package runs without its repository,
# LOCAL_DAGSTER_YAML (the same run-queue setting) is written instead.
REPOSITORY_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
LOCAL_DAGSTER_YAML = """\
telemetry:
  enabled: false
# How often the daemon looks at the run queue (Dagster's default: 5 s): every second, a refresh the
# sensor requests is launched within about a second (bench/RESULTS.md, "Write-to-table latency").
run_queue:
  dequeue_interval_seconds: 1
"""
# What lab_assets wrote before; replaced by the link. A file with anything else is the user's and
# is left as it is.
EARLIER_LOCAL_DAGSTER_YAMLS = ("telemetry:\n  enabled: false\n", LOCAL_DAGSTER_YAML)


def write_dagster_yaml_if_missing(home: Path) -> None:
    """``home/dagster.yaml`` := a link to :data:`REPOSITORY_DAGSTER_YAML` (or
    :data:`LOCAL_DAGSTER_YAML` without one) unless it holds a configuration of its own."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    if path.is_symlink() or (path.exists() and path.read_text() not in EARLIER_LOCAL_DAGSTER_YAMLS):
        return
    path.unlink(missing_ok=True)
    if REPOSITORY_DAGSTER_YAML.is_file():
        path.symlink_to(REPOSITORY_DAGSTER_YAML)
    else:
        path.write_text(LOCAL_DAGSTER_YAML)


def create_if_missing(url: str) -> None:
    """The lab database (see the module's docstring) and, with DAGSTER_HOME set, its dagster.yaml."""
    home = os.environ.get("DAGSTER_HOME")
    if home:
        write_dagster_yaml_if_missing(Path(home))
    parsed = parse_url(url)
    database = parsed.database
    if not database:
        raise SystemExit(f"{LAB_DB_URL_ENV} must name a database: {parsed.render_as_string()}")
    # The server without a database, through lab_assets' engine and its session settings.
    server = MySQLResource(url=parsed.set(database="").render_as_string(hide_password=False))
    with server.connect() as connection:
        exists = connection.exec_driver_sql(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (database,)
        ).first()
        if exists:
            print(f"lab database {database!r} exists; left as it is")
            return
        connection.exec_driver_sql(f"CREATE DATABASE {quote_identifier(database)}")
        connection.exec_driver_sql(f"USE {quote_identifier(database)}")
        for statement in source_schema_statements():
            connection.exec_driver_sql(statement)
    print(f"created lab database {database!r} with the source schema and the 20 fixed samples")


# Job lab_refresh builds every table and reports every check, as `dagster asset materialize
# --select '*'` does, and observes the two sources first: the UI then shows the tables in sync with
# them (lab_assets.defs.jobs says why), which that command, observing nothing, would not.
MATERIALIZE_ALL = ("job", "execute", "-m", "lab_assets.definitions", "-j", "lab_refresh")
# the log file only.
ASSET_STEPS = ("lab_source_derivations", "experiment_measurements")


def materialize(url: str) -> None:
    """Runs :data:`MATERIALIZE_ALL` on the instance in DAGSTER_HOME (linked to the repository's
    dagster.yaml if it has none), printing each table step's duration and the
    checks' results as they finish. Exits non-zero, with the end of the log, if the run fails."""
    del url  # the command reads LAB_DB_URL itself
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    if os.environ.get("VERBOSE", "") not in ("", "0"):
        raise SystemExit(subprocess.call([dagster, *MATERIALIZE_ALL]))
    home = Path(os.environ.get("DAGSTER_HOME") or sys.exit("set DAGSTER_HOME (make run sets it)"))
    write_dagster_yaml_if_missing(home)
    log_path = home / "make-run.log"
    print(f"materializing every asset (Dagster's event stream: {log_path}, or make run VERBOSE=1)", flush=True)
    started = time.time()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [dagster, *MATERIALIZE_ALL],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        with DagsterInstance.get() as instance:
            printed: set[str] = set()
            while process.poll() is None:
                time.sleep(0.5)
                _print_finished_steps(instance, started, printed)
            _print_finished_steps(instance, started, printed, last=True)
    if process.returncode != 0:
        print("".join(log_path.read_text().splitlines(keepends=True)[-40:]), file=sys.stderr)
        raise SystemExit(f"the run failed (exit {process.returncode}); whole log: {log_path}")


def _print_finished_steps(instance: DagsterInstance, started: float, printed: set[str], last: bool = False) -> None:
    records = [r for r in instance.get_run_records(limit=1) if r.create_timestamp.timestamp() >= started - 1]
    if not records:
        return
    run_id = records[0].dagster_run.run_id
    for step in instance.get_run_step_stats(run_id, step_keys=list(ASSET_STEPS)):
        if step.end_time is not None and step.step_key not in printed and step.start_time is not None:
            printed.add(step.step_key)
            status = step.status.value.lower() if step.status else "done"
            done = f"  {step.step_key}: {status} in {step.end_time - step.start_time:.1f} s"
            print(done + _what_was_written(instance, run_id, step.step_key), flush=True)
    if last:
        checks = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
        evaluations = [r.event_log_entry.get_dagster_event().asset_check_evaluation_data for r in checks]
        failed = [e.check_name for e in evaluations if not e.passed]
        print(
            f"  checks: {len(evaluations) - len(failed)} passed" + (f", failed: {', '.join(failed)}" if failed else "")
        )


def _what_was_written(instance: DagsterInstance, run_id: str, step_key: str) -> str:
    """`` (<refresh>, <n> rows written, <m> in the table)`` for the flat table's step, from its
    materialization."""
    if step_key != EXPERIMENT_MEASUREMENTS:
        return ""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
    for record in records:
        materialization = record.asset_materialization
        if materialization is not None and materialization.asset_key.to_user_string() == EXPERIMENT_MEASUREMENTS:
            metadata = materialization.metadata
            refresh, rows = metadata.get("refresh"), metadata.get("dagster/row_count")
            written = metadata.get("rows_written")
            return (
                f" ({refresh.value if refresh else 'written'}, {written.value if written else '?'} rows written,"
                f" {rows.value if rows else '?'} in the table)"
            )
    return ""


def show(url: str) -> None:
    """Prints the flat table, from LAB_OUTPUT_DATABASE when that is set."""
    mysql = MySQLResource(url=url, output_database=os.environ.get(LAB_OUTPUT_DATABASE_ENV) or None)
    table = mysql.tables.qualified(EXPERIMENT_MEASUREMENTS)
    with mysql.connect() as connection:  # lab_assets' session settings (a DBA's sql_select_limit cuts no rows)
        result = connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY sample_id LIMIT 50")
        names = list(result.keys())
        rows = [["NULL" if v is None else str(v) for v in row] for row in result]
        (total,) = connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").one()
    widths = [max(len(n), *(len(r[i]) for r in rows)) if rows else len(n) for i, n in enumerate(names)]
    print("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for row in rows:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    print(f"({total} rows{', first 50 shown' if total > 50 else ''})")


def main(argv: list[str]) -> None:
    url = os.environ.get(LAB_DB_URL_ENV)
    if not url:
        raise SystemExit(f"set {LAB_DB_URL_ENV}, e.g. mysql+pymysql://root@127.0.0.1:3306/lab")
    commands = {"create-if-missing": create_if_missing, "materialize": materialize, "show": show}
    if len(argv) != 1 or argv[0] not in commands:
        raise SystemExit(f"usage: python -m lab_assets.local_lab {{{'|'.join(commands)}}}")
    commands[argv[0]](url)


if __name__ == "__main__":
    main(sys.argv[1:])
