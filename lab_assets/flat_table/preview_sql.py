"""SQL for what a materialization of ``experiment_measurements`` shows of the table itself: its
first rows and the ids of the samples a refresh rewrote (the column summary's is
lab_assets.flat_table.summary_sql's). Each is one set-based statement with a LIMIT, so what
reaches Python stays a few dozen rows however large the table is."""

from __future__ import annotations

from collections.abc import Sequence

from lab_assets.sql.statements import qualified_name, quote_identifier

PREVIEW_ROWS = 20  # the rows of the preview, the smallest sample ids first
REWRITTEN_IDS_SHOWN = 50  # the rewritten sample ids listed (the count says how many in all)


def preview_select(schema: str, table: str, columns: Sequence[str], limit: int = PREVIEW_ROWS) -> str:
    """The first ``limit`` rows by sample_id (the primary key, so an index range, not a sort)."""
    listed = ", ".join(quote_identifier(c) for c in columns)
    return f"SELECT {listed} FROM {qualified_name(schema, table)} ORDER BY sample_id LIMIT {int(limit)}"


def rewritten_ids_select(schema: str, keys_table: str, skip_id: int, limit: int = REWRITTEN_IDS_SHOWN) -> str:
    """The first ``limit`` sample ids of ``keys_table`` (the refresh's pending marks), without the
    full-refresh marker ``skip_id``; the ids a refresh rewrites or removes."""
    return (
        f"SELECT sample_id FROM {qualified_name(schema, keys_table)} WHERE sample_id <> {int(skip_id)}"
        f" ORDER BY sample_id LIMIT {int(limit)}"
    )
