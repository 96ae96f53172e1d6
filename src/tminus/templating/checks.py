"""What validation can see in a template without running it: unknown filters and tests, attributes
the sandbox would refuse, constant ranges over the limit. `tminus validate` reports each with the
position of the string (exit 78); the sandbox refuses the same things again at render time.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator

from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from tminus.templating.sandbox import MAX_RANGE, MAX_SIZE, UNSAFE_ATTRIBUTES, TemplateLimit, guard_binop


def static_problems(
    env: SandboxedEnvironment, ast: nodes.Node, context_names: Iterable[str]
) -> Iterator[tuple[str, str]]:
    """(message, hint) for each refusal visible in a parsed template: unknown filters and tests,
    attributes the sandbox refuses, constant ranges over the limit."""
    roots = set(context_names)
    known_filters = sorted(n for n in env.filters if not n.startswith("_"))
    for node in ast.find_all((nodes.Filter, nodes.Test)):
        table = env.filters if isinstance(node, nodes.Filter) else env.tests
        if node.name not in table or node.name.startswith("_"):
            what = "filter" if isinstance(node, nodes.Filter) else "test"
            known = known_filters if isinstance(node, nodes.Filter) else sorted(env.tests)
            match = _closest(node.name, known)
            yield (f"unknown {what} '{node.name}'",
                   (f"did you mean '{match}'? " if match else "") + f"known {what}s: {', '.join(known)}")
    for access in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(access, nodes.Filter):  # `x | attr('__init__')` reads an attribute too
            name = _const_str(access.args[0]) if access.name == "attr" and access.args else None
        elif isinstance(access, nodes.Getattr):
            name = access.attr
        else:
            assert isinstance(access, nodes.Getitem)
            name = _const_str(access.arg)
        if name is None:
            continue
        base = getattr(access, "node", None)
        on_context = isinstance(base, nodes.Name) and base.name in roots
        if name.startswith("__") or (not on_context and (name.startswith("_") or name in UNSAFE_ATTRIBUTES)):
            yield (f"unsafe template: the attribute '{name}' is refused (templates run in a sandbox)",
                   "templates read values (vars.x, steps.id.output, env.NAME); names starting with '_' "
                   "and Python internals are not reachable")
    for call in ast.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "range":
            consts = [v for v in map(_const_int, call.args) if v is not None]
            if len(consts) == len(call.args) and 1 <= len(consts) <= 3 and not call.kwargs:
                try:
                    size = len(range(*consts))
                except ValueError:
                    continue
                if size > MAX_RANGE:
                    yield (f"range() of {size:,} items is over the limit of {MAX_RANGE:,}",
                           "templates are sandboxed: ranges, strings and output are limited")


def _const_int(node: nodes.Node) -> int | None:
    """The value of a constant integer expression (`10**9`, `-5`), computed within the limits."""
    if isinstance(node, nodes.Const):
        return node.value if isinstance(node.value, int) and not isinstance(node.value, bool) else None
    if isinstance(node, nodes.Neg):
        inner = _const_int(node.node)
        return None if inner is None else -inner
    if isinstance(node, nodes.Pow | nodes.Mul | nodes.Add | nodes.Sub):
        left, right = _const_int(node.left), _const_int(node.right)
        if left is None or right is None:
            return None
        try:
            guard_binop(node.operator, left, right)
        except TemplateLimit:
            return MAX_SIZE**2  # far over any limit: the range is reported as too big
        value = SandboxedEnvironment.default_binop_table[node.operator](left, right)
        return value if isinstance(value, int) else None
    return None


def _const_str(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def _closest(word: str, choices: list[str]) -> str | None:
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return match[0] if match else None

