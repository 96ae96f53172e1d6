"""Parse one-line expectations: `[not] QUERY [ARG] [FILTER ...] [not] PREDICATE [OPERAND] [+- TOL]`.

A regex tokenizer and a small recursive-descent parser; every syntax error points at the
offending token and says what was expected there.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple, NoReturn

from tminus.errors import ExpectationSyntaxError
from tminus.expect.evaluate import Assertion, Filter
from tminus.expect.regex import UnsafePattern, compile_pattern
from tminus.expect.values import is_number
from tminus.expect.vocabulary import (
    ARGUMENT_QUERIES,
    FILTERS,
    NO_OPERAND,
    ORDERINGS,
    PREDICATES,
    QUERIES,
    check_operand,
    check_tolerance,
)

_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?P<unit>[A-Za-z][A-Za-z0-9.]*)?
    |(?P<string>"(?:[^"\\]|\\.)*")
    |(?P<regex>/(?:[^/\\]|\\.)*/)
    |(?P<op>==|!=|>=|<=|>|<)
    |(?P<pm>\+-|±)
    |(?P<punct>[\[\],])
    |(?P<word>[A-Za-z_][A-Za-z0-9_]*)""",
    re.VERBOSE,
)
# Durations are numbers of milliseconds, like the `duration` value they are compared with.
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_LITERAL_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None}
_OPS = "==, !=, <, <=, >, >="
_QUERY_LIST = ", ".join(f"{name} {ARGUMENT_QUERIES[name]}" if name in ARGUMENT_QUERIES else name for name in QUERIES)
_OPERAND_HINT = {
    "startsWith": 'a "string"',
    "endsWith": 'a "string"',
    "matches": 'a "string" or a /regex/',
    "in": "a list such as [200, 204]",
    "<": "a number or a duration such as 500ms",
}


class _Token(NamedTuple):
    kind: str  # number, string, regex, op, pm, [, ], ",", word, end
    value: Any
    start: int
    end: int


def _fail(message: str, text: str, column: int) -> NoReturn:
    raise ExpectationSyntaxError(message, text, column)


def _suggest(word: str, choices: list[str]) -> str:
    import difflib  # only on the error path

    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _number(text: str, m: re.Match[str]) -> int | float:
    digits, unit = m.group("number"), m.group("unit")
    if unit is None:
        return float(digits) if any(c in digits for c in ".eE") else int(digits)
    whole = digits + unit
    if not _DURATION.fullmatch(whole):
        _fail(
            f"'{whole}' is neither a number nor a duration; write durations as 500ms, 2s, 1m, 1h or 1m30s",
            text,
            m.start(),
        )
    ms = sum((float(n) * _MS[u] for n, u in _DURATION_PART.findall(whole)), 0.0)
    return int(ms) if ms.is_integer() else ms


