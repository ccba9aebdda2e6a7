"""sample_lineage: each sample's root and depth, and how a refresh finds the samples whose tree changed."""
