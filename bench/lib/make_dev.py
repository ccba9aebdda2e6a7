"""``make dev`` in a process group of its own, and what its Dagster instance says about the
source-change sensor's ticks and the refresh runs they launched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab_assets_tests.webserver import _default_sigint, _free_port

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 180  # make dev up and the first sensor tick done (it sums both sources once)
VENV = Path(sys.executable).parent.parent


class MakeDev:
    """``make dev`` in a session of its own (make, dagster dev, webserver, code server, daemon and
    the runs it launches form one process group, ended as a whole by :meth:`stop`)."""

    def __init__(self, home: Path, lab_db_url: str, log_path: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "DAGSTER_", "MAKE", "MFLAGS"))}
        env.update(LAB_DB_URL=lab_db_url, DAGSTER_HOME=str(home))
        self.port = _free_port()
        # -o: this environment is installed already; make must not reinstall it.
        command = ["make", "--no-print-directory", "-o", f"{VENV}/.installed", "dev"]
        command += [f"VENV={VENV}", f"DAGSTER_PORT={self.port}"]
        self.log_path = log_path
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # dagster dev handles SIGTERM as SIGINT, so SIGINT must not be ignored.
                preexec_fn=_default_sigint,  # noqa: PLW1509 - one signal() call before exec, no lock taken
            )

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_path.read_text()[-3000:]
            raise SystemExit(f"make dev exited ({self.process.returncode}):\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        try:  # runs it launched are in the group too; none may outlive it
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --------------------------------------------------------------------------------------------
# the instance


def _sensor_state(instance):
    from dagster._core.scheduler.instigation import InstigatorType

    from lab_assets.names import SENSOR_NAME

    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name == SENSOR_NAME:
            return state
    return None


def sensor_ticks(instance, after: float | None = None) -> list:
    state = _sensor_state(instance)
    if state is None:
        return []
    return list(instance.get_ticks(state.instigator_origin_id, state.selector_id, after=after))


def refresh_runs(instance, created_after: float | None = None) -> list:
    """Records of the sensor's refresh runs (oldest first)."""
    from datetime import datetime, timezone

    from dagster import RunsFilter

    from lab_assets.names import SENSOR_RUN_TAGS

    after = None if created_after is None else datetime.fromtimestamp(created_after, tz=timezone.utc)
    records = instance.get_run_records(RunsFilter(tags=SENSOR_RUN_TAGS, created_after=after))
    return sorted(records, key=lambda r: r.create_timestamp.timestamp())


def ended(record) -> bool:
    return record.dagster_run.is_finished


def wait_until_quiet(instance, dev: MakeDev, started: float) -> None:
    """Until the daemon has ticked the sensor since ``started``, no refresh is queued or running,
    and the last finished tick started nothing (the tables are current)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        dev.check_alive()
        ticks = [t for t in sensor_ticks(instance, after=started) if t.end_timestamp is not None]
        runs = refresh_runs(instance)
        if ticks and all(ended(r) for r in runs) and not ticks[0].run_ids:
            if any(r.dagster_run.status.value != "SUCCESS" for r in runs):
                raise SystemExit(f"a refresh run failed before the changes: {[r.dagster_run.run_id for r in runs]}")
            return
        time.sleep(0.5)
    raise SystemExit(f"make dev: no quiet sensor tick within {STARTUP_SECONDS} s; see {dev.log_path}")
