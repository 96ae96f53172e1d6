"""Migration safety lint: flag statements that take long locks, rewrite tables or break the running
version, with the safer pattern for each (rules in tminus.db.lint_rules, PostgreSQL semantics).

Which files: `NNNN_name.sql` only. `.down.sql` files are skipped because reverting is expected to
drop what the migration added; `.verify.sql` files are skipped because they are read-only checks
run after migrating and change no schema.

Opt-outs: `-- tminus-lint: ignore drop-column, rename-column (reason)` on the statement's own lines
or on the comment lines right above it; without rule ids it ignores every rule for that statement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tminus.db.lint_rules import RULES, Risk, Statement, check_file
from tminus.db.migrations.files import is_no_transaction

__all__ = ["RULES", "Finding", "lint_directory", "lint_sql", "migration_files"]

_MIGRATION = re.compile(r"^\d+_.+\.sql$")
_SKIPPED_SUFFIXES = (".down.sql", ".verify.sql")

# Literals, quoted identifiers, comments and dollar-quoted bodies: what must not trigger rules and
# whose `;` does not end a statement. An unterminated one runs to the end of the text.
_TOKEN = re.compile(
    r"""(?<![\w$])[eE]'(?:[^'\\]|\\.|'')*(?:'|\Z)"""
    r"""|'(?:[^']|'')*(?:'|\Z)"""
    r"""|"(?:[^"]|"")*(?:"|\Z)"""
    r"""|--[^\n]*"""
    r"""|/\*.*?(?:\*/|\Z)"""
    r"""|(?<![\w$])\$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?(?:\$(?P=tag)\$|\Z)""",
    re.DOTALL,
)
_DIRECTIVE = re.compile(r"^--\s*tminus-lint:\s*ignore\b(?P<rest>.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    file: str
    line: int  # 1-based line where the statement starts
    rule: str
    risk: Risk
    message: str
    safer: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        return f"{self.file}:{self.line}: [{self.risk}] {self.rule}: {self.message} safer: {self.safer}"


@dataclass(frozen=True)
class _Comment:
    line: int
    text: str
    standalone: bool  # nothing but whitespace before it on its line


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _blank(chunk: str, keep: str = "") -> str:
    """Same length and line breaks, content gone: offsets and line numbers stay valid."""
    return "".join(c if c == "\n" or c in keep else " " for c in chunk)


def _scan(text: str) -> tuple[str, list[_Comment]]:
    """The text with literals and comments blanked out, and the line comments found."""
    out: list[str] = []
    comments: list[_Comment] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        out.append(text[pos : m.start()])
        tok = m.group()
        if tok.startswith("--"):
            line_start = text.rfind("\n", 0, m.start()) + 1
            standalone = not text[line_start : m.start()].strip()
            comments.append(_Comment(_line_at(text, m.start()), tok, standalone))
            out.append(_blank(tok))
        elif tok.startswith('"'):
            # Identifiers stay (rules need table names) but can no longer spell keywords.
            out.append('"' + re.sub(r"[^\w\n\"]", "_", tok[1:]))
        elif tok.startswith("/*"):
            out.append(_blank(tok))
        else:
            out.append(_blank(tok, keep="'$"))  # a literal stays visible as `'   '`
        pos = m.end()
    out.append(text[pos:])
    return "".join(out), comments


def statements(text: str) -> list[Statement]:
    """Split on top-level `;`, remembering where each statement's code starts."""
    masked, _ = _scan(text)
    return _statements(text, masked)


def _statements(text: str, masked: str) -> list[Statement]:
    out: list[Statement] = []
    start = 0
    for end in [m.start() for m in re.finditer(";", masked)] + [len(masked)]:
        piece = masked[start:end]
        code = piece.lstrip()
        if code:
            first = start + len(piece) - len(code)
            out.append(
                Statement(
                    sql=" ".join(code.split()),
                    raw=text[first:end],
                    line=_line_at(masked, first),
                    end_line=_line_at(masked, end),
                )
            )
        start = end + 1
    return out


def _directive_rules(comment: str) -> frozenset[str] | None:
    """The rule ids a directive names (the empty set: all rules), None when it is no directive."""
    m = _DIRECTIVE.match(comment)
    if m is None:
        return None
    ids = m["rest"].split("(", 1)[0]
    return frozenset(w for w in re.split(r"[\s,]+", ids.strip()) if w)


def _ignored(stmt: Statement, comments: list[_Comment], lines: list[str]) -> set[str] | None:
    """Rules opted out for a statement; None when it has no directive. The empty set means all."""
    above = stmt.line - 1
    while above >= 1 and lines[above - 1].strip().startswith("--"):
        above -= 1  # the comment block right above the statement, no blank line in between
    found: set[str] | None = None
    for c in comments:
        on_statement = stmt.line <= c.line <= stmt.end_line
        if not (on_statement or (c.standalone and above < c.line < stmt.line)):
            continue
        rules = _directive_rules(c.text)
        if rules is None:
            continue
        if not rules:
            return set()
        found = (found or set()) | rules
    return found


def lint_sql(text: str, file: str, ignore: Iterable[str] = ()) -> list[Finding]:
    """Findings for one migration's text; `file` is only used to label them."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    skip = _check_rules(ignore)
    masked, comments = _scan(text)
    stmts = _statements(text, masked)
    lines = text.split("\n")
    findings: list[Finding] = []
    for hit in check_file(stmts, no_transaction=is_no_transaction(text)):
        if hit.rule in skip:
            continue
        opted_out = _ignored(hit.statement, comments, lines)
        if opted_out is not None and (not opted_out or hit.rule in opted_out):
            continue
        rule = RULES[hit.rule]
        findings.append(
            Finding(file, hit.statement.line, rule.id, rule.risk, rule.what.format(subject=hit.subject), rule.safer)
        )
    return findings


def _check_rules(ignore: Iterable[str]) -> set[str]:
    skip = set(ignore)
    unknown = sorted(skip - RULES.keys())
    if unknown:
        raise ValueError(f"unknown lint rule {', '.join(unknown)}; rules are: {', '.join(RULES)}")
    return skip


def migration_files(path: Path) -> list[Path]:
    """The `NNNN_name.sql` files of a directory in version order (down and verify files left out)."""
    if not path.is_dir():
        raise FileNotFoundError(f"migrations directory {path} does not exist; check the path")
    files = [
        p
        for p in path.iterdir()
        if p.is_file() and _MIGRATION.match(p.name) and not p.name.endswith(_SKIPPED_SUFFIXES)
    ]
    return sorted(files, key=lambda p: (int(p.name.split("_", 1)[0]), p.name))


def lint_directory(path: Path | str, ignore: Iterable[str] = ()) -> list[Finding]:
    """Findings for every migration in a directory, labelled by file name, in version order.
    Raises FileNotFoundError for a missing directory and ValueError for an unknown rule id."""
    skip = _check_rules(ignore)
    findings: list[Finding] = []
    for file in migration_files(Path(path)):
        text = file.read_text(encoding="utf-8", errors="replace")
        findings.extend(lint_sql(text, file.name, skip))
    return findings
