"""The package's shape: one folder per concept, imports that point one way, SQL that needs neither
Dagster nor a connection, and modules short enough to read whole. No server needed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lab_assets"
MAX_MODULE_LINES = 300

# The modules that hold a concept's SQL (or pure decisions): text in, text out. They must import
# neither Dagster, SQLAlchemy, PyMySQL nor pandas, so their tests need no server and no instance.
PURE_MODULES = (
    "lab_assets.names",
    "lab_assets.sql.statements",
    "lab_assets.sql.bulk",
    "lab_assets.sources.locations",
    "lab_assets.sources.hashes",
    "lab_assets.sources.value_types",
    "lab_assets.catalog.naming",
    "lab_assets.catalog.sql",
    "lab_assets.catalog.counts_sql",
    "lab_assets.state.sql",
    "lab_assets.state.bucket_sql",
    "lab_assets.lineage.sql",
    "lab_assets.digests.sql",
    "lab_assets.flat_table.sql",
    "lab_assets.flat_table.plan",
    "lab_assets.flat_table.verification_sql",
    "lab_assets.flat_table.preview_sql",
    "lab_assets.flat_table.summary_sql",
    "lab_assets.checks.sql",
    "lab_assets.checks.flat_table_sql",
    "lab_assets.sensor.sql",
    "lab_assets.sensor.decisions",
    "lab_assets.io_manager.sql",
    "lab_assets.change_feed.sql",
    "lab_assets.change_feed.statements",
)
BLOCKED = ("dagster", "sqlalchemy", "pymysql", "pandas")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The lab_assets modules ``path`` imports, at any depth of its code (a late import inside a
    function counts: it would hide a cycle, not remove it)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in known and t != name}


def test_every_module_within_the_line_limit():
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    too_long = {str(f.relative_to(ROOT)): n for f in files if (n := len(f.read_text().splitlines())) > MAX_MODULE_LINES}
    assert too_long == {}


def test_imports_between_modules_form_no_cycle():
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(path, name, known) for name, path in modules.items()}
    # Depth-first search; a module met again while still on the path closes a cycle.
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target] if target in path else [module, target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_graph_check_finds_a_planted_cycle(tmp_path):
    """The cycle search above is itself tested: two modules importing each other are found."""
    (tmp_path / "a.py").write_text("from lab_assets.b import x\n")
    (tmp_path / "b.py").write_text("import lab_assets.a\n")
    known = {"lab_assets.a", "lab_assets.b"}
    assert _imports(tmp_path / "a.py", "lab_assets.a", known) == {"lab_assets.b"}
    assert _imports(tmp_path / "b.py", "lab_assets.b", known) == {"lab_assets.a"}


@pytest.mark.parametrize("module", PURE_MODULES)
def test_sql_modules_import_neither_dagster_nor_a_connection(module):
    """Imported in a fresh interpreter where importing Dagster, SQLAlchemy, PyMySQL or pandas
    fails: a SQL module that reached for one of them, itself or through what it imports, fails
    here. The packages' ``__init__`` modules are left out (``lab_assets.io_manager`` exports the
    IO manager): only the modules' own code and imports count."""
    packages = {
        ".".join(d.relative_to(ROOT).parts): str(d)
        for d in [PACKAGE, *PACKAGE.rglob("*")]
        if (d / "__init__.py").is_file()
    }
    blocker = f"""
import sys, types
for name, directory in {packages!r}.items():
    package = types.ModuleType(name)
    package.__path__ = [directory]
    sys.modules[name] = package
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError("blocked in a SQL module: " + name)
sys.meta_path.insert(0, Blocker())
import {module}
"""
    result = subprocess.run(
        [sys.executable, "-c", blocker], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
