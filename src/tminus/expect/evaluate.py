"""What expectations mean: the queries, filters and predicates, and how a verdict is reached.

Types are strict, as in hurl: a string never equals a number, a boolean is not a number, and
ordering anything but numbers is an error. A value that is not there gives a *no data* verdict
(passed=None), distinct from a failure, except where absence is itself the answer (`exists`,
`isNull`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tminus.expect.regex import search
from tminus.expect.values import (
    equal,
    is_number,
    numbers_pair,
    quote,
    render,
    render_full,
    type_name,
    typed,
)
from tminus.expect.vocabulary import EQUALITIES, NO_OPERAND, ORDERINGS, check_operand, check_tolerance


class NoData(Exception):
    """The queried value is not there (key, header or JSON path missing). str() says what."""


class TypeMismatch(TypeError):
    """A filter or predicate does not fit the value's type: a failure even when negated."""


# --- assertions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    name: str
    argument: int | None = None  # only `nth` takes one

    def __str__(self) -> str:
        return self.name if self.argument is None else f"{self.name} {self.argument}"


@dataclass
class Verdict:
    assertion: str
    passed: bool | None  # None = no data
    actual: Any
    expected: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: long or structured actual values become truncated text."""
        actual = self.actual
        if isinstance(actual, float) and not math.isfinite(actual):
            actual = repr(actual)
        elif isinstance(actual, str):
            actual = actual if len(actual) <= 500 else render(actual, 500)
        elif not (actual is None or isinstance(actual, bool | int | float)):
            actual = render(actual, 500)
        return {
            "assertion": self.assertion,
            "passed": self.passed,
            "actual": actual,
            "expected": self.expected,
            "message": self.message,
        }


@dataclass(frozen=True)
class Assertion:
    text: str
    query: str
    argument: str | None
    filters: tuple[Filter, ...]
    negated: bool
    predicate: str
    operand: Any
    tolerance: float | None
    # The operand as the author wrote it (500ms, "x"), for messages; not part of the rule.
    operand_text: str | None = field(default=None, compare=False, repr=False)

    @property
    def subject(self) -> str:
        """Query, argument and filters, e.g. `jsonpath "$.items" count`."""
        parts = [self.query]
        if self.argument is not None:
            parts.append(quote(self.argument))
        parts.extend(str(f) for f in self.filters)
        return " ".join(parts)

    @property
    def expected(self) -> str:
        """The predicate side, e.g. `== 200`, `not exists`, `== 0.95 +- 0.01`."""
        parts = ["not"] if self.negated else []
        parts.append(self.predicate)
        if self.predicate not in NO_OPERAND:
            parts.append(self.operand_text or render(self.operand, None))
        if self.tolerance is not None:
            parts += ["+-", render(self.tolerance)]
        return " ".join(parts)

    def canonical(self) -> str:
        return f"{self.subject} {self.expected}"

    def with_operand(self, operand: Any) -> Assertion:
        """The same rule with another threshold (replaying history against a new value)."""
        value = check_operand(self.predicate, operand)
        check_tolerance(self.predicate, value, self.tolerance)
        changed = replace(self, operand=value, operand_text=None)
        return replace(changed, text=changed.canonical())

    def extract(self, values: Mapping[str, Any]) -> Any:
        """The queried value after filters.

        Raises NoData when it is not there, TypeMismatch when a filter does not fit its type.
        """
        value = _query(self.query, self.argument, values)
        for f in self.filters:
            value = _filter(f, value)
        return value

    def evaluate(self, values: Mapping[str, Any]) -> Verdict:
        try:
            actual = self.extract(values)
        except NoData as missing:
            return self._absent(str(missing))
        except TypeMismatch as exc:
            return self._verdict(False, None, str(exc))
        try:
            holds = _holds(self.predicate, self.operand, self.tolerance, actual)
        except TypeMismatch as exc:
            return self._verdict(False, actual, f"{exc}, got {typed(actual)}")
        if holds != self.negated:
            return self._verdict(True, actual, f"ok, got {render(actual)}")
        want, got = self.expected, render(actual)
        if self.predicate == "==" and not self.negated:
            want = self.operand_text or render(self.operand)
            if self.tolerance is not None:
                want += f" +- {render(self.tolerance)}"
        if self.predicate in NO_OPERAND or _types_differ(self.predicate, self.operand, actual):
            # Strict typing surprises people ("200" is not 200): name both types.
            if self.predicate == "==" and not self.negated and self.operand is not None:
                want = f"{type_name(self.operand)} {want}"
            got = typed(actual)
        return self._verdict(False, actual, f"expected {want}, got {got}")

    def _absent(self, reason: str) -> Verdict:
        if self.predicate in ("exists", "isNull"):
            passed = self.negated if self.predicate == "exists" else not self.negated
            return self._verdict(passed, None, f"ok, {reason}" if passed else reason)
        return self._verdict(None, None, f"no data, {reason}")

    def _verdict(self, passed: bool | None, actual: Any, detail: str) -> Verdict:
        return Verdict(self.text, passed, actual, self.expected, f"{self.text}: {detail}")


def _types_differ(predicate: str, operand: Any, actual: Any) -> bool:
    kind = type_name(actual)
    if predicate in EQUALITIES:
        return kind != type_name(operand)
    if predicate == "in":
        return all(kind != type_name(item) for item in operand)
    return False


def evaluate_all(assertions: Sequence[Assertion], values: Mapping[str, Any]) -> list[Verdict]:
    return [a.evaluate(values) for a in assertions]


# --- queries and filters ---------------------------------------------------------------


def _query(name: str, argument: str | None, values: Mapping[str, Any]) -> Any:
    if name == "header":
        assert argument is not None
        headers = values.get("headers")
        if headers is None:
            raise NoData("there are no headers (only http steps have them)")
        if argument in headers:  # httpx.Headers already ignores case
            return headers[argument]
        wanted = argument.lower()
        for key, value in headers.items():
            if str(key).lower() == wanted:
                return value
        raise NoData(f"header {quote(argument)} is missing")
    if name == "jsonpath":
        assert argument is not None
        if "json" not in values:
            raise NoData("there is no JSON body")
        from tminus.expect.jsonpath import compile_path  # loaded only when a path is used

        path = compile_path(argument)
        found = path.find(values["json"])
        if not found:
            raise NoData(f"jsonpath {quote(argument)} matched nothing")
        return found[0] if path.definite else found
    if name == "column":
        assert argument is not None
        rows = values.get("rows")
        if rows is None:
            raise NoData("there are no rows (only sql steps have them)")
        if not rows:
            raise NoData(f"column {quote(argument)} is missing: the query returned no rows")
        row = getattr(rows[0], "_mapping", rows[0])  # a SQLAlchemy Row or a mapping
        if not isinstance(row, Mapping) or argument not in row:
            columns = ", ".join(map(str, row)) if isinstance(row, Mapping) else "none by name"
            raise NoData(f"column {quote(argument)} is missing (columns: {columns})")
        return row[argument]
    if name not in values:
        raise NoData(f"{name} is missing")
    return values[name]


def _filter(f: Filter, value: Any) -> Any:
    name = f.name
    if name in ("count", "length"):
        if isinstance(value, str | bytes | list | tuple | Mapping):
            return len(value)
        raise TypeMismatch(f"filter {name} needs a list, an object or a string, got {type_name(value)}")
    if name in ("first", "last", "nth"):
        if not isinstance(value, list | tuple):
            raise TypeMismatch(f"filter {name} needs a list, got {typed(value)}")
        index = {"first": 0, "last": -1}.get(name, f.argument)
        assert index is not None
        if not -len(value) <= index < len(value):
            raise NoData(f"{f} is missing: the list has {len(value)} items")
        return value[index]
    if name == "keys":
        if isinstance(value, Mapping):
            return list(value.keys())
        raise TypeMismatch(f"filter keys needs an object, got {type_name(value)}")
    if name == "toString":
        return value if isinstance(value, str) else render_full(value)
    if name in ("toInt", "toFloat"):
        return _convert(name, value)
    if not isinstance(value, str):
        raise TypeMismatch(f"filter {name} needs a string, got {typed(value)}")
    return value.strip() if name == "trim" else value.lower() if name == "lower" else value.upper()


def _convert(name: str, value: Any) -> int | float:
    if isinstance(value, str):
        try:
            return int(value.strip()) if name == "toInt" else float(value)
        except ValueError:
            kind = "an integer" if name == "toInt" else "a number"
            raise TypeMismatch(f"filter {name} cannot read {kind} from string {render(value)}") from None
    if is_number(value) and (name == "toFloat" or math.isfinite(value)):
        return int(value) if name == "toInt" else float(value)
    raise TypeMismatch(f"filter {name} needs a number or a string, got {typed(value)}")


# --- predicates ------------------------------------------------------------------------


def _holds(predicate: str, operand: Any, tolerance: float | None, actual: Any) -> bool:
    """Whether the predicate holds for a present value. Raises TypeMismatch on a type error."""
    if predicate in EQUALITIES:
        if tolerance is None:
            same = equal(actual, operand)
        elif is_number(actual):
            gap = abs(float(actual) - float(operand))
            # 0.94 is within 0.95 +- 0.01 as written, though binary floats put it 9e-18 outside
            same = gap <= tolerance or math.isclose(gap, tolerance, rel_tol=1e-9)
        else:
            raise TypeMismatch(f"expected a number within {render(operand)} +- {render(tolerance)}")
        return same if predicate == "==" else not same
    if predicate in ORDERINGS:
        if not is_number(actual):
            raise TypeMismatch(f"expected a number {predicate} {render(operand)}")
        a, b = numbers_pair(actual, operand)
        return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[predicate])
    if predicate == "in":
        return any(equal(actual, item) for item in operand)
    if predicate == "contains":
        if isinstance(actual, str):
            if not isinstance(operand, str):
                raise TypeMismatch(
                    f"expected a list or an object to contain {typed(operand)} (a string only contains strings)"
                )
            return operand in actual
        if isinstance(actual, list | tuple):
            return any(equal(item, operand) for item in actual)
        if isinstance(actual, Mapping):
            return operand in actual
        raise TypeMismatch("expected a string, a list or an object to look into")
    if predicate in ("startsWith", "endsWith", "matches"):
        if not isinstance(actual, str):
            raise TypeMismatch(f"expected a string for {predicate}")
        if predicate == "matches":
            try:
                return search(operand, actual)
            except ValueError as exc:  # too long to search in bounded time
                raise TypeMismatch(str(exc)) from None
        return actual.startswith(operand) if predicate == "startsWith" else actual.endswith(operand)
    if predicate == "isEmpty":
        if isinstance(actual, str | bytes | list | tuple | Mapping):
            return len(actual) == 0
        raise TypeMismatch("expected a string, a list or an object for isEmpty")
    return {
        "exists": True,
        "isNumber": is_number(actual),
        "isString": isinstance(actual, str),
        "isBoolean": isinstance(actual, bool),
        "isList": isinstance(actual, list | tuple),
        "isObject": isinstance(actual, Mapping),
        "isNull": actual is None,
    }[predicate]
