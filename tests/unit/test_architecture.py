"""The house rules, checked on the source: imports point down only and form no cycles.

Every `import` counts, at module level or inside a function (a lazy import is still a dependency),
except those under `if TYPE_CHECKING:` (annotations only). For the layers, so does a module named in a
string (`importlib.import_module`, a plugin table, `python -m`): loading by name is still reaching it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "tminus"

# room -> rooms it must never import (directly, through a lazy import or by naming the module)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # the monitor's rule semantics are pure (like expect/): the model builds rules to validate them
    "tminus.runbook": ("tminus.engine", "tminus.ledger", "tminus.cli", "tminus.kinds", "tminus.reports",
                       "tminus.monitor.replay", "tminus.projection", "tminus.db", "tminus.notify"),
    "tminus.templating": ("tminus.runbook", "tminus.engine", "tminus.ledger", "tminus.cli", "tminus.kinds",
                          "tminus.reports", "tminus.monitor", "tminus.notify", "tminus.db", "tminus.projection"),
    "tminus.expect": ("tminus.engine", "tminus.ledger", "tminus.cli", "tminus.kinds", "tminus.runbook",
                      "tminus.templating", "tminus.reports", "tminus.monitor", "tminus.notify", "tminus.db",
                      "tminus.projection"),
    "tminus.ledger": ("tminus.engine", "tminus.cli", "tminus.kinds", "tminus.reports", "tminus.monitor",
                      "tminus.notify", "tminus.templating", "tminus.expect", "tminus.db"),
    # kinds may use the monitor's pure rules and probing loop (the `watch` kind), never its replay
    "tminus.kinds": ("tminus.engine", "tminus.cli", "tminus.ledger", "tminus.reports", "tminus.monitor.replay"),
    "tminus.db": ("tminus.engine", "tminus.cli", "tminus.kinds", "tminus.ledger", "tminus.runbook",
                  "tminus.reports", "tminus.monitor", "tminus.notify", "tminus.templating", "tminus.projection"),
    "tminus.monitor": ("tminus.engine", "tminus.cli", "tminus.reports", "tminus.ledger", "tminus.kinds",
                       "tminus.notify", "tminus.db"),
    "tminus.projection": ("tminus.engine", "tminus.cli", "tminus.reports", "tminus.kinds"),
    "tminus.reports": ("tminus.engine", "tminus.cli", "tminus.kinds", "tminus.db", "tminus.notify"),
    "tminus.engine": ("tminus.cli", "tminus.reports"),
    # `tminus import` writes runbook text from Markdown: it knows the model's words, never what runs them
    "tminus.importer": ("tminus.engine", "tminus.ledger", "tminus.cli", "tminus.kinds", "tminus.reports",
                        "tminus.projection", "tminus.db", "tminus.notify", "tminus.monitor"),
    # notifications are sent by the engine's monitor and by the `notify` kind: below both
    "tminus.notify": ("tminus.engine", "tminus.cli", "tminus.ledger", "tminus.kinds", "tminus.reports",
                      "tminus.monitor", "tminus.projection"),
}

# Rooms being built on other branches of the same change (rules about them may come first).
COMING: set[str] = set()

# The floor: modules everything may use, which use nothing of tminus themselves.
LEAVES = ("tminus.events", "tminus.errors", "tminus.durations", "tminus.processes", "tminus.httperrors")

# room -> modules of a forbidden room it may import all the same: the runbook model asks the kinds'
# registry (never a kind module) what a step's kind is: its effect class and failure policy.
ALLOWED: dict[str, tuple[str, ...]] = {
    "tminus.runbook": ("tminus.kinds.registry", "tminus.kinds.base"),
    "tminus.importer": ("tminus.kinds.registry",),
}

# Known breaches being mended; this list only ever shrinks.
KNOWN_DEBT: set[str] = {
}

# The engine from the top down: the session drives the runner, which executes the lifecycle's
# sections (changes, decision, monitor_sections; rollback for the undo path; resume rebuilds what they
# read), which share the run's state (run_state), which runs one step at a time (steps); below the
# step executor, the records and rules everything reads (outcome, prior, judging, lifecycle, stop...).
_TOP = ("tminus.engine.session", "tminus.engine.runner")
_SECTIONS = ("tminus.engine.changes", "tminus.engine.decision", "tminus.engine.monitor_sections",
             "tminus.engine.rollback", "tminus.engine.resume", "tminus.engine.guards")
_RUN = (*_TOP, *_SECTIONS, "tminus.engine.run_state")  # what executes a run's lifecycle
_EXECUTION = (*_RUN, "tminus.engine.steps", "tminus.engine.monitoring", "tminus.engine.notifications")


def _except(modules: tuple[str, ...], *kept: str) -> tuple[str, ...]:
    return tuple(m for m in modules if m not in {f"tminus.engine.{k}" for k in kept})


# Inside a room: module -> modules it must not import (a lower module never reaches up).
FORBIDDEN_MODULES: dict[str, tuple[str, ...]] = {
    "tminus.engine.plan": _RUN,
    "tminus.engine.context": (*_EXECUTION, "tminus.engine.plan"),
    "tminus.engine.recorder": _EXECUTION,
    "tminus.engine.resume": _TOP,
    "tminus.engine.rollback": (*_TOP, "tminus.engine.resume"),
    # a section knows the run's shared state, never the runner that sequences it nor another section
    # (the rollback's verify-after-rollback is the verify of changes.py)
    "tminus.engine.changes": _except((*_TOP, *_SECTIONS), "changes"),
    "tminus.engine.decision": _except((*_TOP, *_SECTIONS), "decision"),
    "tminus.engine.monitor_sections": _except((*_TOP, *_SECTIONS), "monitor_sections"),
    # a phase's guard is a policy at the sections' level: the run's state, never the runner or a section
    "tminus.engine.guards": _except((*_TOP, *_SECTIONS), "guards"),
    "tminus.engine.run_state": (*_TOP, *_SECTIONS),
    "tminus.engine.steps": _except(_EXECUTION, "steps"),
    "tminus.engine.monitoring": _RUN,
    "tminus.engine.notifications": (*_RUN, "tminus.engine.monitoring"),
    # the deadline watch is a policy the session hands the runner: it never reaches the run's machinery
    "tminus.engine.deadlines": (*_RUN, "tminus.engine.monitoring"),
    # below the step executor: what reads outcomes, the prior record or a stop need not load it
    "tminus.engine.prior": _EXECUTION,
    "tminus.engine.outcome": (*_EXECUTION, "tminus.engine.prior", "tminus.engine.judging"),
    "tminus.engine.judging": (*_EXECUTION, "tminus.engine.prior"),
    "tminus.engine.lifecycle": (*_EXECUTION, "tminus.engine.prior", "tminus.engine.policy", "tminus.engine.stop"),
    "tminus.engine.policy": _EXECUTION,
    "tminus.engine.stop": (*_EXECUTION, "tminus.engine.policy", "tminus.engine.lifecycle"),
    "tminus.engine.lease": _EXECUTION,
    "tminus.engine.signals": _EXECUTION,
    # the commands sit on top of cli/: what they share lives below them
    "tminus.cli.running": ("tminus.cli.app", "tminus.cli.watch", "tminus.cli.inspect", "tminus.cli.explain"),
    "tminus.cli.watch": ("tminus.cli.app",),
    "tminus.cli.display": ("tminus.cli.app", "tminus.cli.running", "tminus.cli.render"),
    "tminus.cli.render": ("tminus.cli.app", "tminus.cli.running", "tminus.cli.display"),
    "tminus.cli.monitor_view": ("tminus.cli.app", "tminus.cli.running", "tminus.cli.display", "tminus.cli.render"),
    # one formatter of event lines: it knows no view that uses it
    "tminus.cli.lines": ("tminus.cli.app", "tminus.cli.running", "tminus.cli.display", "tminus.cli.render",
                         "tminus.cli.monitor_view", "tminus.cli.inspect"),
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


def _named(tree: ast.AST, modules: set[str]) -> set[str]:
    """Modules named in a string: `importlib.import_module(...)`, a plugin table, `python -m ...`."""
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules}


def _graphs() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """The import graph, and the same with the modules each one names in a string added."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    named: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        raw = _imports(tree, name, path.name == "__init__.py")
        # `from tminus.x import y` names a module when y is one, else the package x
        graph[name] = {r for r in raw if r in modules and r != name}
        named[name] = graph[name] | (_named(tree, set(modules)) - {name})
    return graph, named


