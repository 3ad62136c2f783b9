"""The package's shape: no import cycles, and every subpackage says what it is in one line."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import grimp

import mjreinforce

ROOT = Path(__file__).resolve().parents[2]


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


DOCUMENTS = ("README.md", "benchmarks/README.md", *(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))
"""The prose that names ``mjreinforce.`` paths for a reader to import or look up."""


def _resolves(dotted: str) -> bool:
    """Whether ``dotted`` is an importable module, or an attribute path inside the longest importable prefix."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for name in parts[k:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_every_mjreinforce_path_the_documents_name_imports() -> None:
    named = {
        (doc, m.group(0))
        for doc in DOCUMENTS
        for m in re.finditer(r"(?<![\w./-])mjreinforce(\.[A-Za-z_]\w*)+", (ROOT / doc).read_text())
    }
    assert len(named) > 10  # the pattern finds the paths the README and docs do name
    missing = sorted((doc, path) for doc, path in named if not _resolves(path))
    assert not missing, missing


def test_the_path_check_refuses_a_path_that_does_not_import() -> None:
    assert _resolves("mjreinforce.training.loop.train_seed")
    assert not _resolves("mjreinforce.trainer.train_seed") and not _resolves("mjreinforce.training.loop.no_such")
