"""The lab's source tables: where they live, what the lab calls them and their columns, their value
type and the row hashes read from them."""
