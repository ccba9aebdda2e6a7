"""measurement_types: one row per measurement type, and the column name each type keeps in the flat table."""
