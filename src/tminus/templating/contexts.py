"""Context-aware escaping of `{{ }}` in text that reaches a shell or a database (like Go's html/template).

Before a shell command or a SQL query is compiled, each `{{ expr }}` is rewritten, with Jinja's own
lexer, into `{{ (expr) | _tminus_shell('dq', 0) }}` or `{{ (expr) | _tminus_bind('code') }}`: the
filter depends on where the interpolation stands in the literal text before it.

Shell (POSIX sh): a bare word gets `shlex.quote` (a value of safe characters stays as it is), inside
"..." the characters `\\ " $ \\`` are escaped, inside '...' each `'` becomes `'\\''`, inside $'...'
`\\` and `'` are escaped, inside a `#` comment line breaks become spaces; inside `...` (backquotes)
the result is escaped once more for the backquotes. A list in a bare word is one quoted argument per
item. SQL: a value is bound as a parameter (`:tminus_p1`); inside a string literal, a quoted
identifier or a dollar-quoted body an interpolation is refused.

A value marked `Raw` (`| raw`, `| quote`) is pasted as it is. The text is scanned in its written
order: `{% if %}`/`{% for %}` blocks are read as if every branch were written out one after another.
"""

from __future__ import annotations

import contextvars
import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a template is compiled or rendered: a runbook without one never loads it
    import jinja2

SHELL_FILTER = "_tminus_shell"
BIND_FILTER = "_tminus_bind"
PARAM_PREFIX = "tminus_p"
RAW_FILTERS = frozenset({"raw", "quote", "shquote", "sh"})
REFUSED_SQL = {"literal": "a SQL string literal", "identifier": "a quoted SQL identifier",
               "dollar": "a dollar-quoted SQL body"}
SQL_HINT = "remove the quotes — the value is bound as a parameter — or use | raw (pasted unescaped)"


@dataclass(frozen=True)
class TemplateContext:
    """Marks a model field whose template reaches a shell or a database (`Annotated[str, SHELL]`);
    `params` names the field the bound values of a SQL template join."""

    language: str
    params: str | None = None


SHELL = TemplateContext("shell")
SQL = TemplateContext("sql", params="params")


class Raw(str):
    """Text to paste as it is: the template says it is already shell or SQL syntax."""


class ShellQuoted(Raw):
    """Quoted for a shell by `| quote`: pasted as is into a command, bound as a value in SQL."""


def raw(value: Any) -> Raw:
    return value if isinstance(value, Raw) else Raw(_text(value))


def quote(value: Any) -> ShellQuoted:
    """`| quote` / `| shquote`: quoted once, by the template's author; not quoted again."""
    return ShellQuoted(shlex.quote(_text(value)))


def _text(value: Any) -> str:
    return str(value)  # a StrictUndefined raises here, naming what is undefined


@dataclass
class Slot:
    """One `{{ }}` in a shell or SQL template: where it stands and in which context."""

    expr: str
    line: int  # 1-based, within the text
    column: int  # 1-based
    context: str
    raw_filter: str | None = None  # the last filter when it pastes as is (raw, quote, ...)


@dataclass
class Rewritten:
    text: str
    slots: list[Slot] = field(default_factory=list)
    unclosed: str | None = None  # the quoting still open at the end of the text


class ContextRefused(ValueError):
    """An interpolation where no escaping is safe (inside a SQL literal, after a backslash)."""

    def __init__(self, slot: Slot, message: str, hint: str) -> None:
        super().__init__(message)
        self.slot, self.hint = slot, hint


# --- shell ---------------------------------------------------------------------------------------

_WORD_BREAK = frozenset(" \t\n;&|()<>")


class _ShellScan:
    """The quoting context of POSIX sh text read so far: a stack of bare, sq, dq, ansi, comment, cs
    ($( ), with its open parentheses) and bq (backquotes)."""

    def __init__(self) -> None:
        self.stack: list[list[Any]] = [["bare", 0]]
        self.prev = "\n"
        self.escaped = False  # a backslash waits for the next character

    def feed(self, text: str) -> None:
        for c in text:
            kind = self.stack[-1][0]
            if self.escaped:
                self.escaped = False
            elif kind == "sq":
                if c == "'":
                    self.stack.pop()
            elif kind == "comment":
                if c == "\n":
                    self.stack.pop()
            elif kind == "ansi":
                if c == "\\":
                    self.escaped = True
                elif c == "'":
                    self.stack.pop()
            elif kind == "dq":
                self._dq(c)
            else:
                self._bare(c, kind)
            self.prev = c

    def _dq(self, c: str) -> None:
        if c == "\\":
            self.escaped = True
        elif c == '"':
            self.stack.pop()
        elif c == "(" and self.prev == "$":
            self.stack.append(["cs", 0])
        elif c == "`":
            self.stack.append(["bq", 0])

    def _bare(self, c: str, kind: str) -> None:
        top = self.stack[-1]
        if c == "\\":
            self.escaped = True
        elif c == "'":
            self.stack.append(["ansi" if self.prev == "$" else "sq", 0])
        elif c == '"':
            self.stack.append(["dq", 0])
        elif c == "(" and self.prev == "$":
            self.stack.append(["cs", 0])
        elif c == "(" and kind == "cs":
            top[1] += 1
        elif c == ")" and kind == "cs":
            if top[1]:
                top[1] -= 1
            else:
                self.stack.pop()
        elif c == "`":
            if kind == "bq":
                self.stack.pop()
            else:
                self.stack.append(["bq", 0])
        elif c == "#" and self.prev in _WORD_BREAK:
            self.stack.append(["comment", 0])

    def context(self) -> str:
        """`kind` or `kind/N` with N the backquote layers around it: the escaper's argument."""
        kind = self.stack[-1][0]
        layers = sum(1 for k, _ in self.stack if k == "bq")
        name = "bare" if kind in ("cs", "bq") else kind
        return f"{name}/{layers}" if layers else name

    def interpolated(self) -> None:
        self.prev = "x"  # a value is a word, not a word break: a '#' after it starts no comment

    def unclosed(self) -> str | None:
        open_ = [k for k, _ in self.stack[1:] if k != "comment"]
        names = {"sq": "a single quote", "dq": "a double quote", "ansi": "a $'...' quote",
                 "cs": "a $( substitution", "bq": "a backquote"}
        return names[open_[-1]] if open_ else None


