"""The key columns of the source tables' row events: where they are, and the ids a transaction's
row events name. Only these columns are read from a row image; no row is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pymysqlreplication.bitmap import BitGet
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent
from sqlalchemy.engine import Connection

from lab_assets.change_feed.sql import source_columns_select
from lab_assets.names import SAMPLE_MEASUREMENTS, SAMPLES
from lab_assets.sources.locations import TableLocations

_FULL_IMAGE_FIX = "set binlog_row_image=FULL (SET GLOBAL binlog_row_image=FULL and the server's configuration)"


@dataclass
class KeyColumns:
    """Where the key columns are in one source table's rows (0-based), and how many it has."""

    count: int
    positions: dict[str, int] = field(default_factory=dict)


def key_columns(connection: Connection, tables: TableLocations) -> dict[str, KeyColumns] | str:
    """The lab's two tables by their real name (as the binlog names them), or a sentence saying
    what is missing."""
    samples, measurements = tables.source(SAMPLES), tables.source(SAMPLE_MEASUREMENTS)
    rows = connection.exec_driver_sql(
        source_columns_select(), (tables.source_database, samples.name, measurements.name)
    ).all()
    found: dict[str, KeyColumns] = {}
    for source, keys in ((samples, ("id", "parent_id")), (measurements, ("sample_id", "measurement_type"))):
        columns = [(str(r[0]), str(r[1]).lower()) for r in rows if str(r[0]).lower() == source.name.lower()]
        if not columns:
            return f"{tables.source_database} has no table {source.name} this account can see"
        names = [name for _, name in columns]
        for ours in keys:
            theirs = source.column(ours)
            if theirs.lower() not in names:
                return f"{tables.source_database}.{source.name} has no column {theirs}"
        found[columns[0][0]] = KeyColumns(len(names), {ours: names.index(source.column(ours).lower()) for ours in keys})
    return found


def _value(values: dict, bitmap: bytes, index: int) -> tuple[bool, object]:
    """(present, value) of column ``index`` of a row image (the library gives a row's values in
    column order; a column MINIMAL leaves out is absent from the image's bitmap, not NULL)."""
    if not BitGet(bitmap, index):
        return False, None
    return True, list(values.values())[index]


def _images(event) -> list[tuple[str, dict, bytes]]:
    """Each row's images as (``before`` or ``after``, values, columns-present bitmap), in row order."""
    if isinstance(event, UpdateRowsEvent):
        return [
            image
            for row in event.rows or ()
            for image in (
                ("before", row["before_values"], event.columns_present_bitmap),
                ("after", row["after_values"], event.columns_present_bitmap2),
            )
        ]
    name = "after" if isinstance(event, WriteRowsEvent) else "before"
    return [(name, row["values"], event.columns_present_bitmap) for row in event.rows or ()]


class TransactionIds:
    """The ids the row events of the transaction being read name; counted once its end is read."""

    def __init__(self) -> None:
        """A transaction whose row events are still to be read: no ids named, no measurement row come or gone."""
        self.changed: set[int] = set()
        self.moved: set[int] = set()
        self.deleted: set[int] = set()
        # A measurement row came or went, or got another sample or type, or a sample went (its
        # measurements may go by cascade): what the catalog counts changed. Value-only updates
        # leave the catalog as it was.
        self.rows_came_or_went = False
        # Per source table (lab_assets' name): rows written minus rows deleted by its row events.
        self.row_delta: dict[str, int] = {}
        self.samples_deleted = False

    def add_table_change(self, event, is_samples: bool) -> None:
        """Take only which table a rows event changed and by how many rows (no update's row
        images are decoded): what an observation needs, not the ids."""
        table = SAMPLES if is_samples else SAMPLE_MEASUREMENTS
        sign = 1 if isinstance(event, WriteRowsEvent) else -1 if isinstance(event, DeleteRowsEvent) else 0
        rows = len(event.rows or ()) if sign else 0
        self.row_delta[table] = self.row_delta.get(table, 0) + sign * rows
        self.samples_deleted = self.samples_deleted or (is_samples and sign < 0 and rows > 0)

    def add_rows(self, event, keys: KeyColumns, is_samples: bool) -> str | None:
        """Take the ids of every row of a rows event of a source table (``is_samples``: the samples
        table, else the measurements table); a sentence instead when the before image leaves out
        the id column, which only a MINIMAL row image on a table keyed otherwise does."""
        id_index = keys.positions["id" if is_samples else "sample_id"]
        images = _images(event)
        self.add_table_change(event, is_samples)
        for number in range(0, len(images), 2 if isinstance(event, UpdateRowsEvent) else 1):
            row_images = images[number : number + (2 if isinstance(event, UpdateRowsEvent) else 1)]
            ids = set()
            for name, values, bitmap in row_images:
                present, value = _value(values, bitmap, id_index)
                if not present and name == "before":
                    return (
                        f"the binlog's row images of {event.schema}.{event.table} leave out its id column"
                        f" (binlog_row_image=MINIMAL and a primary key without it): {_FULL_IMAGE_FIX}"
                    )
                if value is not None:
                    ids.add(int(value))  # type: ignore[arg-type] - the id column's value, an integer
            self.changed |= ids
            if isinstance(event, (WriteRowsEvent, DeleteRowsEvent)) and not (
                is_samples and isinstance(event, WriteRowsEvent)
            ):
                self.rows_came_or_went = True
            elif not is_samples and isinstance(event, UpdateRowsEvent) and self._moves_a_row(row_images, keys):
                self.rows_came_or_went = True
            if is_samples and isinstance(event, DeleteRowsEvent):
                self.deleted |= ids
            if is_samples and isinstance(event, UpdateRowsEvent):
                (_, before, before_bits), (_, after, after_bits) = row_images
                had, old_parent = _value(before, before_bits, keys.positions["parent_id"])
                has, new_parent = _value(after, after_bits, keys.positions["parent_id"])
                # MINIMAL logs parent_id after only when assigned, and not before: moved, to be safe.
                if len(ids) > 1 or (has and (not had or old_parent != new_parent)):
                    self.moved |= ids
                    self.rows_came_or_went = self.rows_came_or_went or len(ids) > 1
        return None

    @staticmethod
    def _moves_a_row(row_images: list[tuple[str, dict, bytes]], keys: KeyColumns) -> bool:
        """An update of a measurement row that gives it another sample or type (or, under a
        MINIMAL image, assigns either: counted as a change, to be safe)."""
        (_, before, before_bits), (_, after, after_bits) = row_images
        for column in ("sample_id", "measurement_type"):
            had, old = _value(before, before_bits, keys.positions[column])
            has, new = _value(after, after_bits, keys.positions[column])
            if has and (not had or old != new):
                return True
        return False
