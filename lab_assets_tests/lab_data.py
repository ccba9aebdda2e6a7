"""Test data and the independent recomputation of the flat table, in plain Python.

Nothing here uses the project's SQL: the expected table is computed from the source rows by
walking parent pointers and pivoting with dictionaries, so a bug in lab_assets' SQL cannot hide
in the oracle too.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal

import pymysql
import sqlalchemy as sa

SEED_SAMPLE_COUNT = 20
OPTIONAL_TYPES = ("smoot", "foo", "bar", "len", "area")

Sample = tuple[int, "int | None", "int | None"]  # id, parent_id, experiment_id
Measurement = tuple["int | None", "str | None", "Decimal | None"]  # sample_id, type, value


def server_connection(server_url: sa.URL, database: str | None = None) -> pymysql.connections.Connection:
    """An autocommit PyMySQL connection to the server of ``server_url`` (its database part ignored)."""
    return pymysql.connect(
        host=server_url.host or "127.0.0.1",
        port=server_url.port or 3306,
        user=server_url.username or "root",
        password=server_url.password or "",
        database=database,
        autocommit=True,
        local_infile=False,
    )


def generate_chunks(
    sample_count: int, first_id: int = SEED_SAMPLE_COUNT + 1, seed: int = 1234, chunk_samples: int = 100_000
) -> Iterator[tuple[list[Sample], list[Measurement]]]:
    """:func:`generate`'s rows in chunks of ``chunk_samples`` samples (and their measurements),
    from the same random stream: the chunks put together are exactly ``generate(sample_count,
    first_id, seed)``. For benchmark sizes that would not fit in memory as one list."""
    rng = random.Random(seed)

    def value() -> Decimal:
        return Decimal(rng.randrange(0, 10**9)).scaleb(-6)

    end = first_id + sample_count
    for chunk_start in range(first_id, end, chunk_samples):
        samples: list[Sample] = []
        measurements: list[Measurement] = []
        for n in range(chunk_start, min(chunk_start + chunk_samples, end)):
            parent = None if rng.random() < 0.05 or n == 1 else rng.randrange(max(1, n - 100), n)
            samples.append((n, parent, (n % 20) + n // 1000 + 1))
            if rng.random() < 0.95:
                measurements.append((n, "vol", value()))
            if rng.random() < 0.7:
                measurements.append((n, "ph", value()))
            if rng.random() < 0.2:
                measurements.append((n, rng.choice(OPTIONAL_TYPES), value()))
        yield samples, measurements


def generate(sample_count: int, first_id: int = SEED_SAMPLE_COUNT + 1, seed: int = 1234):
    """Samples and measurements in the seed generator's distribution.

    Each new sample's parent is drawn from the previous 100 ids (5% are roots); per sample ``vol``
    with p=0.95, ``ph`` with p=0.7 and one of smoot/foo/bar/len/area with p=0.2;
    experiment_id = (n % 20) + n // 1000 + 1.
    """
    samples: list[Sample] = []
    measurements: list[Measurement] = []
    for chunk_samples, chunk_measurements in generate_chunks(sample_count, first_id, seed):
        samples += chunk_samples
        measurements += chunk_measurements
    return samples, measurements


def insert(
    connection: pymysql.connections.Connection, samples: Sequence[Sample], measurements: Sequence[Measurement]
) -> None:
    """Bulk insert (multi-row INSERTs) with FK checks off: generated parents may come later in a
    batch, and bad-input tests need parents that do not exist."""
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION foreign_key_checks = 0")
        for start in range(0, len(samples), 20000):
            cursor.executemany(
                "INSERT INTO samples (id, parent_id, experiment_id) VALUES (%s, %s, %s)", samples[start : start + 20000]
            )
        for start in range(0, len(measurements), 20000):
            cursor.executemany(
                "INSERT INTO sample_measurements (sample_id, measurement_type, value) VALUES (%s, %s, %s)",
                measurements[start : start + 20000],
            )
        cursor.execute("SET SESSION foreign_key_checks = 1")
    connection.commit()


def read_sources(
    connection: pymysql.connections.Connection, value_sql: str = "{}"
) -> tuple[list[Sample], list[Measurement]]:
    """Both source tables' rows; each value read as ``value_sql.format(column)`` (e.g.
    ``CAST({} AS DOUBLE)`` for a FLOAT, which the server otherwise shows with 6 digits)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, parent_id, experiment_id FROM samples")
        samples = [tuple(r) for r in cursor.fetchall()]
        cursor.execute(f"SELECT sample_id, measurement_type, {value_sql.format('value')} FROM sample_measurements")
        measurements = [tuple(r) for r in cursor.fetchall()]
    return samples, measurements


