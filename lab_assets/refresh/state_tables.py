"""One frozen spec per state table: what the refresh records of each source, and the tables that
go with it, named by role (never picked by position)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lab_assets.lib.lineage import LINEAGE_TABLE
from lab_assets.lib.names import (
    CANDIDATES_SUFFIX,
    CHANGES_SUFFIX,
    LIVE_SUFFIX,
    MOVED_SUFFIX,
    SAMPLE_LINEAGE,
    SAMPLE_MEASUREMENT_DIGESTS,
    helper_table,
)
from lab_assets.lib.refresh import (
    DIGEST_TABLE_DEFINITION,
    LINEAGE_BUCKETS,
    MEASUREMENT_BUCKETS,
    BucketScheme,
    digest_bucket_sums_select,
    stored_lineage_bucket_sums_select,
)
from lab_assets.lib.sql import TableDefinition
from lab_assets.lib.tables import TableLocations


@dataclass(frozen=True, kw_only=True)
class StateTable:
    """A table recording what the last refresh saw of a source, kept with a bucket table of sums.

    ``stored_sums_select(tables)`` sums the whole state table per bucket (how the bucket table is
    built from scratch). ``extra_role`` names the third work table: ``moved`` samples for lineage,
    the candidates' ``live`` digests for digests."""

    name: str
    definition: TableDefinition
    buckets: BucketScheme
    stored_sums_select: Callable[[TableLocations], str]
    extra_role: str

    @property
    def buckets_table(self) -> str:
        return self.buckets.table_for(self.name)

    @property
    def candidates_table(self) -> str:
        """Every sample id of the buckets whose live sums differ from the stored ones."""
        return helper_table(self.name, CANDIDATES_SUFFIX)

    @property
    def changes_table(self) -> str:
        """The changed sample ids among the candidates (the rows to rewrite)."""
        return helper_table(self.name, CHANGES_SUFFIX)

    @property
    def extra_table(self) -> str:
        return helper_table(self.name, self.extra_role)

    @property
    def work_tables(self) -> tuple[str, ...]:
        """Every work table of a refresh, dropped once the write is done."""
        return (self.candidates_table, self.changes_table, self.extra_table)


LINEAGE_STATE = StateTable(
    name=SAMPLE_LINEAGE,
    definition=LINEAGE_TABLE,
    buckets=LINEAGE_BUCKETS,
    stored_sums_select=stored_lineage_bucket_sums_select,
    extra_role=MOVED_SUFFIX,
)
DIGEST_STATE = StateTable(
    name=SAMPLE_MEASUREMENT_DIGESTS,
    definition=DIGEST_TABLE_DEFINITION,
    buckets=MEASUREMENT_BUCKETS,
    stored_sums_select=digest_bucket_sums_select,
    extra_role=LIVE_SUFFIX,
)
