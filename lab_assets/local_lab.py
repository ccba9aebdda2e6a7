"""Local lab database for trying lab_assets out, and the commands ``make run`` is made of.

* ``python -m lab_assets.local_lab create-if-missing [--demo]`` creates the database named by
  LAB_DB_URL with the lab's source schema and the 20 fixed samples, only if it does not exist and
  only for the default URL (:data:`DEFAULT_LAB_DB_URL`) or with ``--demo`` (``make run DEMO=1``):
  a typo in another URL's database name must stop with the sentence naming it and the server, not
  leave a stray demo database on a real server. With DAGSTER_HOME set it also gives the instance
  its ``dagster.yaml`` (only if it has none: a link to the repository's,
  :data:`REPOSITORY_DAGSTER_YAML`).
* ``materialize`` runs job ``lab_refresh`` (:data:`MATERIALIZE_ALL`: every table and check, the
  sources observed first) on the instance in DAGSTER_HOME, printing a few progress lines instead
  of Dagster's event stream (``VERBOSE=1``: the whole stream); ``audit`` runs the
  ``lab_integrity_audit`` job the same way. Both end with one line of check results and exit
  non-zero when a step or a check of ERROR severity failed (lab_assets.run_report), for cron and CI.
* ``show`` prints experiment_measurements.

A URL or connection problem ends any command with the one sentence that says what to check
(lab_assets.mysql.errors), exit code 1, no traceback unless ``VERBOSE=1``.

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

from dagster import DagsterEventType, DagsterInstance, Failure

from lab_assets.mysql.errors import UNKNOWN_DATABASE, server_error_code
from lab_assets.mysql.resource import LAB_OUTPUT_DATABASE_ENV, MySQLResource
from lab_assets.mysql.sessions import LAB_DB_URL_ENV, LabUrlError, parse_url
from lab_assets.names import EXPERIMENT_MEASUREMENTS
from lab_assets.run_report import run_report
from lab_assets.sql.statements import quote_identifier


def source_schema_statements() -> list[str]:
    """The statements of the lab's source schema (``source_schema.sql``), comments removed."""
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


# The URL make run uses when LAB_DB_URL is unset: the only one whose missing database is created
# as the demo database without --demo.
DEFAULT_LAB_DB_URL = "mysql+pymysql://root@127.0.0.1:3306/lab"


def create_if_missing(url: str, demo: bool = False) -> None:
    """The lab database (see the module's docstring) and, with DAGSTER_HOME set, its dagster.yaml.
    A missing database is created only for :data:`DEFAULT_LAB_DB_URL` or with ``demo``; otherwise
    the connection's ``Failure`` (unknown database: the sentence naming it, the server and what to
    do) is raised and nothing is created."""
    home = os.environ.get("DAGSTER_HOME")
    if home:
        write_dagster_yaml_if_missing(Path(home))
    parsed = parse_url(url)
    database = parsed.database
    if not database:
        raise SystemExit(f"{LAB_DB_URL_ENV} must name a database: {parsed.render_as_string()}")
    try:
        with MySQLResource(url=url).connect():
            print(f"lab database {database!r} exists; left as it is")
            return
    except Failure as failure:
        if server_error_code(failure.__cause__ or failure) != UNKNOWN_DATABASE:
            raise
        if not demo and parsed != parse_url(DEFAULT_LAB_DB_URL):
            raise
    # The server without a database, through lab_assets' engine and its session settings.
    server = MySQLResource(url=parsed.set(database="").render_as_string(hide_password=False))
    with server.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {quote_identifier(database)}")
        connection.exec_driver_sql(f"USE {quote_identifier(database)}")
        for statement in source_schema_statements():
            connection.exec_driver_sql(statement)
    print(f"created demo lab database {database!r} with the source schema and the 20 fixed samples")


# Job lab_refresh builds every table and reports every check, as `dagster asset materialize
# --select '*'` does, and observes the two sources first: the UI then shows the tables in sync with
# them (lab_assets.defs.jobs says why), which that command, observing nothing, would not.
MATERIALIZE_ALL = ("job", "execute", "-m", "lab_assets.definitions", "-j", "lab_refresh")
AUDIT = ("job", "execute", "-m", "lab_assets.definitions", "-j", "lab_integrity_audit")
# The table steps whose durations materialize prints (the observations of the sources go to
# the log file only).
ASSET_STEPS = ("lab_source_derivations", "experiment_measurements")


def verbose() -> bool:
    """Whether ``VERBOSE`` asks for the whole event stream and tracebacks."""
    return os.environ.get("VERBOSE", "") not in ("", "0")