def roots_and_depths(samples: Iterable[Sample]) -> dict[int, tuple[int | None, int | None]]:
    """sample_id -> (root id, depth) by walking parent pointers; (None, None) when the walk hits a
    cycle or a parent that does not exist."""
    parent_of = {sample_id: parent for sample_id, parent, _ in samples}
    result: dict[int, tuple[int | None, int | None]] = {}
    for start in parent_of:
        path: list[int] = []
        on_path: set[int] = set()
        node: int | None = start
        while True:
            if node in result:
                root, depth = result[node]
                break
            if node not in parent_of or node in on_path:
                root, depth = None, None
                break
            if parent_of[node] is None:
                root, depth = node, 0
                result[node] = (root, depth)
                break
            path.append(node)
            on_path.add(node)
            node = parent_of[node]
        for step, walked in enumerate(reversed(path), start=1):
            result[walked] = (root, None if depth is None else depth + step)
    return result


def expected_flat_table(
    samples: Sequence[Sample], measurements: Sequence[Measurement], column_for_type=lambda t: f"measurement_{t}"
) -> tuple[list[str], dict[int, dict[str, object]]]:
    """(measurement column names, sample_id -> full row) as experiment_measurements must hold it.
    A (sample, type) measured twice keeps the largest value; NULL values are NULL cells."""
    roots = roots_and_depths(samples)
    sample_ids = {s[0] for s in samples}
    columns = sorted({column_for_type(t) for s, t, _ in measurements if t is not None and s in sample_ids})
    rows = {
        sample_id: {
            "experiment_id": experiment_id,
            "top_parent_id": roots[sample_id][0],
            "sample_id": sample_id,
            **dict.fromkeys(columns),
        }
        for sample_id, _, experiment_id in samples
    }
    for sample_id, measurement_type, value in measurements:
        if sample_id not in rows or measurement_type is None or value is None:
            continue
        row = rows[sample_id]
        column = column_for_type(measurement_type)
        if row[column] is None or value > row[column]:
            row[column] = value
    return columns, rows


