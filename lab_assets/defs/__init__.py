"""The Dagster definitions: the asset graph, its resources, jobs, schedule, sensor and freshness
report."""
