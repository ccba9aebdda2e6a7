"""Where each table lives: the one place that knows the source database from the output database.

The lab system's tables (``samples``, ``sample_measurements``) are read in the **source database**
(the database of ``LAB_DB_URL``), with SELECT only. Every table lab_assets creates (the flat table,
the catalog, lineage and digests, bucket, pending, work and staging tables) lives in the **output
database** (``LAB_OUTPUT_DATABASE``; the source database when unset). Both are on one server, so
one statement can read the sources and write lab_assets' tables. SQL builders take a
:class:`TableLocations` and ask it for each table's qualified name; none takes a bare database.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab_assets.lib.names import SAMPLE_MEASUREMENTS, SAMPLES, SOURCE_TABLES
from lab_assets.lib.sql import qualified_name, quote_identifier


@dataclass(frozen=True)
class TableLocations:
    source_database: str  # holds samples and sample_measurements; lab_assets only reads it
    output_database: str  # holds every table lab_assets creates
    # The source's index whose first column is samples.parent_id (the lab system's foreign key
    # makes one), or None if it has none: every recursive walk steps through it.
    parent_index: str | None = None

    def database_of(self, table: str) -> str:
        """The source database for the two source tables, the output database for any other."""
        return self.source_database if table in SOURCE_TABLES else self.output_database

    def qualified(self, table: str) -> str:
        """```database`.`table``` for ``table`` in the database it lives in."""
        return qualified_name(self.database_of(table), table)

    @property
    def samples(self) -> str:
        return self.qualified(SAMPLES)

    @property
    def sample_measurements(self) -> str:
        return self.qualified(SAMPLE_MEASUREMENTS)

    def children_join(self, parent_id_sql: str, alias: str = "child") -> str:
        """A recursive walk's step from parents (``parent_id_sql``, e.g. ``tree.sample_id``) to
        their children: ``STRAIGHT_JOIN samples AS child FORCE INDEX (parent index) ON ...``.

        Join order and index are fixed in the SQL, not left to the optimizer's estimates: with
        statistics taken while the table was empty (a restore, ``STATS_AUTO_RECALC=0``) MariaDB
        otherwise scans every sample once per level of the walk (``child ALL`` joined to the
        CTE's ``key0``), which made a 6,000-deep chain cost 25x a flat tree (bench/RESULTS.md)."""
        index = f" FORCE INDEX ({quote_identifier(self.parent_index)})" if self.parent_index else ""
        return f"STRAIGHT_JOIN {self.samples} AS {alias}{index} ON {alias}.parent_id = {parent_id_sql}"

    @property
    def separate(self) -> bool:
        """True when lab_assets writes into a database of its own."""
        return self.source_database != self.output_database

    @classmethod
    def single(cls, database: str) -> TableLocations:
        """Sources and lab_assets' tables in one database (the default layout)."""
        return cls(database, database)
