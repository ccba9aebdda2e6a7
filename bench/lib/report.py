"""The results of bench/bench.py as tables: medians and spread per size, growth per million rows,
each size's details."""

from __future__ import annotations

import statistics

MEMORY_LIMIT_MIB = 300  # the target: Python peak memory at most 300 MB at every size


def median_run_index(values: list[float]) -> int:
    """Index of the median run (the lower of the two middle runs when the count is even)."""
    return sorted(range(len(values)), key=lambda i: values[i])[(len(values) - 1) // 2]


def fmt_spread(values: list[float]) -> str:
    """``median (min-max)``; one run: ``value (1 run)``."""
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.2f} (1 run)"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def fmt_reference(r: dict) -> str:
    reference = r["reference"]
    if reference is None:
        return "skipped"
    if reference["killed_at"] is not None:
        done = f"; {fmt_spread(reference['runs'])} in the runs before" if reference["runs"] else ""
        return f"> {reference['killed_at']:g} (killed{done})"
    return fmt_spread(reference["runs"])


def reference_killed_at(r: dict) -> float | None:
    """The time limit the reference was killed at, None when it completed (or was skipped)."""
    return None if r["reference"] is None else r["reference"]["killed_at"]


def reference_median(r: dict) -> float | None:
    reference = r["reference"]
    if reference is None or reference["killed_at"] is not None or not reference["runs"]:
        return None
    return statistics.median(reference["runs"])


def per_million(r: dict, seconds: float | None, killed: bool = False) -> str:
    if seconds is None:
        return "n/a"
    return f"{'> ' if killed else ''}{seconds / (r['rows'] / 1e6):.1f}"


def fmt_memory(mib: float) -> str:
    return f"**{mib:.0f} (over {MEMORY_LIMIT_MIB})**" if mib > MEMORY_LIMIT_MIB else f"{mib:.0f}"


def report_lines(rows: list[dict]) -> list[str]:
    header = (
        "| samples | reference s, median (min-max) | full refresh with checks s, median (min-max) | build/ref"
        " | 1% refresh s, median (min-max) | refresh/full | s per 1M rows: reference / full refresh / refresh"
        " | largest Python process, peak RSS MiB | process tree, peak PSS MiB | quiet sensor tick s | rounds"
        " | verified whole |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        ref = reference_median(r)
        killed_at = reference_killed_at(r)
        build = statistics.median(r["build"]["runs"])
        refresh = statistics.median(r["refresh"]["runs"]) if r["refresh"]["runs"] else None
        ref_per_million = per_million(r, killed_at or ref, killed_at is not None)
        lines.append(
            f"| {r['samples']:,} | {fmt_reference(r)} | {fmt_spread(r['build']['runs'])}"
            f" | {'n/a' if ref is None else f'{build / ref:.2f}x'}"
            f" | {fmt_spread(r['refresh']['runs'])} | {'n/a' if refresh is None else f'{refresh / build:.2f}x'}"
            f" | {ref_per_million} / {per_million(r, build)} / {per_million(r, refresh)}"
            f" | {fmt_memory(r['memory']['largest_process_mib'])} | {fmt_memory(r['memory']['tree_pss_mib'])}"
            f" | {'n/a' if r['tick'] is None else format(r['tick'], '.3f')} | {r['repeat']}"
            f" | {'yes' if r['verified'] else 'NO'} |"
        )
    return lines


def growth_lines(rows: list[dict]) -> list[str]:
    """Seconds per million rows by size (medians), and the growth from the size before: time
    ratio for the rows ratio (equal ratios = linear)."""
    header = (
        "| samples | reference s/1M rows | growth | full refresh s/1M rows | growth | 1% refresh s/1M rows | growth |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    previous: dict | None = None

    def growth(now: float | None, before: float | None, now_killed: bool = False) -> str:
        if previous is None or now is None or before is None:
            return ""
        factor = r["rows"] / previous["rows"]
        return f"{'> ' if now_killed else ''}{now / before:.1f}x for {factor:.1f}x rows"

    for r in rows:
        killed_at = reference_killed_at(r)
        killed = killed_at is not None
        ref = killed_at if killed else reference_median(r)
        build = statistics.median(r["build"]["runs"])
        refresh = statistics.median(r["refresh"]["runs"]) if r["refresh"]["runs"] else None
        before_ref = before_build = before_refresh = None
        if previous is not None:
            before_ref = reference_median(previous)
            before_build = statistics.median(previous["build"]["runs"])
            before_refresh = statistics.median(previous["refresh"]["runs"]) if previous["refresh"]["runs"] else None
        lines.append(
            f"| {r['samples']:,} | {per_million(r, ref, killed)} | {growth(ref, before_ref, killed)}"
            f" | {per_million(r, build)} | {growth(build, before_build)}"
            f" | {per_million(r, refresh)} | {growth(refresh, before_refresh)} |"
        )
        previous = r
    return lines


def detail_lines(rows: list[dict]) -> list[str]:
    lines = []
    for r in rows:
        memory = r["memory"]
        lines.append(
            f"- {r['samples']:,} samples ({r['rows']:,} rows, `{r['database']}`, load1 before {r['load1']:.2f}):"
            f" reference steps (median run) {r['reference'] and r['reference']['steps']};"
            f" full refresh steps (median run) {r['build']['steps']};"
            f" refresh steps (median run) {r['refresh']['steps']};"
            f" largest process peak RSS {memory['build_largest_mib']:.0f} MiB in builds,"
            f" {memory['refresh_largest_mib']:.0f} MiB in refreshes ({memory['largest_process']});"
            f" verification {', '.join(f'{v:.0f} s' for v in r['verify_seconds']) or 'skipped'}"
        )
    return lines
