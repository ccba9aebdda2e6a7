"""Every dependency is pinned to one version, and the pre-commit hooks run the pinned ruff: a fresh
clone installs what CI ran."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = (ROOT / "pyproject.toml").read_text()


def test_every_requirement_is_pinned_to_one_version():
    """A range (``>=``) or a bare name installs whatever is newest on the day: a fresh clone could
    then fail where CI passed, or pass with another pandas than the one whose dtypes the DataFrame
    handler was tested with."""
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11 or later reads TOML")
    project = tomllib.loads(PYPROJECT)
    requirements = [
        *project["build-system"]["requires"],
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["test"],
    ]
    unpinned = [r for r in requirements if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", r)]
    assert requirements and unpinned == []


def test_the_pre_commit_hooks_run_the_ruff_that_pyproject_pins():
    """`.pre-commit-config.yaml` installs ruff itself: at another version than `make lint`'s, a
    commit the hook passed could fail CI (or the hook reformat what CI accepts)."""
    pinned = re.search(r'"(ruff==[^"]+)"', PYPROJECT)
    assert pinned is not None
    hooks = [
        hook
        for repo in yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"]
        for hook in repo["hooks"]
    ]
    assert [hook["id"] for hook in hooks] == ["ruff-check", "ruff-format"]
    assert [hook["additional_dependencies"] for hook in hooks] == [[pinned.group(1)]] * 2
