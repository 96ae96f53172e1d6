"""Values as expectations see them: JSON-like types, strict equality, and how values are shown."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from typing import Any


def _is_decimal(value: Any) -> bool:
    # Only a loaded decimal module can have produced a Decimal; importing it ourselves would
    # cost start-up time for nothing.
    decimal = sys.modules.get("decimal")
    return decimal is not None and isinstance(value, decimal.Decimal)


def is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) or _is_decimal(value)


def numbers_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Make a Decimal and a float comparable the way a reader expects: Decimal("0.95") == 0.95."""
    if _is_decimal(a) and isinstance(b, float) and math.isfinite(b):
        return a, type(a)(repr(b))
    if _is_decimal(b) and isinstance(a, float) and math.isfinite(a):
        return type(b)(repr(a)), b
    return a, b


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + '"'


def render_full(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, re.Pattern):
        return "/" + value.pattern.replace("/", "\\/") + "/"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{quote(str(k))}: {render_full(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render_full(v) for v in value) + "]"
    if _is_decimal(value):
        return str(value)
    return repr(value)


def render(value: Any, limit: int | None = 200) -> str:
    """A value as written in expectations (JSON-like), truncated to `limit` characters."""
    text = render_full(value)
    if limit is not None and len(text) > limit:
        return f"{text[:limit]}... ({len(text)} characters)"
    return text


def typed(value: Any) -> str:
    """A value with its type, for messages: `string "200"`, `number 5`, `null`."""
    return "null" if value is None else f"{type_name(value)} {render(value)}"


def equal(a: Any, b: Any) -> bool:
    """Strict deep equality: numbers compare numerically, nothing else crosses types."""
    if is_number(a) and is_number(b):
        x, y = numbers_pair(a, b)
        return bool(x == y)
    if type_name(a) != type_name(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return bool(a == b)