def actual_flat_table(
    connection: pymysql.connections.Connection,
    table: str = "experiment_measurements",
    database: str | None = None,
    value_sql: str = "{}",
):
    """(column names in table order, sample_id -> row) read back from the connection's database,
    or from ``database``; measurement cells read as ``value_sql.format(column)`` (read_sources)."""
    source = f"{f'`{database}`.' if database else ''}`{table}`"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {source} LIMIT 0")
        names = [d[0] for d in cursor.description]
        cells = [n if not n.startswith("measurement_") else f"{value_sql.format(f'`{n}`')} AS `{n}`" for n in names]
        cursor.execute(f"SELECT {', '.join(cells)} FROM {source}")
        rows = {row[names.index("sample_id")]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    return names, rows


def documented_column_name(measurement_type: str) -> str:
    """The README's naming rule, written again here (not imported) so the tests check the project
    against the documentation: plain lowercase identifiers keep their name, anything else gets
    ``measurement_<slug>__<first 8 hex digits of SHA-1 of the exact type>``."""
    if (
        re.fullmatch(r"[a-z][a-z0-9_]*", measurement_type)
        and "__" not in measurement_type
        and len(measurement_type) <= 52
    ):
        return f"measurement_{measurement_type}"
    slug = re.sub(r"[^a-z0-9]+", "_", measurement_type.lower()).strip("_")[:42].strip("_") or "type"
    return f"measurement_{slug}__{hashlib.sha1(measurement_type.encode('utf-8')).hexdigest()[:8]}"


def column_for_types(types: Iterable[str | None], case_insensitive: bool = True):
    """type -> column name, for a source column whose collation is case-insensitive (types that
    differ only in ASCII case are one type, named by their greatest spelling byte-wise) or
    binary. Test types avoid trailing spaces and non-ASCII letters, where collations differ more."""
    key = (lambda t: t.lower()) if case_insensitive else (lambda t: t)
    representative: dict[str, str] = {}
    for t in types:
        if t is None:
            continue
        k = key(t)
        if k not in representative or t.encode("utf-8") > representative[k].encode("utf-8"):
            representative[k] = t
    return lambda t: documented_column_name(representative[key(t)])


def source_snapshot(connection: pymysql.connections.Connection) -> tuple:
    """Everything in the two source tables (all columns, sorted) plus the server's checksums."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, parent_id, experiment_id, ts FROM samples ORDER BY id")
        samples = cursor.fetchall()
        cursor.execute(
            "SELECT sample_id, measurement_type, value FROM sample_measurements"
            " ORDER BY sample_id, measurement_type COLLATE utf8mb4_bin, value"
        )
        measurements = cursor.fetchall()
        cursor.execute("CHECKSUM TABLE samples, sample_measurements EXTENDED")
        checksums = cursor.fetchall()
    return samples, measurements, checksums


def assert_flat_table_is_exact(
    connection: pymysql.connections.Connection,
    output_database: str | None = None,
    value_sql: str = "{}",
    column_for_type=None,
) -> tuple[list[str], dict[int, dict[str, object]]]:
    """experiment_measurements, whole (column names and order, every row, every cell), equals the
    recomputation from the current source rows (the connection's database); returns the table as
    read (from ``output_database`` when lab_assets writes into a database of its own). Values are
    compared as the driver reads them exactly (DECIMAL as Decimal, DOUBLE as float, text as str:
    MAX of text is byte-wise as in UTF-8 and Latin-1, Python's order of code points);
    ``value_sql`` reads them otherwise (read_sources); ``column_for_type`` names each type's column
    (default ``measurement_<type>``)."""
    source = read_sources(connection, value_sql)
    names, actual = actual_flat_table(connection, database=output_database, value_sql=value_sql)
    columns, expected = expected_flat_table(
        *source, **({"column_for_type": column_for_type} if column_for_type else {})
    )
    assert names == ["experiment_id", "top_parent_id", "sample_id", *columns]
    assert actual == expected
    return names, actual


# --- the kinds of change a lab makes, each applied to a built database ----------------------------
# (used by the refresh and the sensor tests; ``db`` is a lab_assets_tests.databases.LabDatabase)


def _max_id(db):
    return db.query("SELECT MAX(id) FROM samples")[0][0]


def new_samples(db):
    samples, measurements = generate(50, first_id=_max_id(db) + 1, seed=7)
    with db.connect() as connection:
        insert(connection, samples, measurements)


def late_measurements(db):
    db.execute("INSERT INTO sample_measurements VALUES (1, 'vol', 1.5), (4, 'ph', 6.25), (500, 'ph', 3.125)")


def changed_values(db):
    db.execute(
        "UPDATE sample_measurements SET value = value + 1 WHERE sample_id IN (2, 9, 700) AND measurement_type = 'ph'"
    )


def deleted_measurements(db):
    db.execute("DELETE FROM sample_measurements WHERE sample_id IN (3, 12, 900)")


def swapped_values(db):
    # Samples 2 and 3 trade their pH values: the same rows by (type, value), now on other samples
    # of one bucket, so only hashes that include the sample id see it.
    db.execute(
        "UPDATE sample_measurements SET value = CASE sample_id WHEN 2 THEN 7.0 ELSE 5.0 END"
        " WHERE sample_id IN (2, 3) AND measurement_type = 'ph'"
    )


def swapped_parents(db):
    # Samples 6 and 14 (one lineage bucket) trade parents: subtrees under 2 and 13 trade places.
    db.execute("UPDATE samples SET parent_id = CASE id WHEN 6 THEN 13 ELSE 2 END WHERE id IN (6, 14)")


def brand_new_type(db):
    db.execute("INSERT INTO sample_measurements VALUES (5, 'temp', 21.5), (1000, 'temp', 19)")


def moved_subtree(db):
    # Sample 2 (root 1, with children 6 and 9 and their subtrees) moves under root 13; a generated
    # sample moves under root 5.
    db.execute("UPDATE samples SET parent_id = 13 WHERE id = 2", "UPDATE samples SET parent_id = 5 WHERE id = 1500")


def deleted_samples(db):
    # ON DELETE CASCADE removes the subtree and its measurements, as the lab system would.
    db.execute("DELETE FROM samples WHERE id IN (17, 2500)")


def deep_chain(db):
    first = _max_id(db) + 1
    chain = [(first, None, 3)] + [(n, n - 1, 3) for n in range(first + 1, first + 5_000)]
    with db.connect() as connection:
        insert(connection, chain, [(first + 4_999, "vol", Decimal("2.5"))])


def both_tables_in_one_transaction(db):
    # One transaction over both tables, every kind at once: a sample added with measurements, a
    # value changed, measurements deleted, a sample moved under another parent (with its subtree),
    # another's experiment changed, a sample deleted; the delta of each bucket sum sees them together.
    new = _max_id(db) + 1
    db.execute(
        "START TRANSACTION",
        f"INSERT INTO samples (id, parent_id, experiment_id) VALUES ({new}, 8, 4)",
        f"INSERT INTO sample_measurements VALUES ({new}, 'ph', 6.5), ({new}, 'vol', 2.25)",
        "UPDATE sample_measurements SET value = value + 2 WHERE sample_id IN (40, 43)",
        "DELETE FROM sample_measurements WHERE sample_id IN (41, 42)",
        "UPDATE samples SET parent_id = 3 WHERE id = 1200",
        "UPDATE samples SET experiment_id = 7 WHERE id = 1201",
        "DELETE FROM samples WHERE id = 2900",
        "COMMIT",
    )


CHANGES = [
    new_samples,
    late_measurements,
    changed_values,
    swapped_values,
    deleted_measurements,
    brand_new_type,
    moved_subtree,
    swapped_parents,
    deleted_samples,
    deep_chain,
    both_tables_in_one_transaction,
]


# check, statements that break its property on the seed database (after a good build), offenders
CORRUPTIONS = {
    "no_parent_cycles": (
        "no_parent_cycles",
        ["SET foreign_key_checks = 0", "UPDATE samples SET parent_id = 20 WHERE id = 11"],
        # 11 -> 20 -> 11 closes a cycle; 20's subtree hangs on it
        [11, 20],
    ),
    "no_missing_parents": (
        "no_missing_parents",
        ["SET foreign_key_checks = 0", "UPDATE samples SET parent_id = 777 WHERE id = 13"],
        [13, 14, 15, 16],
    ),
    "measurements_have_samples": (
        "measurements_have_samples",
        ["SET foreign_key_checks = 0", "INSERT INTO sample_measurements VALUES (4242, 'ph', 1)"],
        ["sample_id='4242' type='ph' value='1.000000'"],
    ),
    "measurement_types_not_null": (
        "measurement_types_not_null",
        ["INSERT INTO sample_measurements VALUES (3, NULL, 8)"],
        ["sample_id='3' value='8.000000'"],
    ),
    "no_duplicate_measurements": (
        "no_duplicate_measurements",
        ["INSERT INTO sample_measurements VALUES (9, 'PH', 1)"],
        ["sample_id=9 type='ph' measurements=2"],
    ),
    "one_spelling_per_column": (
        "one_spelling_per_column",
        ["INSERT INTO sample_measurements VALUES (4, 'PH', 2)"],
        ['measurement_ph: "PH", "ph"'],
    ),
    "catalog_column_names_unique": (
        "catalog_column_names_unique",
        ["INSERT INTO measurement_types (measurement_type, column_name) VALUES ('x', 'Measurement_PH')"],
        ["measurement_ph x2: 'ph', 'x'"],
    ),
    "one_row_per_sample": (
        "one_row_per_sample",
        [
            "DELETE FROM experiment_measurements WHERE sample_id = 7",
            "INSERT INTO experiment_measurements (experiment_id, top_parent_id, sample_id) VALUES (1, 1, 555)",
        ],
        ["7 (no row)", "555 (not a sample)"],
    ),
}
