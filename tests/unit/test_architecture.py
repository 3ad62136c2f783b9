"""The package's shape: no import cycles, and every subpackage says what it is in one line."""

from __future__ import annotations

import importlib
import pkgutil

import grimp

import mjreinforce


def _cycle(graph: grimp.ImportGraph) -> list[str] | None:
    """One import cycle among the package's modules (as a path a -> ... -> a), or None."""
    state: dict[str, int] = {}  # 1: on the DFS stack, 2: done
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(imported) == 1:
                return stack[stack.index(imported) :] + [imported]
            if imported not in state and (found := visit(imported)):
                return found
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(graph.modules):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    # grimp sees every import, also those inside functions and under TYPE_CHECKING
    graph = grimp.build_graph("mjreinforce")
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for a, b in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a")):
        graph.add_import(importer=a, imported=b)
    assert _cycle(graph) == ["p.a", "p.b", "p.c", "p.a"]


def test_every_subpackage_has_a_one_line_docstring() -> None:
    subpackages = [m.name for m in pkgutil.iter_modules(mjreinforce.__path__) if m.ispkg]
    assert {"algo", "analysis", "cli", "envs", "runs", "suite", "sweep", "trained", "training"} <= set(subpackages)
    for name in subpackages:
        doc = importlib.import_module(f"mjreinforce.{name}").__doc__ or ""
        assert doc.strip(), f"mjreinforce.{name} has no docstring"
        assert len(doc.strip().splitlines()[0]) <= 120
