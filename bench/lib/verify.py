"""Every built table compared whole with an independent recomputation in Python, in bounded
memory."""

from __future__ import annotations

import time
from array import array

import pymysql
import pymysql.cursors

from bench.lib.server import connect, one_row

# Sample ids per verification chunk: ~200k expected and ~200k actual rows in memory per table.
VERIFY_CHUNK_SAMPLES = 200_000
NOT_A_SAMPLE, NULL_PARENT = -1, -2  # parent array codes
UNRESOLVED, NO_ROOT = -1, -2  # root array codes (NO_ROOT: a cycle or a missing parent: NULL)


def roots_by_id(parent: array) -> array:
    """id -> root id by walking parent pointers, the rules of lab_data.roots_and_depths (a walk
    that hits a cycle or a parent that is not a sample gives NO_ROOT), on compact arrays indexed
    by id (``parent[id]``: the parent id, NULL_PARENT or NOT_A_SAMPLE)."""
    size = len(parent)
    root = array("q", [UNRESOLVED]) * size
    for start in range(size):
        first_parent = parent[start]
        if first_parent == NOT_A_SAMPLE:
            continue
        if first_parent == NULL_PARENT:
            root[start] = start
            continue
        if 0 <= first_parent < size and root[first_parent] != UNRESOLVED:
            root[start] = root[first_parent]  # the parent is resolved already (the common case)
            continue
        path: list[int] = []
        on_path: set[int] = set()
        node = start
        while True:
            if not 0 <= node < size or parent[node] == NOT_A_SAMPLE or node in on_path:
                found = NO_ROOT
                break
            if root[node] != UNRESOLVED:
                found = root[node]
                break
            if parent[node] == NULL_PARENT:
                found = root[node] = node
                break
            path.append(node)
            on_path.add(node)
            node = parent[node]
        for walked in path:
            root[walked] = found
    return root


def verify_tables_whole(database: str, tables: list[str], expected_samples: int) -> float:
    """Compares each of ``tables`` whole (column names and order, every row, every cell, the row
    count) with an independent recomputation in Python from the source rows, by the rules of
    lab_data.expected_flat_table (roots by walking parent pointers; per (sample, type) the largest
    non-NULL value; a column per type measured on an existing sample). Parent pointers are held
    in arrays; rows are recomputed and compared in sample-id chunks, so memory stays bounded at
    10M samples. Raises on any difference; returns the seconds taken."""
    started = time.monotonic()
    differences: list[str] = []
    with connect(database) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*), MIN(id), MAX(id) FROM samples")
            count, min_id, max_id = one_row(cursor)
        if count != expected_samples:
            raise AssertionError(f"{database}: {count} samples, expected {expected_samples}")
        if count and (min_id < 0 or max_id > 4 * count + 1_000_000):
            raise AssertionError(f"{database}: sample ids {min_id}..{max_id} too sparse for the array walk")
        id_limit = (max_id or 0) + 1
        parent = array("q", [NOT_A_SAMPLE]) * id_limit
        with connection.cursor(pymysql.cursors.SSCursor) as cursor:
            cursor.execute("SELECT id, parent_id FROM samples")
            for sample_id, parent_id in cursor:
                parent[sample_id] = (
                    NULL_PARENT if parent_id is None else parent_id if 0 <= parent_id < id_limit else id_limit
                )
        root = roots_by_id(parent)
        del parent
        names: dict[str, list[str]] = {}
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
                    " ORDER BY ordinal_position",
                    (database, table),
                )
                names[table] = [r[0] for r in cursor.fetchall()]
        types_seen: set[str] = set()
        rows_seen = dict.fromkeys(tables, 0)
        for low in range(0, id_limit, VERIFY_CHUNK_SAMPLES):
            high = low + VERIFY_CHUNK_SAMPLES - 1
            with connection.cursor() as cursor:
                cursor.execute("SELECT id, experiment_id FROM samples WHERE id BETWEEN %s AND %s", (low, high))
                expected: dict[int, tuple[object, object, dict[str, object]]] = {
                    sample_id: (experiment_id, None if root[sample_id] < 0 else root[sample_id], {})
                    for sample_id, experiment_id in cursor.fetchall()
                }
                cursor.execute(
                    "SELECT sample_id, measurement_type, value FROM sample_measurements"
                    " WHERE sample_id BETWEEN %s AND %s",
                    (low, high),
                )
                for sample_id, measurement_type, value in cursor.fetchall():
                    if sample_id not in expected or measurement_type is None:
                        continue
                    types_seen.add(measurement_type)
                    values = expected[sample_id][2]
                    if value is not None and (values.get(measurement_type) is None or value > values[measurement_type]):
                        values[measurement_type] = value
                for table in tables:
                    columns = names[table]
                    if columns[:3] != ["experiment_id", "top_parent_id", "sample_id"]:
                        continue  # reported below
                    types = [c.removeprefix("measurement_") for c in columns[3:]]
                    cursor.execute(
                        f"SELECT {', '.join(f'`{c}`' for c in columns)} FROM `{table}`"
                        " WHERE sample_id BETWEEN %s AND %s",
                        (low, high),
                    )
                    actual = {row[2]: tuple(row) for row in cursor.fetchall()}
                    rows_seen[table] += len(actual)
                    for sample_id in sorted(expected.keys() | actual.keys()):
                        want = expected.get(sample_id)
                        wanted = (
                            None if want is None else (want[0], want[1], sample_id, *(want[2].get(t) for t in types))
                        )
                        got = actual.get(sample_id)
                        if got != wanted and len(differences) < 10:
                            differences.append(f"{table} sample {sample_id}: got {got} want {wanted}")
        expected_names = [
            "experiment_id",
            "top_parent_id",
            "sample_id",
            *sorted(f"measurement_{t}" for t in types_seen),
        ]
        with connection.cursor() as cursor:
            for table in tables:
                if names[table] != expected_names:
                    differences.append(f"{table}: columns {names[table]} != expected {expected_names}")
                cursor.execute(f"SELECT COUNT(*) FROM `{table}`")
                (table_rows,) = one_row(cursor)
                if table_rows != count or rows_seen[table] != count:
                    differences.append(
                        f"{table}: {table_rows} rows ({rows_seen[table]} in the id range), expected {count}"
                    )
    if differences:
        raise AssertionError(f"{database} differs from the recomputation:\n  " + "\n  ".join(differences))
    return time.monotonic() - started
