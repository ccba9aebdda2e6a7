"""After the flat table's write: the written rows checked against one snapshot of the sources,
the recorded digests set to that snapshot, rows that changed meanwhile marked pending again (the
SQL and the reasoning are in lab_assets.lib.verification)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from dagster import DagsterLogManager

from lab_assets.lib.flat_table import MeasurementColumn
from lab_assets.lib.names import (
    PENDING_SAMPLES,
    SAMPLE_MEASUREMENT_DIGESTS,
    STALE_SUFFIX,
    VERIFIED_SUFFIX,
    WRITTEN_SUFFIX,
    helper_table,
)
from lab_assets.lib.refresh import BUCKET_SUMS_DEFINITION
from lab_assets.lib.sql import qualified_name
from lab_assets.lib.verification import (
    VERIFIED_ROWS_DEFINITION,
    digest_correction_statements,
    pending_after_verification_statements,
    stale_digests_select,
    verified_rows_select,
    written_ids_selects,
)
from lab_assets.mysql import MySQLResource, column_names, transaction
from lab_assets.refresh.state_tables import DIGEST_STATE
from lab_assets.refresh.work_tables import add_to_work_table, fill_work_table

WRITTEN_TABLE = helper_table(SAMPLE_MEASUREMENT_DIGESTS, WRITTEN_SUFFIX)
VERIFIED_TABLE = helper_table(SAMPLE_MEASUREMENT_DIGESTS, VERIFIED_SUFFIX)
STALE_TABLE = helper_table(SAMPLE_MEASUREMENT_DIGESTS, STALE_SUFFIX)


@dataclass(frozen=True)
class Verification:
    verified: int  # flat rows checked (samples written, or every sample and row after a full build)
    changed_meanwhile: int  # of those, rows that no longer equal the sources: pending again
    digests_corrected: int  # recorded digests set to the verified snapshot's


def verify_written_rows(
    log: DagsterLogManager, mysql: MySQLResource, columns: Sequence[MeasurementColumn], whole_table: bool
) -> Verification:
    """Checks the rows just written (the pending ids, or every sample and flat row after a whole-table
    build) against one snapshot, corrects the recorded digests and consumes the pending marks, marking
    the rows that changed meanwhile again. Run while the build lock is held. Costs one index lookup
    per written sample into each source table and the flat table (bench/RESULTS.md)."""
    started = time.monotonic()
    tables = mysql.tables
    output = tables.output_database
    digests_recorded = bool(mysql.column_names(SAMPLE_MEASUREMENT_DIGESTS))
    with mysql.connect() as connection:
        written = PENDING_SAMPLES
        if whole_table:
            written = WRITTEN_TABLE
            every_sample, every_row = written_ids_selects(tables)
            fill_work_table(connection, output, written, every_sample)
            add_to_work_table(connection, output, written, every_row)
        select_sql, params = verified_rows_select(tables, written, columns)
        verified = fill_work_table(connection, output, VERIFIED_TABLE, select_sql, VERIFIED_ROWS_DEFINITION, params)
        corrections: tuple[str, ...] = ()
        stale = 0
        if digests_recorded:
            stale = fill_work_table(connection, output, STALE_TABLE, stale_digests_select(tables, VERIFIED_TABLE))
            buckets_ready = column_names(connection, output, DIGEST_STATE.buckets_table) == list(
                BUCKET_SUMS_DEFINITION.column_names
            )
            corrections = digest_correction_statements(
                tables, VERIFIED_TABLE, STALE_TABLE, DIGEST_STATE.buckets_table if buckets_ready else None
            )
        with transaction(connection):
            for statement in (*corrections, *pending_after_verification_statements(tables, VERIFIED_TABLE)):
                connection.exec_driver_sql(statement)
        (behind,) = connection.exec_driver_sql(f"SELECT COUNT(*) FROM {tables.qualified(PENDING_SAMPLES)}").one()
        for table in (WRITTEN_TABLE, VERIFIED_TABLE, STALE_TABLE):
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {qualified_name(output, table)}")
    result = Verification(verified=verified, changed_meanwhile=int(behind), digests_corrected=stale)
    message = f"{verified} written rows verified against the sources in {time.monotonic() - started:.2f} s"
    if result.changed_meanwhile:
        log.warning(f"{message}: {result.changed_meanwhile} changed while being written; marked for the next refresh")
    else:
        log.info(f"{message}: all current")
    return result