def materialize(url: str) -> None:
    """Runs :data:`MATERIALIZE_ALL` (see :func:`run_and_report`)."""
    run_and_report(url, MATERIALIZE_ALL, "materializing every asset")


def audit(url: str) -> None:
    """Runs the ``lab_integrity_audit`` job, every check recomputed over the live tables (see
    :func:`run_and_report`)."""
    run_and_report(url, AUDIT, "auditing the tables (every check over the whole live tables)")


def run_and_report(url: str, command: tuple[str, ...], doing: str) -> None:
    """Runs ``dagster <command>`` on the instance in DAGSTER_HOME (:data:`LOCAL_DAGSTER_YAML` is
    written there if it has none), printing each table step's duration as it finishes, then the
    failed steps and one line of check results (lab_assets.run_report). Exits non-zero, saying
    why, when a step failed or a check of ERROR severity failed, so cron and CI can tell. The URL is
    tried first: a bad one ends here with its sentence, before Dagster starts."""
    with MySQLResource(url=url).connect():
        pass
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    home = Path(os.environ.get("DAGSTER_HOME") or sys.exit("set DAGSTER_HOME (make run sets it)"))
    write_dagster_yaml_if_missing(home)
    log_path = home / "make-run.log"
    where = "printed below" if verbose() else f"{log_path}, or VERBOSE=1"
    print(f"{doing} (Dagster's event stream: {where})", flush=True)
    started = time.time()
    with log_path.open("w") as log, DagsterInstance.get() as instance:
        output = None if verbose() else log
        process = subprocess.Popen([dagster, *command], stdout=output, stderr=subprocess.STDOUT)
        printed: set[str] = set()
        while process.poll() is None:
            time.sleep(0.5)
            _print_finished_steps(instance, started, printed)
        _print_finished_steps(instance, started, printed)
        run_id = _run_since(instance, started)
        report = run_report(instance, run_id) if run_id else None
    if report is None:
        if not verbose():
            print("".join(log_path.read_text().splitlines(keepends=True)[-20:]), file=sys.stderr)
        raise SystemExit(f"Dagster started no run (exit {process.returncode}); whole log: {log_path}")
    for failed in report.failed_steps:
        print(f"  {failed}", flush=True)
    print(f"  {report.checks_line()}", flush=True)
    verdict = report.verdict() or (f"dagster exited {process.returncode}" if process.returncode else None)
    if verdict is not None:
        raise SystemExit(f"{verdict}; whole log: {log_path}" if not verbose() else verdict)


def _run_since(instance: DagsterInstance, started: float) -> str | None:
    """The id of the newest run, if it was created after ``started`` (the one just launched)."""
    records = [r for r in instance.get_run_records(limit=1) if r.create_timestamp.timestamp() >= started - 1]
    return records[0].dagster_run.run_id if records else None


def _print_finished_steps(instance: DagsterInstance, started: float, printed: set[str]) -> None:
    run_id = _run_since(instance, started)
    if run_id is None:
        return
    for step in instance.get_run_step_stats(run_id, step_keys=list(ASSET_STEPS)):
        if step.end_time is not None and step.step_key not in printed and step.start_time is not None:
            printed.add(step.step_key)
            status = step.status.value.lower() if step.status else "done"
            done = f"  {step.step_key}: {status} in {step.end_time - step.start_time:.1f} s"
            print(done + _what_was_written(instance, run_id, step.step_key), flush=True)


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
    """Runs one command; a URL or connection problem (a ``Failure`` whose description is the
    sentence saying what to check) exits 1 with that sentence alone, the traceback only with
    ``VERBOSE=1``."""
    url = os.environ.get(LAB_DB_URL_ENV)
    if not url:
        raise SystemExit(f"set {LAB_DB_URL_ENV}, e.g. {DEFAULT_LAB_DB_URL}")
    commands = {"create-if-missing": create_if_missing, "materialize": materialize, "audit": audit, "show": show}
    demo = argv[1:] == ["--demo"] and argv[:1] == ["create-if-missing"]
    if not (len(argv) == 1 or demo) or argv[0] not in commands:
        raise SystemExit(f"usage: python -m lab_assets.local_lab {{{'|'.join(commands)}}} (create-if-missing --demo)")
    try:
        if demo:
            create_if_missing(url, demo=True)
        else:
            commands[argv[0]](url)
    except (Failure, LabUrlError) as error:
        if verbose():
            raise
        raise SystemExit((error.description if isinstance(error, Failure) else None) or str(error)) from None


if __name__ == "__main__":
    main(sys.argv[1:])
