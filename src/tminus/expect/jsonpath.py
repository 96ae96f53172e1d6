"""A small JSONPath evaluator: `$`, `.key`, `.*`, `['key']`, `[n]`, `[*]`, `[a:b]`, `[0,2]`, `..key`.

Written here rather than taken from jsonpath-ng: that package is not a dependency of tminus,
builds PLY parser tables on first use, and implements far more (filters, arithmetic) than the
one-line expectations need. Paths are compiled once and cached.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


class JsonPathError(ValueError):
    """A JSONPath that cannot be compiled. `offset` is the 0-based position inside the path."""

    def __init__(self, message: str, offset: int):
        self.offset = offset
        super().__init__(message)


@dataclass(frozen=True)
class _Step:
    kind: str  # "select" (names/indices), "wild" or "slice"
    names: tuple[str | int, ...] = ()
    bounds: tuple[int | None, int | None, int | None] = (None, None, None)
    descendant: bool = False

    def select(self, node: Any) -> Iterator[Any]:
        if self.kind == "wild":
            if isinstance(node, Mapping):
                yield from node.values()
            elif isinstance(node, list | tuple):
                yield from node
        elif self.kind == "slice":
            if isinstance(node, list | tuple):
                yield from node[slice(*self.bounds)]
        else:
            for name in self.names:
                if isinstance(name, str):
                    if isinstance(node, Mapping) and name in node:
                        yield node[name]
                elif isinstance(node, list | tuple) and -len(node) <= name < len(node):
                    yield node[name]


@dataclass(frozen=True)
class JsonPath:
    text: str
    steps: tuple[_Step, ...]

    @property
    def definite(self) -> bool:
        """True when the path names one place (no wildcard, slice, union or `..`)."""
        return all(s.kind == "select" and len(s.names) == 1 and not s.descendant for s in self.steps)

    def find(self, document: Any) -> list[Any]:
        """Every value the path selects, in document order."""
        nodes = [document]
        for step in self.steps:
            if step.descendant:
                nodes = [d for n in nodes for d in _walk(n)]
            nodes = [child for n in nodes for child in step.select(n)]
        return nodes


def _walk(node: Any) -> Iterator[Any]:
    """The node and all its descendants, pre-order; iterative so deep documents cannot overflow."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, Mapping):
            stack.extend(reversed(list(current.values())))
        elif isinstance(current, list | tuple):
            stack.extend(reversed(current))


_NAME = re.compile(r"[^.\[\]\s'\"]+")
_ITEM = re.compile(
    r"""\s*(?:'(?P<sq>(?:[^'\\]|\\.)*)'|"(?P<dq>(?:[^"\\]|\\.)*)"
    |(?P<start>-?\d*)\s*:\s*(?P<stop>-?\d*)(?:\s*:\s*(?P<step>-?\d*))?
    |(?P<index>-?\d+))\s*""",
    re.VERBOSE,
)
_UNESCAPE = re.compile(r"\\(.)")


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def _dotted(text: str, i: int, descendant: bool) -> tuple[_Step, int]:
    if text.startswith("*", i):
        return _Step("wild", descendant=descendant), i + 1
    m = _NAME.match(text, i)
    if not m:
        raise JsonPathError("expected a key name or * after '.', e.g. $.items or $.items.*", i)
    return _Step("select", (m.group(),), descendant=descendant), m.end()


def _bracket(text: str, i: int, descendant: bool) -> tuple[_Step, int]:
    inner = i + 1
    rest = text[inner:].lstrip()
    if rest.startswith("*"):
        close = text.find("]", inner)
        if close < 0 or text[inner:close].strip() != "*":
            raise JsonPathError("expected ']' after '[*'", inner)
        return _Step("wild", descendant=descendant), close + 1
    if rest.startswith("?"):
        raise JsonPathError(
            "filter expressions [?(...)] are not supported; select with [*] and judge the values "
            "with a predicate instead",
            inner,
        )
    names: list[str | int] = []
    pos = inner
    while True:
        m = _ITEM.match(text, pos)
        if not m or m.end() == pos:
            raise JsonPathError("expected a 'key', an index, a slice a:b or * inside [...]", pos)
        if m.group("sq") is not None or m.group("dq") is not None:
            raw = m.group("sq") if m.group("sq") is not None else m.group("dq")
            names.append(_UNESCAPE.sub(r"\1", raw))
        elif m.group("index") is not None:
            names.append(int(m.group("index")))
        else:  # a slice stands alone
            bounds = (_int(m.group("start")), _int(m.group("stop")), _int(m.group("step")))
            if bounds[2] == 0:
                raise JsonPathError("a slice step cannot be 0", pos)
            if names or not text.startswith("]", m.end()):
                raise JsonPathError("a slice [a:b] cannot be combined with other selectors", pos)
            return _Step("slice", bounds=bounds, descendant=descendant), m.end() + 1
        pos = m.end()
        if text.startswith("]", pos):
            return _Step("select", tuple(names), descendant=descendant), pos + 1
        if not text.startswith(",", pos):
            raise JsonPathError("expected ',' or ']'", pos)
        pos += 1


@lru_cache(maxsize=512)
def compile_path(text: str) -> JsonPath:
    """Compile a JSONPath. Raises JsonPathError saying what was expected where."""
    if not text.startswith("$"):
        raise JsonPathError("a JSONPath starts with '$', e.g. $.items[0].id", 0)
    steps: list[_Step] = []
    i = 1
    while i < len(text):
        if text.startswith("..", i):
            i += 2
            if text.startswith("[", i):
                step, i = _bracket(text, i, True)
            else:
                step, i = _dotted(text, i, True)
        elif text[i] == ".":
            step, i = _dotted(text, i + 1, False)
        elif text[i] == "[":
            step, i = _bracket(text, i, False)
        else:
            raise JsonPathError(f"expected '.', '..' or '[' but found {text[i]!r}", i)
        steps.append(step)
    return JsonPath(text, tuple(steps))
