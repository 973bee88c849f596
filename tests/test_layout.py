"""The package's shape: imports point one way, modules stay small, the front page's links resolve."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "interp"
MAX_MODULE_LINES = 450
MAX_README_LINES = 250


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every interp module a file imports, at top level or inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {name for name in found if name == "interp" or name.startswith("interp.")}


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _importers_of(prefix: str) -> dict[str, set[str]]:
    return {mod: {i for i in _imports(path) if i == prefix or i.startswith(prefix + ".")}
            for mod, path in MODULES.items()}


def _violations(importer_prefixes: tuple[str, ...], imported: str, allowed: tuple[str, ...] = ()) -> list[str]:
    out = []
    for mod, hits in _importers_of(imported).items():
        if hits and mod.startswith(importer_prefixes) and not mod.startswith(allowed) and not mod.startswith(imported):
            out.append(f"{mod} imports {sorted(hits)}")
    return out


def test_the_engine_imports_nothing_from_the_rest_of_interp():
    engine = tuple(m for m in MODULES if m.startswith("interp.engine"))
    bad = [f"{mod} imports {sorted(i for i in _imports(MODULES[mod]) if not i.startswith(('interp.engine', 'interp.errors', 'interp.util')))}"
           for mod in engine
           if any(not i.startswith(("interp.engine", "interp.errors", "interp.util")) for i in _imports(MODULES[mod]))]
    assert not bad, bad


def test_general_helpers_import_no_particular_analysis():
    general = ("interp.engine", "interp.util", "interp.data", "interp.analyses.interventions", "interp.errors")
    bad = _violations(general, "interp.analyses.impact") + _violations(general, "interp.analyses.ablation")
    assert not bad, bad


def test_the_experiments_do_not_import_each_other():
    bad = (_violations(("interp.analyses.impact",), "interp.analyses.ablation")
           + _violations(("interp.analyses.ablation",), "interp.analyses.impact"))
    assert not bad, bad


def test_only_the_cli_and_the_result_display_import_the_viewer():
    allowed = ("interp.cli", "interp.results", "interp.view")
    bad = [v for v in _violations(("interp",), "interp.view", allowed) if not v.startswith("interp imports")]
    assert not bad, bad


def test_no_module_is_over_the_line_limit():
    long = {mod: n for mod, path in MODULES.items() if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, long


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#")}


@pytest.mark.parametrize("page", ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md"))])
def test_every_relative_link_resolves(page):
    path = ROOT / page
    broken = []
    for target in _LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(target)
    assert not broken, f"{page}: {broken}"


def test_the_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES
    assert not any("shared/" in line or "/work/" in line for line in lines)
