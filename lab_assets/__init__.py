"""lab_assets: Dagster assets that turn a lab's MySQL ``samples`` and ``sample_measurements`` tables into
one flat, always-current table, ``experiment_measurements`` (one row per sample), built inside MySQL."""
