"""experiment_measurements, the flat table: its pivot, its full-or-incremental plan, its write, the
verification of the rows written and what a materialization shows of it."""
