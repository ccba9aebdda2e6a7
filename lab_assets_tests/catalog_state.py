"""The catalog's state, whole, against a recomputation in Python from the sources: the counts
that the change feed's refreshes move by delta, their facts, and the orphan record."""

from __future__ import annotations

from collections import Counter, defaultdict

from lab_assets.catalog.sql import CATALOG_FACTS
from lab_assets.names import CATALOG_FACTS_TABLE, ORPHANS_TABLE, SAMPLE_TYPE_COUNTS, TYPE_GROUPS, TYPE_SPELLINGS


def _pad_space_key(spelling: str) -> str:
    """A type's key under the seed's case-insensitive PAD SPACE collation, for ASCII spellings."""
    return spelling.lower().rstrip(" ")


def assert_catalog_state_is_exact(db, group=_pad_space_key) -> None:
    """What the change feed's next refresh moves the catalog and the orphan record from is exact,
    whole, recomputed in Python from the sources: the orphan sample ids, and the counts
    (:func:`assert_catalog_counts_are_exact`)."""
    measurements = db.query("SELECT sample_id, measurement_type FROM sample_measurements")
    samples = {row[0] for row in db.query("SELECT id FROM samples")}
    orphans = {s for s, _ in measurements if s is not None and s not in samples}
    assert {row[0] for row in db.query(f"SELECT sample_id FROM {ORPHANS_TABLE}")} == orphans
    assert_catalog_counts_are_exact(db, group)


def assert_catalog_counts_are_exact(db, group=_pad_space_key) -> None:
    """The catalog's counts, recomputed in Python from sample_measurements: the rows per sample
    and spelling (byte for byte; rows without a sample id as sample 0, a NULL type as spelling
    ''); their sums per spelling and per type (``group``: the source collation's key of a
    spelling); and the catalog scan's facts."""
    measurements = db.query("SELECT sample_id, measurement_type FROM sample_measurements")
    state = Counter((s or 0, int(s is None), int(t is None), t or "") for s, t in measurements)
    recorded = db.query(
        f"SELECT sample_id, no_sample, type_null, spelling, measurement_count FROM {SAMPLE_TYPE_COUNTS}"
    )
    assert {tuple(r[:4]): r[4] for r in recorded} == dict(state)
    spellings = Counter((int(t is None), t or "") for _, t in measurements)
    recorded = db.query(f"SELECT type_null, spelling, measurement_count FROM {TYPE_SPELLINGS}")
    assert {tuple(r[:2]): r[2] for r in recorded} == dict(spellings)
    pairs = Counter((s, t is None, group(t or "")) for s, t in measurements)
    groups: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (s, type_null, key), rows in pairs.items():
        sums = groups[(int(type_null), key)]
        sums[1] += rows
        if s is not None:
            sums[0] += 1
            sums[2] += rows - 1
    columns = "type_null, group_key, sample_count, measurement_count, repeated_measurements"
    recorded_groups = {(r[0], group(r[1])): list(r[2:]) for r in db.query(f"SELECT {columns} FROM {TYPE_GROUPS}")}
    assert recorded_groups == dict(groups)
    by_group: dict[str, set[str]] = defaultdict(set)
    for type_null, t in spellings:
        if not type_null:
            by_group[group(t)].add(t.rstrip(" "))  # the scan's MIN <> MAX under {charset}_bin: PAD SPACE
    facts = (
        groups.get((1, ""), [0, 0, 0])[1],
        sum(1 for (type_null, _), v in groups.items() if not type_null and v[2]),
        sum(1 for spelled in by_group.values() if len(spelled) > 1),
        len(measurements),
    )
    assert db.query(f"SELECT {', '.join(CATALOG_FACTS)} FROM {CATALOG_FACTS_TABLE}") == [facts]
