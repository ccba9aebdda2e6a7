"""The tables derived from the sources (catalog, lineage, digests), computed side by side in one step."""
