"""The benchmarks' source data: generated in the seed's distribution into a database of its own,
emptied of outputs between timed builds, and changed the way a lab changes it."""

from __future__ import annotations

import argparse
import time

from bench.lib.server import connect, one_row, peak_rss_mib
from lab_assets.local_lab import source_schema_statements
from lab_assets_tests.lab_data import generate_chunks, insert

SEED_ROWS = 20
GENERATE_CHUNK_SAMPLES = 100_000


def parse_size(text: str) -> int:
    """``100k``, ``1M``, ``2.5M``, ``1_000_000`` or ``300000`` -> sample count."""
    text = text.strip().replace("_", "")
    multiplier = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    number = text[:-1] if multiplier != 1 else text
    value = float(number) * multiplier
    if value != int(value) or value < 0:
        raise argparse.ArgumentTypeError(f"not a sample count: {text!r}")
    return int(value)


def prepare_database(
    size: int, reuse: bool, prefix: str = "bench", database: str | None = None, only_reuse: bool = False
) -> str:
    """``database`` (default ``<prefix>_<size>``) holding the source schema, the 20 fixed samples
    and ``size`` generated samples (lab_data.generate's rows, produced and inserted in chunks).
    With ``reuse``, an existing database with the right sample count is kept; with ``only_reuse``
    one that is missing or of another count stops the benchmark instead of being replaced."""
    database = database or f"{prefix}_{size}"
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (database,))
        if reuse and cursor.fetchone():
            cursor.execute(f"SELECT COUNT(*) FROM `{database}`.samples")
            if one_row(cursor)[0] == size + SEED_ROWS:
                print(f"[{size}] reusing {database}", flush=True)
                return database
        if only_reuse:
            raise SystemExit(f"{database} is missing or does not hold {size:,} generated samples: not replaced")
        started = time.monotonic()
        cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cursor.execute(f"CREATE DATABASE `{database}`")
    generating = inserting = 0.0
    with connect(database) as connection:
        with connection.cursor() as cursor:
            for statement in source_schema_statements():
                cursor.execute(statement)
        chunks = generate_chunks(size, chunk_samples=GENERATE_CHUNK_SAMPLES)
        while True:
            step = time.monotonic()
            chunk = next(chunks, None)
            generating += time.monotonic() - step
            if chunk is None:
                break
            step = time.monotonic()
            insert(connection, *chunk)
            inserting += time.monotonic() - step
        step = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE TABLE samples, sample_measurements")
            cursor.fetchall()
        analyzing = time.monotonic() - step
    print(
        f"[{size}] generated {database} in {time.monotonic() - started:.1f} s (Python rows {generating:.1f} s,"
        f" INSERTs {inserting:.1f} s, ANALYZE {analyzing:.1f} s; bench process peak RSS {peak_rss_mib():.0f} MiB)",
        flush=True,
    )
    return database


def drop_outputs(database: str) -> None:
    """Drops every table but the two sources, so each timed build starts from nothing."""
    with connect(database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            " AND table_name NOT IN ('samples', 'sample_measurements')",
            (database,),
        )
        names = [row[0] for row in cursor.fetchall()]
        if names:
            cursor.execute("DROP TABLE " + ", ".join(f"`{n}`" for n in names))


def change_one_percent(database: str, round_number: int = 0) -> int:
    """Changes 1% of the samples the way a lab does: corrected values for 1% of the samples and
    10 samples moved to become roots (their subtrees change root; another 10 in every round, so
    each round moves samples). Returns the samples touched."""
    with connect(database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sample_measurements SET value = value + 1 WHERE sample_id % 100 = 0 AND measurement_type = 'vol'"
        )
        cursor.execute(
            "SELECT COUNT(DISTINCT sample_id) FROM sample_measurements"
            " WHERE sample_id % 100 = 0 AND measurement_type = 'vol'"
        )
        (touched,) = one_row(cursor)
        cursor.execute("SELECT MAX(id) FROM samples")
        (max_id,) = one_row(cursor)
        moved = [max_id * k // 11 - round_number for k in range(1, 11)]
        cursor.execute(f"UPDATE samples SET parent_id = NULL WHERE id IN ({', '.join(map(str, moved))})")
        connection.commit()
    return int(touched) + len(moved)
