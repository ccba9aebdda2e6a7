"""sample_measurement_digests: each sample's measurement count and hash sums, and how a refresh finds
the samples whose measurements changed."""
