"""The incremental refresh: between ``defs/`` (the Dagster declarations) and ``lib/`` (pure SQL
builders), every import pointing down.

* :mod:`.state_tables`: one frozen spec per state table (lineage, digests) naming its table,
  definition, bucket scheme, bucket table and work tables by role.
* :mod:`.work_tables`: change detection in two levels (bucket sums, then ids) into work tables.
* :mod:`.writes`: "write the changed rows" and "write the whole table" of a state table.
* :mod:`.derivations`: the catalog, the lineage and the digests computed side by side, each
  written (after its pending marks) as soon as it is computed, while the others still run.
* :mod:`.pending`: the pending-table protocol between the state tables and the flat table.
* :mod:`.plan`: the flat table's full-or-incremental decision (pure).
* :mod:`.flat_table`: the flat table's write, as the plan decides.

How changes are found, and why state is always recorded from data read no later than the data
the flat rows are built from, is in :mod:`lab_assets.lib.refresh`.
"""