def shell_escape(value: Any, context: str) -> str:
    """The text of `value` safe at `context` (see _ShellScan.context)."""
    if isinstance(value, Raw):
        return str(value)
    kind, _, layers = context.partition("/")
    items = [_text(v) for v in value] if isinstance(value, list | tuple) else None
    if kind == "bare":
        text = " ".join(map(shlex.quote, items)) if items is not None else shlex.quote(_text(value))
    else:
        text = " ".join(items) if items is not None else _text(value)
        if kind == "dq":
            text = re.sub(r'(["\\$`])', r"\\\1", text)
        elif kind == "sq":
            text = text.replace("'", "'\\''")
        elif kind == "ansi":
            text = text.replace("\\", "\\\\").replace("'", "\\'")
        elif kind == "comment":
            text = text.replace("\r", " ").replace("\n", " ")
    for _ in range(int(layers or 0)):  # inside `...`, \ ` $ are read once before the command runs
        text = re.sub(r"([\\`$])", r"\\\1", text)
    return text


# --- SQL -----------------------------------------------------------------------------------------

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_IDENT = re.compile(r"[A-Za-z0-9_$]")


class _SqlScan:
    """Where SQL text read so far stands: code, literal ('' and E'\\'), identifier ("..."),
    line (-- comment), block (/* */, nested as in PostgreSQL) or dollar ($tag$ body)."""

    def __init__(self) -> None:
        self.state = "code"
        self.backslash = False  # an E'' literal: backslash escapes
        self.depth = 0
        self.tag = ""
        self.tail = ""  # the text read, for the look-behinds

    def feed(self, text: str) -> None:
        i, n = 0, len(text)
        while i < n:
            c, ahead = text[i], text[i:i + 2]
            prev = self.tail[-1:] if i == 0 else text[i - 1]
            if self.state == "code":
                if c == "'":
                    before = (self.tail + text[:i])[-2:]
                    self.backslash = before[-1:] in ("e", "E") and not _IDENT.match(before[:1] or " ")
                    self.state = "literal"
                elif c == '"':
                    self.state = "identifier"
                elif ahead == "--":
                    self.state, i = "line", i + 1
                elif ahead == "/*":
                    self.state, self.depth, i = "block", 1, i + 1
                elif c == "$" and not _IDENT.match(prev or " "):
                    m = _DOLLAR.match(text, i)
                    if m:
                        self.state, self.tag, i = "dollar", m.group(), m.end() - 1
            elif self.state == "literal":
                if c == "\\" and self.backslash:
                    i += 1
                elif c == "'":
                    self.state = "code"  # '' reopens at once
            elif self.state == "identifier":
                if c == '"':
                    self.state = "code"
            elif self.state == "line":
                if c == "\n":
                    self.state = "code"
            elif self.state == "block":
                if ahead == "*/":
                    self.depth, i = self.depth - 1, i + 1
                    self.state = "block" if self.depth else "code"
                elif ahead == "/*":
                    self.depth, i = self.depth + 1, i + 1
            elif self.state == "dollar" and text.startswith(self.tag, i):
                self.state, i = "code", i + len(self.tag) - 1
            i += 1
        self.tail = (self.tail + text)[-2:]

    def context(self) -> str:
        return self.state

    def interpolated(self) -> None:
        self.tail = "x"

    def unclosed(self) -> str | None:
        return {"literal": "a string literal", "identifier": "a quoted identifier", "block": "a /* comment",
                "dollar": "a dollar-quoted body"}.get(self.state)


_bound: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("tminus_sql_bound", default=None)
_BINDABLE = (str, int, float, bool, type(None))


