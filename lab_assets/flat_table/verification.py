"""After the flat table's write: the written rows checked against what is recorded for them, the
ones that differ against one snapshot of the sources, whose digests are then recorded; rows that
changed meanwhile are marked pending again (the SQL and the reasoning are in
lab_assets.flat_table.verification_sql)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from dagster import DagsterLogManager

from lab_assets.checks.flat_table_sql import lineage_proof_select
from lab_assets.checks.sql import OFFENDER_LIMIT, offenders
from lab_assets.digests.sql import DIGEST_STATE
from lab_assets.flat_table.sql import MeasurementColumn
from lab_assets.flat_table.verification_sql import (
    VERIFIED_ROWS_DEFINITION,
    digest_correction_statements,
    pending_after_verification_statements,
    stale_digests_select,
    suspect_rows_select,
    unbuilt_lineage_row_count_select,
    unbuilt_lineage_rows_select,
    verification_offenders_selects,
    verified_rows_select,
)
from lab_assets.mysql.resource import MySQLResource
from lab_assets.mysql.sessions import transaction
from lab_assets.mysql.threads import completed_in_threads
from lab_assets.names import (
    EXPERIMENT_MEASUREMENTS,
    PENDING_SAMPLES,
    SAMPLE_LINEAGE,
    SAMPLE_MEASUREMENT_DIGESTS,
    SAMPLE_MEASUREMENTS,
    STALE_SUFFIX,
    SUSPECTS_SUFFIX,
    VERIFIED_SUFFIX,
    WRITTEN_SUFFIX,
    helper_table,
)
from lab_assets.sources.value_types import ValueType
from lab_assets.sql.statements import qualified_name
from lab_assets.state.work_tables import add_to_work_table, buckets_ready, fill_work_table

SUSPECTS_TABLE = helper_table(SAMPLE_MEASUREMENT_DIGESTS, SUSPECTS_SUFFIX)
VERIFIED_TABLE = helper_table(SAMPLE_MEASUREMENT_DIGESTS, VERIFIED_SUFFIX)
STALE_TABLE = helper_table(SAMPLE_MEASUREMENT_DIGESTS, STALE_SUFFIX)
WRITTEN_TABLE = helper_table(EXPERIMENT_MEASUREMENTS, WRITTEN_SUFFIX)  # a refresh's written ids, kept for the proof


@dataclass(frozen=True)
class Offenders:
    """The first offenders (at most integrity.OFFENDER_LIMIT) and how many there are in all."""

    first: tuple[tuple, ...] = ()
    count: int = 0

    @classmethod
    def from_rows(cls, rows: Sequence[tuple]) -> Offenders:
        """From an integrity-shaped result: offender columns, then the total count."""
        return cls(tuple(row[:-1] for row in rows), int(rows[0][-1]) if rows else 0)


@dataclass(frozen=True)
class Verification:
    """What the verification after the flat table's write found: how many rows it checked, how many
    differed and changed meanwhile, and the offenders the flat table's checks report."""

    written: int | None  # rows written and covered (None: the whole table)
    suspects: int  # written rows that differ from what is recorded for them, checked against the sources
    changed_meanwhile: int  # of those, rows that no longer equal the sources: pending again
    presence_offenders: Offenders  # (sample_id, row_present): a sample without a row, or a row without a sample
    content_offenders: Offenders  # (sample_id,): rows that differ from the sources or the lineage
    lineage_offenders: Offenders  # (sample_id,): rows whose experiment_id / top_parent_id the proof rejects


