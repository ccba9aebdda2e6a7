"""Pure code: naming rules, SQL builders, tree logic. No Dagster, no database connection."""
