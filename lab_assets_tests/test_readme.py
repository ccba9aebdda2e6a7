"""README.md against the repository: every file its project tree names exists, every tracked
file appears in the tree, and every repository path it quotes elsewhere exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
TREE_CONNECTORS = re.compile(r"^((?:│   |    )*)(?:├── |└── )(\S+)")


def project_tree() -> set[str]:
    """The paths of README's project tree (the code block that starts with the repository root)."""
    block = README.split("```\nlab_assets/", 1)[1].split("```", 1)[0]
    paths: set[str] = set()
    parents: list[str] = []
    for line in block.splitlines()[1:]:
        match = TREE_CONNECTORS.match(line)
        if match is None:
            assert line.lstrip("│ ").startswith("#"), f"not a tree line: {line!r}"
            continue  # a comment continued on its own line
        depth = len(match.group(1)) // 4
        parents = parents[:depth]
        name = match.group(2)
        path = "".join(parents) + name
        paths.add(path.rstrip("/"))
        if name.endswith("/"):
            parents.append(name)
    return paths


def tracked_files() -> set[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return {line for line in listed.splitlines() if line and (ROOT / line).exists()}


def test_every_path_in_the_project_tree_exists():
    missing = sorted(p for p in project_tree() if not (ROOT / p).exists())
    assert missing == []


def test_every_tracked_file_is_in_the_project_tree():
    """Files other than package markers and ignore files; a directory listed with a trailing
    comment stands for the files in it only where the tree says so (none today)."""
    tree = project_tree()
    unlisted = sorted(f for f in tracked_files() if Path(f).name not in {"__init__.py", ".gitignore"} and f not in tree)
    assert unlisted == []


# Backquoted repository paths elsewhere in README: a known top-level directory followed by a file
# or directory name (run tags such as lab_assets/trigger are names, not paths, and are skipped).
QUOTED_PATH = re.compile(r"`((?:lab_assets|lab_assets_tests|bench|docker|\.ci)/[\w./-]+)`")
NOT_PATHS = {"lab_assets/trigger", "lab_assets/refresh"}


def test_every_quoted_repository_path_exists():
    quoted = {m.group(1).rstrip("/") for m in QUOTED_PATH.finditer(README)} - NOT_PATHS
    assert quoted, "the pattern finds README's paths"
    missing = sorted(p for p in quoted if not (ROOT / p).exists())
    assert missing == []
