"""SQL script text: splitting on top-level semicolons, escaping colons for SQLAlchemy's text().

Shared by the `sql` kind and the migrator, so it lives below both.
"""

from __future__ import annotations

import re
import sqlite3

# Quoted strings and identifiers, comments and PostgreSQL dollar-quoted bodies, so a `;` inside
# them does not split a statement.
_TOKEN = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`|--[^\n]*|/\*.*?\*/"""
    r"""|(?<!\w)\$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?\$(?P=tag)\$|;""",
    re.DOTALL,
)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def split_statements(sql: str, *, sqlite: bool = False) -> list[str]:
    """Split a script on top-level semicolons. For SQLite, pieces are joined back until
    sqlite3 calls them complete (a trigger body holds `;` between BEGIN and END)."""
    pieces: list[str] = []
    start = 0
    for m in _TOKEN.finditer(sql):
        if m.group() == ";":
            pieces.append(sql[start : m.start()])
            start = m.end()
    pieces.append(sql[start:])
    if sqlite:
        merged: list[str] = []
        pending = ""
        for piece in pieces:
            pending = f"{pending};{piece}" if pending else piece
            if sqlite3.complete_statement(pending + ";"):
                merged.append(pending)
                pending = ""
        if pending:
            merged.append(pending)
        pieces = merged
    return [p.strip() for p in pieces if _COMMENT.sub("", p).strip()]


def escape_literal_colons(stmt: str) -> str:
    """text() treats every `:name` as a parameter, even inside quotes; escape those."""

    def esc(m: re.Match[str]) -> str:
        tok = m.group()
        return tok if tok == ";" else tok.replace(":", "\\:")

    return _TOKEN.sub(esc, stmt)


__all__ = ["escape_literal_colons", "split_statements"]
