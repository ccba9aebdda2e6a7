"""What a materialization of ``experiment_measurements`` shows of the table it wrote: the first
rows as a Markdown table (``preview``), each measurement column's non-NULL count, minimum and
maximum (``column_summary``, read from ``lab_column_summary``, which the write keeps exact:
lab_assets.flat_table.summary), and for an incremental refresh which samples it rewrote
(``rewritten_sample_ids``). Read by the IO manager right after the write, on its connection, so
they describe exactly the table the materialization reports; the statements are
:mod:`lab_assets.flat_table.preview_sql`'s and :mod:`lab_assets.flat_table.summary_sql`'s (a
LIMIT or a row per column: never the table in Python)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dagster import MetadataValue
from sqlalchemy.engine import Connection

from lab_assets.flat_table.preview_sql import PREVIEW_ROWS, preview_select, rewritten_ids_select
from lab_assets.flat_table.sql import IDENTIFYING_COLUMNS, MeasurementColumn
from lab_assets.flat_table.summary_sql import summary_rows_select
from lab_assets.names import COLUMN_SUMMARY
from lab_assets.sources.value_types import ValueType


def _cell(value: object) -> str:
    """A value as a Markdown table cell: NULL empty, ``|`` and line breaks escaped."""
    if value is None:
        return ""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Rows as a Markdown table under ``header``, each value a cell that cannot break the table's layout."""
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def table_report(
    schema: str, table: str, columns: Sequence[MeasurementColumn], value_type: ValueType
) -> Callable[[Connection], Mapping[str, Any]]:
    """The metadata above (but the rewritten ids) as the IO manager's ``report``: a function of
    its connection, called once the table is written."""
    names = [c.name for c in IDENTIFYING_COLUMNS] + [c.column_name for c in columns]

    def report(connection: Connection) -> Mapping[str, Any]:
        rows = connection.exec_driver_sql(preview_select(schema, table, names)).fetchall()
        metadata: dict[str, Any] = {
            "preview": MetadataValue.md(
                f"First {min(len(rows), PREVIEW_ROWS)} rows by sample_id (NULL shown empty):\n\n"
                + markdown_table(names, rows)
            )
        }
        if columns:
            stored = connection.exec_driver_sql(summary_rows_select(schema, COLUMN_SUMMARY, value_type)).fetchall()
            summary = {row[0]: tuple(row[1:]) for row in stored}
            lines = [(c.column_name, c.measurement_type, *summary[c.column_name]) for c in columns]
            header = ["column", "measurement type", "non-null values", "min", "max"]
            metadata["column_summary"] = MetadataValue.md(markdown_table(header, lines))
        return metadata

    return report


def rewritten_ids_metadata(
    fetch_all: Callable[[str], list[tuple]], schema: str, keys_table: str, marker: int, count: int
) -> dict[str, Any]:
    """``rewritten_sample_ids``: the first ids of the refresh's pending marks and how many there are
    (``count``, without the full-refresh marker), read before the write consumes nothing."""
    ids = [int(r[0]) for r in fetch_all(rewritten_ids_select(schema, keys_table, marker))]
    more = count - len(ids)
    shown = ", ".join(map(str, ids)) + (f" ... and {more} more" if more > 0 else "")
    return {"rewritten_samples": count, "rewritten_sample_ids": MetadataValue.text(shown or "none")}
