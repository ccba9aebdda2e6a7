"""Shared SQL helpers: quoted identifiers and statement builders, and the chunked fill of a full refresh."""