def verify_written_rows(
    log: DagsterLogManager,
    mysql: MySQLResource,
    columns: Sequence[MeasurementColumn],
    whole_table: bool,
    value_type: ValueType,
) -> Verification:
    """Checks the rows just written (the pending ids, or the whole table after a full refresh)
    against the recorded digests and lineage, the suspects against one snapshot of the sources;
    corrects the recorded digests and consumes the pending marks, marking the rows that changed
    meanwhile again. Side by side on a second connection, the written rows' experiment_id and
    top_parent_id are proven against the lineage and the live samples
    (:func:`lab_assets.checks.sql.lineage_proof_select`). Run while the build lock is held.
    Cost: one scan of the written flat rows with key lookups into the state tables, then index
    lookups into the sources per suspect; the proof one more scan (bench/RESULTS.md).
    ``value_type``: the type the measurement columns were built with (sample_measurements.value's)."""
    started = time.monotonic()
    tables = mysql.tables
    output = tables.output_database
    written = None
    written_count = None
    if not whole_table:
        with mysql.connect() as connection:
            written_count = fill_work_table(
                connection, output, WRITTEN_TABLE, f"SELECT sample_id FROM {tables.qualified(PENDING_SAMPLES)}"
            )
        written = WRITTEN_TABLE
    tasks = {
        "verification": lambda: _verified(mysql, columns, written, value_type),
        "lineage proof": lambda: Offenders.from_rows(
            mysql.fetch_all(offenders(lineage_proof_select(tables, EXPERIMENT_MEASUREMENTS, written), "sample_id"))
        ),
    }
    results: dict[str, object] = {}
    for name, value, error in completed_in_threads(tasks, at_most=mysql.side_by_side(len(tasks))):
        if error is not None:
            raise error
        results[name] = value
    if written:
        mysql.execute(f"DROP TABLE IF EXISTS {qualified_name(output, written)}")
    verified = results["verification"]
    assert isinstance(verified, Verification)
    lineage = results["lineage proof"]
    assert isinstance(lineage, Offenders)
    result = replace(verified, written=written_count, lineage_offenders=lineage)
    message = (
        f"written rows checked against the recorded state in {time.monotonic() - started:.2f} s:"
        f" {result.suspects} differed and were checked against the sources"
    )
    if result.changed_meanwhile:
        log.warning(f"{message}; {result.changed_meanwhile} differ from the sources, marked for the next refresh")
    else:
        log.info(f"{message}; all current")
    return result


def _verified(
    mysql: MySQLResource, columns: Sequence[MeasurementColumn], written: str | None, value_type: ValueType
) -> Verification:
    tables = mysql.tables
    output = tables.output_database
    state_recorded = bool(mysql.column_names(SAMPLE_MEASUREMENT_DIGESTS)) and bool(mysql.column_names(SAMPLE_LINEAGE))
    charset = mysql.column(SAMPLE_MEASUREMENTS, "measurement_type").character_set or "utf8mb4"
    with mysql.connect() as connection:
        if state_recorded:
            suspects_sql, params = suspect_rows_select(tables, columns, charset, written, value_type)
            suspects = fill_work_table(connection, output, SUSPECTS_TABLE, suspects_sql, params=params)
            if written is None:
                (unbuilt,) = connection.exec_driver_sql(unbuilt_lineage_row_count_select(tables, SUSPECTS_TABLE)).one()
                if unbuilt:
                    suspects = add_to_work_table(
                        connection, output, SUSPECTS_TABLE, unbuilt_lineage_rows_select(tables)
                    )
        else:  # nothing recorded to compare with: every written row is checked against the sources
            suspects = fill_work_table(
                connection, output, SUSPECTS_TABLE, f"SELECT sample_id FROM {tables.qualified(PENDING_SAMPLES)}"
            )
            if written is None:
                suspects = add_to_work_table(
                    connection, output, SUSPECTS_TABLE, f"SELECT s.id FROM {tables.samples} AS s"
                )
        select_sql, params = verified_rows_select(tables, SUSPECTS_TABLE, columns, value_type)
        fill_work_table(connection, output, VERIFIED_TABLE, select_sql, VERIFIED_ROWS_DEFINITION, params)
        corrections: tuple[str, ...] = ()
        if state_recorded:
            fill_work_table(connection, output, STALE_TABLE, stale_digests_select(tables, VERIFIED_TABLE))
            corrections = digest_correction_statements(
                tables, VERIFIED_TABLE, STALE_TABLE, buckets_ready(connection, tables, DIGEST_STATE)
            )
        with transaction(connection):
            for statement in (*corrections, *pending_after_verification_statements(tables, VERIFIED_TABLE)):
                connection.exec_driver_sql(statement)
        presence_sql, content_sql = verification_offenders_selects(tables, VERIFIED_TABLE, OFFENDER_LIMIT)
        presence = Offenders.from_rows(connection.exec_driver_sql(presence_sql).fetchall())
        content = Offenders.from_rows(connection.exec_driver_sql(content_sql).fetchall())
        (behind,) = connection.exec_driver_sql(f"SELECT COUNT(*) FROM {tables.qualified(PENDING_SAMPLES)}").one()
        for table in (SUSPECTS_TABLE, VERIFIED_TABLE, STALE_TABLE):
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {qualified_name(output, table)}")
    return Verification(
        written=None,
        suspects=suspects,
        changed_meanwhile=int(behind),
        presence_offenders=presence,
        content_offenders=content,
        lineage_offenders=Offenders(),
    )
