"""What a finished run says to a shell, cron or CI (``local_lab materialize`` and ``audit``): the
steps that failed, each with the first line of its failure (lab_assets' failures are one sentence
that says how to fix them), the checks that failed (name, asset, offender count, severity), and
whether the run as a whole must exit non-zero: a failed step, or a failed check of ERROR severity.
Dagster's own commands exit 0 with checks failed (non-blocking checks are results, not failures),
so this is the one place that turns them into an exit code."""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetCheckEvaluation, AssetCheckSeverity, DagsterEventType, DagsterInstance
from dagster._core.execution.plan.objects import StepFailureData

from lab_assets.checks.specs import ALL_CHECKS


@dataclass
class RunReport:
    """A run's failed steps (``step: first line of its failure``) and check evaluations."""

    failed_steps: list[str]
    evaluations: list[AssetCheckEvaluation]

    @property
    def failed_checks(self) -> list[AssetCheckEvaluation]:
        """The evaluations that failed, of any severity."""
        return [e for e in self.evaluations if not e.passed]

    @property
    def failed_error_checks(self) -> list[AssetCheckEvaluation]:
        """The failed evaluations of ERROR severity, which make the run's exit code non-zero."""
        return [e for e in self.failed_checks if e.severity == AssetCheckSeverity.ERROR]

    def checks_line(self) -> str:
        """One line: ``N checks failed: <name> on <asset> (<n> offenders, ERROR); ...``, how many
        passed, and, when a step failed, how many were not evaluated (never "0 passed" as if fine)."""
        failed = self.failed_checks
        if self.failed_steps and not self.evaluations:
            return "no check was evaluated (a step failed)"
        line = f"{len(failed)} check{'' if len(failed) == 1 else 's'} failed"
        if failed:
            line += ": " + "; ".join(describe_check(e) for e in failed)
        line += f"; {len(self.evaluations) - len(failed)} passed"
        missing = len(ALL_CHECKS) - len(self.evaluations)
        if missing > 0:
            line += f"; {missing} not evaluated" + (" (a step failed)" if self.failed_steps else "")
        return line

    def verdict(self) -> str | None:
        """Why the run must exit non-zero, in one sentence; None when it need not."""
        if self.failed_steps:
            return f"the run failed: {'; '.join(self.failed_steps)}"
        errors = self.failed_error_checks
        if errors:
            names = ", ".join(describe_check(e) for e in errors)
            return f"{len(errors)} check{'' if len(errors) == 1 else 's'} of ERROR severity failed: {names}"
        return None


def describe_check(evaluation: AssetCheckEvaluation) -> str:
    """``<check> on <asset> (<n> offenders, <severity>)``."""
    count = evaluation.metadata.get("offender_count")
    offenders = f"{count.value} offender{'' if count.value == 1 else 's'}, " if count is not None else ""
    return (
        f"{evaluation.check_name} on {evaluation.asset_key.to_user_string()} ({offenders}{evaluation.severity.value})"
    )


def run_report(instance: DagsterInstance, run_id: str) -> RunReport:
    """The :class:`RunReport` of the run ``run_id`` from its events in ``instance``."""
    failed_steps = []
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE).records:
        event = record.event_log_entry.get_dagster_event()
        failed_steps.append(f"{event.step_key} failed: {_first_line(event.step_failure_data)}")
    checks = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    evaluations = [r.event_log_entry.get_dagster_event().asset_check_evaluation_data for r in checks]
    return RunReport(failed_steps, evaluations)


def _first_line(failure: StepFailureData) -> str:
    """The failure's description (a ``Failure``'s one sentence), else the first line of the
    error the step's code raised (below Dagster's wrappers, above what it chained)."""
    user = failure.user_failure_data
    if user is not None and user.description:
        return user.description.splitlines()[0]
    error = failure.error
    while error is not None and (error.cls_name or "").startswith("Dagster") and error.cause is not None:
        error = error.cause
    return (error.message.strip().splitlines() or ["unknown error"])[0] if error is not None else "unknown error"
