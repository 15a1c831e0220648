"""No import cycle between curate's modules: a static import graph, and the rank modules imported alone."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "curate"


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _imported(nodes: list[ast.stmt], modules: dict[str, Path]) -> set[str]:
    """curate modules imported at module level (inside ``if``/``try`` too, so ``TYPE_CHECKING`` counts;
    imports inside functions are lazy and do not)."""
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.If | ast.Try):
            handlers = [h for h in getattr(node, "handlers", [])]
            for block in (
                node.body,
                node.orelse,
                getattr(node, "finalbody", []),
                *[h.body for h in handlers],
            ):
                found |= _imported(block, modules)
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    """Module -> the curate modules it imports at module level."""
    modules = module_names()
    graph = {}
    for name, path in modules.items():
        graph[name] = _imported(ast.parse(path.read_text()).body, modules) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_curate() -> None:
    graph = import_graph()
    assert "curate.stages.rank" in graph and "curate.rank.selftrain" in graph
    assert cycles(graph) == []


@pytest.mark.parametrize(
    "module",
    [
        "curate.rank.selftrain",
        "curate.rank.overlap",
        "curate.rank.registry",
        "curate.stages.rank",
        "curate.storage",
    ],
)
def test_module_imports_alone(module: str) -> None:
    """Each imported first, in a fresh interpreter: no import-order dependence."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


# import name -> distribution, where the installed metadata does not map it (dlib-bin ships no RECORD)
DISTRIBUTION_OF = {"dlib": "dlib-bin"}


def _third_party_imports() -> set[str]:
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {name for name in names if name not in sys.stdlib_module_names and name != "curate"}


def test_every_imported_package_is_declared() -> None:
    """A module curate imports (even lazily) comes from a distribution pyproject.toml names."""
    import importlib.metadata
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        requirements += extra
    declared = {re.split(r"[<>=!~\[; ]", req)[0].lower().replace("_", "-") for req in requirements}
    installed = importlib.metadata.packages_distributions()
    missing = []
    for name in sorted(_third_party_imports()):
        dists = {d.lower().replace("_", "-") for d in installed.get(name, [])}
        dists |= {DISTRIBUTION_OF[name]} if name in DISTRIBUTION_OF else set()
        if not dists & declared:
            missing.append(f"{name} (from {sorted(dists) or 'unknown'})")
    assert missing == [], f"imported but not declared in pyproject.toml: {missing}"
