"""Every dependency is pinned to one version, and the pre-commit hooks run the pinned ruff: a fresh
clone installs what CI ran."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = (ROOT / "pyproject.toml").read_text()


def _requirements(array: str) -> list[str]:
    """The quoted requirements of pyproject's ``array = [...]``, on one line or several (comments
    left out)."""
    found = re.search(rf"^{re.escape(array)} = \[([^\n]*)\]$", PYPROJECT, re.MULTILINE) or re.search(
        rf"^{re.escape(array)} = \[\n(.*?)^\]$", PYPROJECT, re.MULTILINE | re.DOTALL
    )
    assert found is not None, f"pyproject.toml has no {array} array"
    lines = [line for line in found.group(1).splitlines() if not line.strip().startswith("#")]
    return re.findall(r'"([^"]+)"', "\n".join(lines))


def test_every_requirement_is_pinned_to_one_version():
    """A range (``>=``) or a bare name installs whatever is newest on the day: a fresh clone could
    then fail where CI passed, or pass with another pandas than the one whose dtypes the DataFrame
    handler was tested with."""
    arrays = ("requires", "dependencies", "test")
    requirements = {array: _requirements(array) for array in arrays}
    assert all(requirements.values()) and len({r for listed in requirements.values() for r in listed}) == sum(
        len(listed) for listed in requirements.values()
    ), requirements
    unpinned = [
        r for listed in requirements.values() for r in listed if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", r)
    ]
    assert unpinned == []


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