def _unescape(text: str, raw: str, start: int) -> str:
    out: list[str] = []
    i = 1
    while i < len(raw) - 1:
        c = raw[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = raw[i + 1]
        if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", raw[i + 2 : i + 6]):
            out.append(chr(int(raw[i + 2 : i + 6], 16)))
            i += 6
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            _fail(
                f"unknown escape '\\{nxt}' in a string; use \\\" \\\\ \\n \\t \\r or \\uXXXX",
                text,
                start + i,
            )
    return "".join(out)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            c = text[pos]
            if c == '"':
                _fail('unterminated string: add the closing "', text, pos)
            if c == "/":
                _fail("unterminated /regex/: add the closing /", text, pos)
            if c == "'":
                _fail('strings are written in double quotes: "like this"', text, pos)
            _fail(f"unexpected character {c!r}", text, pos)
        kind = m.lastgroup if m.lastgroup != "unit" else "number"
        assert kind is not None
        raw = m.group()
        if kind == "number":
            tokens.append(_Token("number", _number(text, m), pos, m.end()))
        elif kind == "string":
            tokens.append(_Token("string", _unescape(text, raw, pos), pos, m.end()))
        elif kind == "regex":
            tokens.append(_Token("regex", raw[1:-1].replace("\\/", "/"), pos, m.end()))
        elif kind == "punct":
            tokens.append(_Token(raw, raw, pos, m.end()))
        elif kind != "ws":
            tokens.append(_Token(kind, raw, pos, m.end()))
        pos = m.end()
    tokens.append(_Token("end", None, len(text), len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.value in words

    def fail(self, message: str, tok: _Token) -> NoReturn:
        _fail(message, self.text, tok.start)

    def so_far(self, tok: _Token) -> str:
        return self.text[: tok.start].strip()

    def parse(self) -> Assertion:
        negated = self.at_word("not")
        if negated:
            self.take()
        query, argument = self.query()
        filters = self.filters()
        if self.at_word("not"):
            tok = self.take()
            if negated:
                self.fail("'not' may appear once: at the start or just before the predicate", tok)
            negated = True
        predicate = self.predicate()
        operand_tok = self.peek()
        operand, operand_text = self.operand(predicate)
        tolerance = self.tolerance(predicate, operand, operand_tok)
        tok = self.peek()
        if tok.kind != "end":
            why = f"'{predicate}' takes no operand" if predicate in NO_OPERAND else "the expectation has ended"
            self.fail(f"unexpected {self.describe(tok)} after '{self.so_far(tok)}': {why}", tok)
        return Assertion(
            self.text, query, argument, tuple(filters), negated, predicate, operand, tolerance, operand_text
        )

    def describe(self, tok: _Token) -> str:
        return "end of text" if tok.kind == "end" else repr(self.text[tok.start : tok.end])

    def query(self) -> tuple[str, str | None]:
        tok = self.take()
        if tok.kind != "word":
            self.fail(f"expected a query (one of: {_QUERY_LIST}), got {self.describe(tok)}", tok)
        if tok.value not in QUERIES:
            hint = _suggest(tok.value, list(QUERIES))
            self.fail(f"unknown query {self.describe(tok)}{hint}; expected one of: {_QUERY_LIST}", tok)
        name: str = tok.value
        if name not in ARGUMENT_QUERIES:
            return name, None
        arg = self.take()
        if arg.kind != "string" or not arg.value:
            self.fail(
                f"expected a quoted {ARGUMENT_QUERIES[name]} after '{name}', e.g. "
                f"{name} {ARGUMENT_QUERIES[name].replace('$.path', '$.items[0].id')}",
                arg,
            )
        if name == "jsonpath":
            from tminus.expect.jsonpath import JsonPathError, compile_path  # only when a path is used

            try:
                compile_path(arg.value)
            except JsonPathError as exc:
                # exact when the path has no escapes, which paths practically never do
                _fail(f"invalid JSONPath: {exc}", self.text, min(arg.start + 1 + exc.offset, arg.end - 1))
        return name, arg.value

    def filters(self) -> list[Filter]:
        out: list[Filter] = []
        while self.peek().kind == "word" and self.peek().value in FILTERS:
            name = self.take().value
            argument = None
            if name == "nth":
                tok = self.take()
                if tok.kind != "number" or not isinstance(tok.value, int) or tok.value < 0:
                    self.fail(f"expected an index (0, 1, 2, ...) after 'nth', got {self.describe(tok)}", tok)
                argument = tok.value
            out.append(Filter("count" if name == "length" else name, argument))
        return out

    def predicate(self) -> str:
        tok = self.take()
        if tok.kind == "op" or (tok.kind == "word" and tok.value in PREDICATES):
            return str(tok.value)
        hint = _suggest(tok.value, [*PREDICATES, *FILTERS]) if tok.kind == "word" else ""
        self.fail(
            f"expected a predicate ({_OPS}, exists, contains, ...) after '{self.so_far(tok)}', "
            f"got {self.describe(tok)}{hint}; predicates: {', '.join(PREDICATES)}",
            tok,
        )

    def operand(self, predicate: str) -> tuple[Any, str | None]:
        if predicate in NO_OPERAND:
            return None, None
        tok = self.peek()
        value = self.literal(predicate)
        try:
            checked = check_operand(predicate, value)
        except ValueError as exc:
            self.fail(str(exc), tok)
        return checked, self.text[tok.start : self.tokens[self.i - 1].end]

    def literal(self, predicate: str) -> Any:
        tok = self.take()
        if tok.kind == "regex":
            try:
                return compile_pattern(tok.value)
            except re.error as exc:
                self.fail(f"invalid regular expression: {exc}", tok)
            except UnsafePattern as exc:
                self.fail(str(exc), tok)
        if tok.kind in ("number", "string"):
            return tok.value
        if tok.kind == "word" and tok.value in _LITERAL_WORDS:
            return _LITERAL_WORDS[tok.value]
        if tok.kind == "[":
            items: list[Any] = []
            while self.peek().kind != "]":
                if self.peek().kind == "regex":
                    self.fail("a /regex/ cannot be a list item; quote the text", self.peek())
                items.append(self.literal(""))  # items take any value
                sep = self.peek()
                if sep.kind == ",":
                    self.take()
                elif sep.kind != "]":
                    self.fail(f"expected ',' or ']' in the list, got {self.describe(sep)}", sep)
            self.take()
            return items
        wanted = _OPERAND_HINT.get(predicate, _OPERAND_HINT["<"] if predicate in ORDERINGS else "")
        wanted = wanted or 'a value (a number, "string", true, false, null or [list])'
        self.fail(f"expected {wanted} after '{self.so_far(tok)}', got {self.describe(tok)}", tok)

    def tolerance(self, predicate: str, operand: Any, operand_tok: _Token) -> float | None:
        if self.peek().kind != "pm":
            return None
        pm = self.take()
        tok = self.take()
        if tok.kind != "number":
            self.fail(f"expected a number after '{self.text[pm.start : pm.end]}', e.g. == 0.95 +- 0.01", tok)
        try:
            check_tolerance(predicate, operand, tok.value)
        except ValueError as exc:
            culprit = pm if predicate not in ("==", "!=") else tok if is_number(operand) else operand_tok
            self.fail(str(exc), culprit)
        return float(tok.value)


@lru_cache(maxsize=2048)
def parse(text: str) -> Assertion:
    """Parse one expectation. Raises ExpectationSyntaxError pointing at the offending token."""
    return _Parser(text).parse()
