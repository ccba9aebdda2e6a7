"""Memory of a process tree read from /proc: PSS summed over the tree, each process's high-water
RSS and command line."""

from __future__ import annotations

import os

# Reading a process's PSS (/proc/<pid>/smaps_rollup) walks its page tables under the process's
# memory lock, so polling it often slows the run being timed (bench/RESULTS.md, "The bench polls
# memory every 0.25 s"). Every 0.25 s the walk costs little, and the peaks it looks for (bulk
# loads, the pandas catalog) last longer than that.
MEMORY_POLL_SECONDS = 0.25


def _memory_kib(pid: int) -> int:
    """Proportional set size (PSS) of one process: shared pages count once across the tree, so
    a child forked just before exec does not double the parent's memory. VmRSS as a fallback."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, PermissionError):
        pass
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tree_memory_bytes(root_pid: int, breakdown: dict[int, int] | None = None) -> int:
    """Memory (PSS) summed over ``root_pid`` and all its descendants (from /proc); ``breakdown``
    receives pid -> bytes."""
    total, pending, seen = 0, [root_pid], set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            memory = _memory_kib(pid) * 1024
            total += memory
            if breakdown is not None:
                breakdown[pid] = memory
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    pending += [int(c) for c in children.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def high_water_kib(pid: int) -> int:
    """VmHWM: the kernel's high-water RSS of one process (cheap to read, no page-table walk)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as cmdline:
            return cmdline.read().replace("\0", " ").strip()
    except OSError:
        return "?"
