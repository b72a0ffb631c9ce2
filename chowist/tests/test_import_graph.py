"""No import cycles anywhere in the project, checked on the import graph grimp builds (import-linter's engine).

`make lint` runs the import-linter contracts (pyproject.toml): layers, forbidden imports, and no cycles among
the children of any one package. What those cannot see is checked here: a cycle between modules of different
top-level packages, and a cycle between the top-level packages themselves. Every import counts, function-level
ones included.
"""

from __future__ import annotations

import tomllib

import grimp
import pytest

from conftest import ROOT

ROOTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*ROOTS, cache_dir=None)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(edges.get(target, ())))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
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


def test_the_cycle_finder_finds_a_cycle():
    # The check below must be able to fail.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_one_that_imports_it_back(graph):
    edges = {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}
    assert _cycles(edges) == []


def test_the_top_level_packages_form_no_cycle(graph):
    # Tests may reach across packages (a grafana test starts the lab); the code they test may not.
    def package(module: str) -> str:
        return module.split(".")[0]

    edges: dict[str, set[str]] = {root: set() for root in ROOTS}
    for module in graph.modules:
        if ".tests." in f".{module}.":
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            if package(imported) != package(module):
                edges[package(module)].add(package(imported))
    assert _cycles(edges) == []
