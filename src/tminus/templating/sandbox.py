"""The sandbox every runbook template runs in: no Python internals, and limits on what one rendering
may build or spend.

Jinja2's `SandboxedEnvironment` refuses attributes starting with `_` and Python internals (so
`cycler.__init__.__globals__` reaches nothing). On top of it, each rendering has a budget: ranges,
strings and lists are capped in size, loops and calls are counted, and a rendering that takes
longer than `TIME_LIMIT` stops. Operations that could build something huge in one go (`'x' * n`,
`a ** b`, `s.replace(...)`, `'x' | center(n)`, `'%9999999d' % 1`) are checked *before* they run.
`static_problems` finds what can be seen without running (unknown filters, unsafe attributes,
oversized constant ranges), so `tminus validate` refuses it with a position.
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_FUNCTION_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    UNSAFE_METHOD_ATTRIBUTES,
    ImmutableSandboxedEnvironment,
    SandboxedEnvironment,
    SecurityError,
)
from jinja2.visitor import NodeTransformer

MAX_RANGE = 10_000  # items in one range()
MAX_SIZE = 1_000_000  # characters of a string (and of a rendering's output), items of a list
MAX_INT_BITS = 4_096  # about 1,200 decimal digits
MAX_WRAP = 100_000  # characters `wordwrap` accepts (textwrap is slow on long words)
MAX_STEPS = 200_000  # loop iterations, calls and filters in one rendering
TIME_LIMIT = 1.0  # seconds for one rendering

UNSAFE_ATTRIBUTES = frozenset(
    {"mro"} | UNSAFE_FUNCTION_ATTRIBUTES | UNSAFE_METHOD_ATTRIBUTES | UNSAFE_GENERATOR_ATTRIBUTES
    | UNSAFE_COROUTINE_ATTRIBUTES | UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
)
_BIG_WIDTH = re.compile(r"\d{7,}|%[^a-zA-Z%]*\*")  # a width of a million or more, or a '*' width
LOOP_FILTER = "_tminus_loop"
EMIT_FILTER = "_tminus_emit"
SIZE_FILTER = "_tminus_size"


class TemplateLimit(SecurityError):
    """A rendering went over a limit, or asked for something the sandbox refuses."""


@dataclass
class _Budget:
    deadline: float
    steps: int = 0
    emitted: int = 0


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("tminus_template_budget", default=None)


@contextmanager
def budget() -> Iterator[None]:
    """One rendering's budget (nested renderings share the outer one)."""
    if _budget.get() is not None:
        yield
        return
    token = _budget.set(_Budget(deadline=time.monotonic() + TIME_LIMIT))
    try:
        yield
    finally:
        _budget.reset(token)


def tick(count: int = 1) -> None:
    b = _budget.get()
    if b is None:
        return
    b.steps += count
    if b.steps > MAX_STEPS:
        raise TemplateLimit(f"the template does too much work (over {MAX_STEPS:,} loop iterations and calls)")
    if time.monotonic() > b.deadline:
        raise TemplateLimit(f"the template took longer than {TIME_LIMIT:g} s to render")


def check_size(value: Any) -> Any:
    """Refuse a string or collection over MAX_SIZE, or an integer over MAX_INT_BITS."""
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset) and len(value) > MAX_SIZE:
        what = "characters" if isinstance(value, str | bytes) else "items"
        raise TemplateLimit(f"the template builds a value of {len(value):,} {what} (the limit is {MAX_SIZE:,})")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise TemplateLimit(f"the template builds an integer of over {MAX_INT_BITS:,} bits")
    return value


def _check_ints(values: Iterable[Any], what: str) -> None:
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_SIZE:
            raise TemplateLimit(f"{what}: the number {v:,} is over the limit of {MAX_SIZE:,}")


def _check_format(text: Any, what: str) -> None:
    if isinstance(text, str) and _BIG_WIDTH.search(text):
        raise TemplateLimit(f"{what}: a format with a width of a million or more (or a '*' width) is refused")


def _estimate(name: str, obj: Any, args: tuple[Any, ...]) -> int:
    """The length a string operation would produce, before running it."""
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = obj.count(args[0]) if args[0] else len(obj) + 1
        if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
            count = min(count, args[2])
        return len(obj) + count * (len(args[1]) - len(args[0]))
    if name == "join" and args and isinstance(args[0], list | tuple):
        return len(obj) * len(args[0]) + sum(len(x) for x in args[0] if isinstance(x, str))
    return 0


def limited_range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise TemplateLimit(f"range() of {len(r):,} items is over the limit of {MAX_RANGE:,}")
    return r


