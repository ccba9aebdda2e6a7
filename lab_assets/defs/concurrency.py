"""Concurrency names shared by the assets, the sensor and dagster.yaml.

* ``FLAT_TABLE_POOL``: the Dagster pool of every step that writes a table (``lab_source_derivations``,
  which writes ``measurement_types``, ``sample_lineage`` and ``sample_measurement_digests``, and
  ``experiment_measurements``). Two runs
  building into the same ``<table>__new`` staging table or work tables would clobber each other;
  dagster.yaml limits the pool to one step at a time (``concurrency: pools: default_limit: 1``),
  whatever launched the run (UI, sensor, ``dagster asset materialize`` on that instance).
* ``REFRESH_TAG_KEY``: the run tag the source-change sensor puts on its run requests
  (``sensors.TRIGGER_TAG``); dagster.yaml's ``tag_concurrency_limits`` lets the run queue start at
  most one such run at a time, so refresh requests wait in the queue instead of starting and
  waiting on the pool. (Not to be confused with ``assets.REFRESH_TAG``, ``lab_assets/refresh=full``,
  which asks for a full rebuild.)
"""

FLAT_TABLE_POOL = "lab_flat_table"
REFRESH_TAG_KEY = "lab_assets/trigger"
# The tags of a sensor-triggered refresh run, as lab_assets/defs/sensors.py sets them.
REFRESH_RUN_TAGS = {REFRESH_TAG_KEY: "lab_source_change_sensor"}
