"""The sandbox every runbook template runs in: no Python internals, and limits on what one rendering
may build or spend.

Jinja2's `SandboxedEnvironment` refuses attributes starting with `_` and Python internals (so
`cycler.__init__.__globals__` reaches nothing). On top of it, each rendering has a budget: ranges,
strings and lists are capped in size, loops and calls are counted, and a rendering that takes
longer than `TIME_LIMIT` stops. Operations that could build something huge in one go (`'x' * n`,
`a ** b`, `s.replace(...)`, `'x' | center(n)`, `'%9999999d' % 1`) are checked *before* they run.
`checks.py` finds what can be seen without running, for `tminus validate`.
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
_NESTED_SPEC = re.compile(r"\{[^{}]*\{")  # '{:{}}'.format(x, width): the width is an argument
# Filters and str methods whose numbers are sizes (a width, a count of pieces); elsewhere a number
# is a value (an epoch in '{}'.format(ts) is fine).
SIZE_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate", "batch", "slice"})
SIZE_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
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


def weight(value: Any, limit: int = MAX_SIZE) -> int:
    """About how many characters `value` is as text, counting a list's items (the same string
    repeated a million times in a list is a million strings once printed); stops past `limit`."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, list | tuple | set | frozenset | dict):
        total = len(value)
        for item in (*value.keys(), *value.values()) if isinstance(value, dict) else value:
            if total > limit:
                break
            total += weight(item, limit - total) if isinstance(item, str | bytes | list | tuple | dict) else 1
        return total
    return 1


def check_size(value: Any) -> Any:
    """Refuse a string or collection over MAX_SIZE, or an integer over MAX_INT_BITS."""
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset) and weight(value) > MAX_SIZE:
        what = "characters" if isinstance(value, str | bytes) else "characters once written out"
        raise TemplateLimit(f"the template builds a value of over {MAX_SIZE:,} {what}")
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


def _estimate(name: str, text: str, args: tuple[Any, ...]) -> int:
    """About the length a string operation (a method of `text`, or a filter of it) would produce,
    before running it: the ones that can multiply their input."""
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = text.count(args[0]) if args[0] else len(text) + 1
        if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
            count = min(count, args[2])
        return len(text) + count * (len(args[1]) - len(args[0]))
    if name == "join" and args and isinstance(args[0], str | list | tuple | dict | set | frozenset):
        return len(text) * len(args[0]) + weight(args[0])
    if name in ("format", "format_map", "%"):  # each field may repeat the largest value
        values = [v for a in args for v in (a.values() if isinstance(a, dict) else a if isinstance(a, tuple) else (a,))]
        largest = max((weight(v) if isinstance(v, str | list | tuple | dict) else 32 for v in values), default=0)
        return len(text) + (text.count("{") + text.count("%")) * largest
    if name == "translate" and args and isinstance(args[0], dict):
        largest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        return len(text) * largest
    if name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else 8
        return len(text) + text.count("\t") * size
    if name == "indent":
        width = args[0] if args and isinstance(args[0], int | str) else 4
        return len(text) + (text.count("\n") + 1) * (len(width) if isinstance(width, str) else width)
    return 0


def limited_range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise TemplateLimit(f"range() of {len(r):,} items is over the limit of {MAX_RANGE:,}")
    return r


def guard_binop(op: str, left: Any, right: Any) -> None:
    if op == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(n, int) and weight(seq) * n > MAX_SIZE:
                raise TemplateLimit(f"'*' would build over {MAX_SIZE:,} characters ({len(seq) * n:,} items)")
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"'*' would build an integer of over {MAX_INT_BITS:,} bits")
    elif op == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
        if right * math.log2(abs(left)) > MAX_INT_BITS:
            raise TemplateLimit(f"'**' would build an integer of over {MAX_INT_BITS:,} bits")
    elif op == "%" and isinstance(left, str):
        _check_format(left, "'%'")
        if _estimate("%", left, (right,)) > MAX_SIZE:
            raise TemplateLimit(f"'%' would build over {MAX_SIZE:,} characters")


def _guarded_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    skip = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0  # the context/environment argument

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tick()
        values = args[skip:]
        if name in SIZE_FILTERS:
            _check_ints((*values[1:], *kwargs.values()), f"the filter '{name}'")
        if name == "format" and values:
            _check_format(values[0], "the filter 'format'")
        if name == "wordwrap" and values and isinstance(values[0], str) and len(values[0]) > MAX_WRAP:
            raise TemplateLimit(f"the filter 'wordwrap' takes at most {MAX_WRAP:,} characters")
        estimate = 0
        if name == "join" and values:
            separator = values[1] if len(values) > 1 and isinstance(values[1], str) else ""
            estimate = _estimate("join", separator, (values[0],))
        elif name in ("replace", "indent", "format") and values and isinstance(values[0], str):
            estimate = _estimate(name, values[0], tuple(values[1:]))
        if estimate > MAX_SIZE:
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
        guard_binop(operator_, left, right)
        return check_size(self.binop_table[operator_](left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        tick()
        target = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by the sandbox
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            name = target.__name__
            if name in ("format", "format_map"):
                _check_format(owner, f"str.{name}")
            if name in SIZE_METHODS or (name in ("format", "format_map") and _NESTED_SPEC.search(owner)):
                values = (*args, *kwargs.values(), *(v for a in args if isinstance(a, dict) for v in a.values()))
                _check_ints(values, f"str.{name}")
            if _estimate(name, owner, (*args, kwargs)) > MAX_SIZE:
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