def _guard_binop(op: str, left: Any, right: Any) -> None:
    if op == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(n, int) and len(seq) * n > MAX_SIZE:
                raise TemplateLimit(f"'*' would build {len(seq) * n:,} items (the limit is {MAX_SIZE:,})")
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"'*' would build an integer of over {MAX_INT_BITS:,} bits")
    elif op == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
        if right * math.log2(abs(left)) > MAX_INT_BITS:
            raise TemplateLimit(f"'**' would build an integer of over {MAX_INT_BITS:,} bits")
    elif op == "%" and isinstance(left, str):
        _check_format(left, "'%'")
        _check_ints(right if isinstance(right, tuple) else (right,), "'%'")


def _guarded_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    skip = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0  # the context/environment argument

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tick()
        values = args[skip:]
        _check_ints((*values[1:], *kwargs.values()), f"the filter '{name}'")
        if name == "format" and values:
            _check_format(values[0], "the filter 'format'")
        if name == "wordwrap" and values and isinstance(values[0], str) and len(values[0]) > MAX_WRAP:
            raise TemplateLimit(f"the filter 'wordwrap' takes at most {MAX_WRAP:,} characters")
        if name in ("join", "replace") and values and isinstance(values[0], str | list | tuple):
            subject = values[0] if name == "replace" else (values[1] if len(values) > 1 else "")
            rest = values[1:] if name == "replace" else (list(values[0]),)
            if isinstance(subject, str) and _estimate(name, subject, tuple(rest)) > MAX_SIZE:
                raise TemplateLimit(f"the filter '{name}' would build over {MAX_SIZE:,} characters")
        return check_size(fn(*args, **kwargs))

    return wrapper


@pass_context
def _loop(_ctx: Context, iterable: Any) -> Iterator[Any]:
    for item in iterable:
        tick()
        yield item


@pass_context
def _emit(_ctx: Context, value: Any) -> str:
    text = str(value)
    b = _budget.get()
    if b is not None:
        b.emitted += len(text)
        if b.emitted > MAX_SIZE:
            raise TemplateLimit(f"the template writes over {MAX_SIZE:,} characters")
    return text


@pass_context
def _size(_ctx: Context, value: Any) -> Any:
    return check_size(value)


class GuardedEnvironment(ImmutableSandboxedEnvironment):
    """A sandbox that also refuses changing lists and dicts (a template must not change `vars` for the
    next one), with tminus's limits. Templates must be compiled from `guard(ast)`."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals["range"] = limited_range
        self.globals.pop("lipsum", None)  # lorem ipsum has no place in a runbook; lipsum(n) is a bomb
        self.filters.update({name: _guarded_filter(name, fn) for name, fn in self.filters.items()})
        self.filters.update({LOOP_FILTER: _loop, EMIT_FILTER: _emit, SIZE_FILTER: _size})

    def add_filters(self, **filters: Callable[..., Any]) -> None:
        self.filters.update({name: _guarded_filter(name, fn) for name, fn in filters.items()})

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        tick()
        _guard_binop(operator_, left, right)
        return check_size(self.binop_table[operator_](left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        tick()
        if __obj is not limited_range:  # range says it better: "range() of N items"
            _check_ints((*args, *kwargs.values()), f"calling {getattr(__obj, '__name__', 'a function')}")
        target = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by the sandbox
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            name = target.__name__
            if name in ("format", "format_map"):
                _check_format(owner, f"str.{name}")
            if _estimate(name, owner, args) > MAX_SIZE:
                raise TemplateLimit(f"str.{name} would build over {MAX_SIZE:,} characters")
        return check_size(super().call(__context, __obj, *args, **kwargs))


class _Guard(NodeTransformer):
    """Loops count their iterations, every `{{ }}` measures what it writes, every `~` is capped."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _wrap(node.iter, LOOP_FILTER)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_wrap(child, EMIT_FILTER) for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _wrap(node, SIZE_FILTER)


def guard(ast: nodes.Template) -> nodes.Template:
    """Rewrite a parsed template (or expression, wrapped in a Template) before it is compiled."""
    result = _Guard().visit(ast)
    assert isinstance(result, nodes.Template)
    return result


def _wrap(node: nodes.Node, name: str) -> nodes.Expr:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


# --- what validation can see without running --------------------------------------------------


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
            _guard_binop(node.operator, left, right)
        except TemplateLimit:
            return MAX_SIZE**2  # far over any limit: the range is reported as too big
        value = SandboxedEnvironment.default_binop_table[node.operator](left, right)
        return value if isinstance(value, int) else None
    return None


def _const_str(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def _closest(word: str, choices: list[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return match[0] if match else None