# Cycles are judged on imports only: the kinds registry loading its kinds by name is the one way
# up that is meant (each kind imports the registry to register itself). Layers count both.
GRAPH, REACHES = _graphs()


def _room(module: str) -> str:
    return ".".join(module.split(".")[:2])


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_imports_point_down(room: str) -> None:
    wrong = sorted(
        f"{mod} imports {dep}"
        for mod, deps in REACHES.items() if _room(mod) == room
        for dep in deps if any(dep == f or dep.startswith(f + ".") for f in FORBIDDEN[room])
        and dep not in ALLOWED.get(room, ())
    )
    wrong = [w for w in wrong if w not in KNOWN_DEBT]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(FORBIDDEN_MODULES))
def test_lower_modules_do_not_reach_up(module: str) -> None:
    assert module in REACHES, f"{module} does not exist: update the rule"
    wrong = [f"{module} imports {dep}" for dep in sorted(REACHES[module]) if dep in FORBIDDEN_MODULES[module]]
    wrong = [w for w in wrong if w not in KNOWN_DEBT]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", LEAVES)
def test_the_floor_imports_nothing_of_tminus(module: str) -> None:
    assert module in REACHES, f"{module} does not exist: update LEAVES"
    assert not REACHES[module] - {"tminus"}, f"{module} imports {sorted(REACHES[module])}"


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_every_rule_names_rooms_that_exist(room: str) -> None:
    """A rule about a renamed room would pass for ever: each one must name something real."""
    rooms = {_room(m) for m in REACHES} | set(REACHES)
    missing = [r for r in (room, *FORBIDDEN[room]) if r not in rooms | COMING]
    assert not missing, f"no such room or module: {missing}"


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