def sql_escape(value: Any, context: str) -> str:
    """A placeholder for `value`, bound in the rendering's parameters; comments get plain text."""
    if isinstance(value, Raw) and not isinstance(value, ShellQuoted):
        return str(value)
    if context == "line":
        return _text(value).replace("\r", " ").replace("\n", " ")
    if context == "block":
        return _text(value).replace("*/", "* /").replace("/*", "/ *")
    import jinja2  # loaded already: this filter runs inside a rendering

    bound = _bound.get()
    if bound is None:  # a caller forgot `with binding()`: pasting the value is what must never happen
        raise RuntimeError("a SQL template is rendered outside a binding")
    if isinstance(value, jinja2.Undefined) or not isinstance(value, _BINDABLE):
        value = _text(value)
    bound.append(value)
    return f":{PARAM_PREFIX}{len(bound)}"


@contextmanager
def binding() -> Iterator[dict[str, Any]]:
    """Collects the parameters one SQL rendering binds: the mapping is filled when the block ends."""
    values: list[Any] = []
    params: dict[str, Any] = {}
    token = _bound.set(values)
    try:
        yield params
    finally:
        _bound.reset(token)
        params.update({f"{PARAM_PREFIX}{i}": v for i, v in enumerate(values, start=1)})


# --- the rewrite ---------------------------------------------------------------------------------


def rewrite(env: jinja2.Environment, text: str, language: str) -> Rewritten:
    """`text` with every `{{ expr }}` escaped for where it stands. Raises jinja2.TemplateSyntaxError
    for text the lexer refuses, ContextRefused where no escaping is safe."""
    scan: _ShellScan | _SqlScan = _ShellScan() if language == "shell" else _SqlScan()
    out: list[str] = []
    result = Rewritten("")
    line = col = 1
    tokens: Iterator[tuple[int, str, str]] = iter(env.lexer.tokeniter(text, None))
    for _lineno, kind, value in tokens:
        if kind == "variable_begin":
            inner: list[str] = []
            start = (line, col)
            end = value
            for _l, k, v in tokens:
                if k == "variable_end":
                    end = v
                    break
                inner.append(v)
            expr = "".join(inner)
            slot = Slot(expr.strip(), start[0], start[1], scan.context(), _last_raw_filter(env, expr))
            result.slots.append(slot)
            if isinstance(scan, _ShellScan) and scan.escaped:
                raise ContextRefused(slot, "a backslash right before {{ }} would escape the quoting of the value",
                                     "remove the backslash (the value is quoted), or use | raw")
            if language == "sql" and slot.context in REFUSED_SQL and slot.raw_filter != "raw":
                raise ContextRefused(slot, f"an interpolation inside {REFUSED_SQL[slot.context]} is refused",
                                     SQL_HINT)
            name, arg = (SHELL_FILTER, slot.context) if language == "shell" else (BIND_FILTER, slot.context)
            out.append(f"{value}({expr}) | {name}({arg!r}){end}")
            scan.interpolated()
            line, col = _advance(line, col, value + expr + end)
            continue
        if kind in ("data",):
            scan.feed(value)
        out.append(value)
        line, col = _advance(line, col, value)
    result.text = "".join(out)
    result.unclosed = scan.unclosed()
    return result


def _advance(line: int, col: int, text: str) -> tuple[int, int]:
    breaks = text.count("\n")
    return (line + breaks, len(text) - text.rfind("\n")) if breaks else (line, col + len(text))


def _last_raw_filter(env: jinja2.Environment, expr: str) -> str | None:
    """`raw` (or `quote`, ...) when the expression's last filter pastes as is."""
    import jinja2
    from jinja2.parser import Parser

    try:
        node = Parser(env, expr, state="variable").parse_expression()
    except jinja2.TemplateSyntaxError:
        return None
    name = getattr(node, "name", None) if isinstance(node, jinja2.nodes.Filter) else None
    return name if name in RAW_FILTERS else None


def warnings(rewritten: Rewritten, language: str) -> Iterator[tuple[str, str]]:
    """(message, hint) for what validation shows but allows: `| raw`, `| quote` inside quotes, and
    quoting left open at the end (the escaping after it guessed the context)."""
    for slot in rewritten.slots:
        where = f"{{{{ {slot.expr} }}}} at line {slot.line}, column {slot.column} of the text"
        if slot.raw_filter == "raw":
            yield (f"{where} is pasted unescaped (| raw)",
                   "raw is for text that is shell or SQL syntax on purpose; never pass it a value "
                   "from --var, an environment variable or a step's output")
        elif slot.raw_filter and language == "shell" and slot.context != "bare":
            yield (f"{where} is quoted by | {slot.raw_filter} inside quotes: the quote characters become "
                   "part of the value",
                   f"drop | {slot.raw_filter}: every value is quoted for where it stands")
    if rewritten.unclosed and rewritten.slots:
        yield (f"the quoting is unbalanced: {rewritten.unclosed} is still open at the end of the text, so the "
               "values were escaped for a context that may be wrong",
               "close every quote in the text itself; build quoting inside a value only with | raw")
