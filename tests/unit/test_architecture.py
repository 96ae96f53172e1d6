"""The house rules, checked on the source: imports point down only and form no cycles.

Every `import` counts, at module level or inside a function (a lazy import is still a dependency),
except those under `if TYPE_CHECKING:` (annotations only).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "tminus"

# room -> rooms it must never import (directly or through a lazy import)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # the monitor's rule semantics are pure (like expect/): the model builds rules to validate them
    "tminus.runbook": ("tminus.engine", "tminus.ledger", "tminus.cli", "tminus.kinds", "tminus.reports",
                       "tminus.monitor.replay", "tminus.projection"),
    "tminus.templating": ("tminus.runbook", "tminus.engine", "tminus.ledger", "tminus.cli", "tminus.kinds"),
    "tminus.expect": ("tminus.engine", "tminus.ledger", "tminus.cli", "tminus.kinds", "tminus.runbook"),
    "tminus.ledger": ("tminus.engine", "tminus.cli", "tminus.kinds", "tminus.reports", "tminus.monitor"),
    "tminus.kinds": ("tminus.engine", "tminus.cli", "tminus.ledger", "tminus.reports"),
    "tminus.db": ("tminus.engine", "tminus.cli", "tminus.kinds", "tminus.ledger"),
    "tminus.monitor": ("tminus.engine", "tminus.cli", "tminus.reports", "tminus.ledger"),
    "tminus.projection": ("tminus.engine", "tminus.cli", "tminus.reports", "tminus.kinds"),
    "tminus.reports": ("tminus.engine", "tminus.cli"),
    "tminus.engine": ("tminus.cli", "tminus.reports"),
    "tminus.events": ("tminus.engine", "tminus.ledger", "tminus.cli", "tminus.kinds"),
}

# room -> modules of a forbidden room it may import all the same: the runbook model asks the kinds'
# registry (never a kind module) what a step's kind is: its effect class and failure policy.
ALLOWED: dict[str, tuple[str, ...]] = {
    "tminus.runbook": ("tminus.kinds.registry", "tminus.kinds.base"),
}

# Known breaches being mended; this list only ever shrinks.
KNOWN_DEBT: set[str] = {
    "tminus.monitor.replay imports tminus.reports.records",
    "tminus.engine.plan imports tminus.engine.session",
    "tminus.cli.app <-> tminus.cli.watch",
    "tminus.notify: from tminus.kinds.http import _describe",
}

# Inside a room: module -> modules it must not import (a lower module never reaches up).
FORBIDDEN_MODULES: dict[str, tuple[str, ...]] = {
    "tminus.engine.plan": ("tminus.engine.session", "tminus.engine.runner"),
    "tminus.engine.steps": ("tminus.engine.session", "tminus.engine.runner"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found.update(f"{base}.{a.name}" for a in child.names)
            visit(child)

    visit(tree)
    return {name for name in found if name == "tminus" or name.startswith("tminus.")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        raw = _imports(ast.parse(path.read_text()), name, path.name == "__init__.py")
        # `from tminus.x import y` names a module when y is one, else the package x
        graph[name] = {r for r in raw if r in modules and r != name}
    return graph


GRAPH = _graph()


def _room(module: str) -> str:
    return ".".join(module.split(".")[:2])


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_imports_point_down(room: str) -> None:
    wrong = sorted(
        f"{mod} imports {dep}"
        for mod, deps in GRAPH.items() if _room(mod) == room
        for dep in deps if any(dep == f or dep.startswith(f + ".") for f in FORBIDDEN[room])
        and dep not in ALLOWED.get(room, ())
    )
    wrong = [w for w in wrong if w not in KNOWN_DEBT]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(FORBIDDEN_MODULES))
def test_lower_modules_do_not_reach_up(module: str) -> None:
    wrong = [f"{module} imports {dep}" for dep in sorted(GRAPH.get(module, ())) if dep in FORBIDDEN_MODULES[module]]
    wrong = [w for w in wrong if w not in KNOWN_DEBT]
    assert not wrong, "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's __init__ re-exporting its own modules is not a cycle with them."""
    return {m: {d for d in deps if not (m.startswith(d + ".") and d in graph)} for m, deps in graph.items()}


def test_no_import_cycles() -> None:
    cycles = [c for c in _cycles(_without_package_inits(GRAPH)) if " <-> ".join(c) not in KNOWN_DEBT]
    assert not cycles, "\n".join(" <-> ".join(c) for c in cycles)


def test_no_room_reads_a_private_name_of_another_module() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tminus")
                    and _room(node.module) != _room(name)):
                offenders += [f"{name}: from {node.module} import {a.name}"
                              for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    offenders = [o for o in offenders if o not in KNOWN_DEBT]
    assert not offenders, "\n".join(offenders)
