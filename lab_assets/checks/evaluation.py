"""What every asset check's evaluation shares: a result that names its first offenders
(``offenders``, ``offender_count``) and what it covered (``covered``, ``covered_rows``), the
offenders' query, and the blocking checks that stop a step."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, DagsterLogManager, Failure, MetadataValue

import lab_assets.checks.sql as integrity
from lab_assets.flat_table.verification import Offenders
from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.sessions import recursion_limit
from lab_assets.names import (
    CATALOG_COLUMN_NAMES_UNIQUE,
    CATALOG_WITHIN_COLUMN_LIMIT,
    SAMPLE_MEASUREMENTS,
)

OFFENDER_LIMIT = integrity.OFFENDER_LIMIT
# A failed one fails its step, so experiment_measurements is not rebuilt (lab_assets.checks.specs).
BLOCKING_CHECKS = (CATALOG_COLUMN_NAMES_UNIQUE, CATALOG_WITHIN_COLUMN_LIMIT)


@dataclass(frozen=True)
class CatalogScan:
    """What the catalog's scan of sample_measurements counted, besides the catalog itself."""

    null_type_rows: int  # rows with a NULL measurement_type
    types_with_repeats: int  # types with a (sample, type) pair measured more than once
    types_with_several_spellings: int  # types the collation merges from several spellings
    measurement_rows: int  # every row scanned


@dataclass(frozen=True)
class Coverage:
    """What a check result covered, as its metadata says."""

    what: str
    rows: int | None = None

    def metadata(self) -> dict[str, MetadataValue]:
        """What was covered (``covered``), with ``covered_rows`` when the number of rows is known."""
        covered: dict[str, MetadataValue] = {"covered": MetadataValue.text(self.what)}
        return covered if self.rows is None else {**covered, "covered_rows": MetadataValue.int(self.rows)}


AUDIT = Coverage("every row of the live tables (audit: the checks alone, recomputed, nothing rebuilt)")


def value(value: object) -> str:
    """A value as an offender list shows it: NULL, or the text quoted, so an empty string, trailing
    spaces and the text ``NULL`` stay distinguishable from a missing value."""
    return "NULL" if value is None else repr(str(value))


def result(
    log: DagsterLogManager,
    asset: str,
    name: str,
    found: Offenders,
    coverage: Coverage,
    *,
    what: str,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
    named: Sequence[object] | None = None,
    extra: dict[str, MetadataValue] | None = None,
) -> AssetCheckResult:
    """A check result from its offenders (``named``: how to show them; default the first column)."""
    shown = list(named) if named is not None else [row[0] for row in found.first]
    if found.count:
        message = f"{name}: {found.count} {what}; first {len(shown)}: {shown}"
        (log.error if severity == AssetCheckSeverity.ERROR else log.warning)(message)
    else:
        # Dagster's own check-evaluation event shows a pass with this description; a log line
        # would say it twice (and cost an event-log write per check).
        message = f"{name}: passed, none found (covered: {coverage.what})"
    return AssetCheckResult(
        asset_key=AssetKey(asset),
        check_name=name,
        passed=found.count == 0,
        severity=severity,
        description=message,
        metadata={
            "offender_count": MetadataValue.int(found.count),
            "offenders": MetadataValue.json(shown),
            **coverage.metadata(),
            **(extra or {}),
        },
    )


def missing_tables(
    log: DagsterLogManager, mysql: MySQLResource, asset: str, name: str, *tables: str
) -> AssetCheckResult | None:
    """A failed result naming the tables the check reads that do not exist (not built yet, or
    their first build failed), instead of a raw ``1146 ... doesn't exist``; None if all exist."""
    missing = [f"{mysql.tables.database_of(t)}.{t}" for t in tables if not mysql.column_names(t)]
    if not missing:
        return None
    message = f"{name}: {', '.join(missing)} does not exist yet (not built, or its first build failed)"
    return could_not_check(log, asset, name, message, {"missing_tables": MetadataValue.json(missing)})


def could_not_check(
    log: DagsterLogManager, asset: str, name: str, message: str, metadata: dict[str, MetadataValue]
) -> AssetCheckResult:
    """A failed result for a check that could not look at its data, saying why."""
    log.error(message)
    return AssetCheckResult(
        asset_key=AssetKey(asset),
        check_name=name,
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=message,
        metadata=metadata,
    )


def fetch(mysql: MySQLResource, sql: str, params: Sequence[object] = (), recursive: bool = False) -> Offenders:
    """The offenders ``sql`` returns; a ``recursive`` query gets a recursion limit no tree of the lab's
    samples can reach, so a deep tree is checked, not cut short."""
    limit = recursion_limit(mysql.sample_id_span()) if recursive else None
    return Offenders.from_rows(mysql.fetch_all(sql, params, recursion_limit=limit))


def binary_collation(mysql: MySQLResource) -> str:
    """The binary collation of ``measurement_type``'s character set, so a check compares types byte by
    byte and tells apart the spellings the column's own collation holds equal."""
    return f"{mysql.column(SAMPLE_MEASUREMENTS, 'measurement_type').character_set}_bin"


def raise_if_blocking_failed(results: Iterable[AssetCheckResult], blocking: Iterable[str]) -> None:
    """After a step yielded its results: a failed blocking check fails the step with its own
    message (Dagster's own error names only the check), so the tables downstream are not rebuilt."""
    failed = [r for r in results if r.check_name in set(blocking) and not r.passed]
    if failed:
        raise Failure(
            description="; ".join(str(r.description) for r in failed),
            metadata=dict(failed[0].metadata or {}),
        )


# --- lineage ----------------------------------------------------------------------------------
