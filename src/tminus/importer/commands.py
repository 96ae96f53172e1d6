"""A shell block from a runbook, read as commands: which of them are plain `curl` calls (-> `http`
checks) or `psql -c "..."` / `psql <<SQL` queries (-> `sql` steps). Anything this cannot read with
certainty (shell variables, redirections, `&&`, an unknown curl option) stays a `run` step: a wrong
`http` check would be worse than an honest shell command.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
_ASSIGN = re.compile(r"^(export\s+)?[A-Za-z_][A-Za-z0-9_]*=\S*$")
_STATUS = re.compile(r"\b(?:should\s+(?:return|be)|expect(?:ed)?:?|returns?)\s*(?:HTTP\s*)?(\d{3})\b", re.I)
_READS = frozenset({"SELECT", "SHOW", "EXPLAIN", "VALUES", "TABLE"})
_FORMATTERS = (("jq", "."), ("jq", "'.'"), ("python3", "-m", "json.tool"), ("python", "-m", "json.tool"), ("cat",))
MAX_QUOTED_LINES = 200
_SHELL_OPS = frozenset({"&&", "||", ";", "&", ">", ">>", "<", "<<", "(", ")", "2>", "|&"})


@dataclass
class Command:
    """One logical command (continuation lines joined), the comments right after it, a heredoc body."""

    line: int  # 0-based line in the block where it starts
    text: str
    comments: list[str] = field(default_factory=list)
    heredoc: str | None = None


@dataclass(frozen=True)
class Http:
    url: str
    method: str
    headers: dict[str, str]
    body: str | None
    status: int | None  # the text says what it should return
    fail: bool  # curl -f: a status >= 400 fails
    follow: bool
    insecure: bool
    dropped: str  # a formatting pipe left out (| jq .)


@dataclass(frozen=True)
class Sql:
    query: str
    write: bool


def split(block: str) -> list[Command]:
    """Commands of a shell block: `\\` continuations joined, heredocs kept with their command,
    comment lines attached to the command before them."""
    lines = block.split("\n")
    commands: list[Command] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("$ "):  # a console transcript's prompt
            line = line[2:]
        if not line:
            i += 1
            continue
        if line.startswith("#"):
            if commands:
                commands[-1].comments.append(line.lstrip("#").strip())
            i += 1
            continue
        start = i
        parts = [line]
        while parts[-1].endswith("\\") and i + 1 < len(lines):
            parts[-1] = parts[-1][:-1]
            i += 1
            parts.append(lines[i].strip())
        text = " ".join(p for p in parts if p)
        # a quoted argument may span lines (psql -c "SELECT ...\n  FROM ..."): read on until it closes
        while _words(text) is None and i + 1 < len(lines) and i - start < MAX_QUOTED_LINES:
            i += 1
            text += "\n" + lines[i].rstrip().removesuffix("\\")
        cmd = Command(start, text)
        heredoc = _HEREDOC.search(text)
        if heredoc:
            body: list[str] = []
            i += 1
            while i < len(lines) and lines[i].strip() != heredoc.group(2):
                body.append(lines[i])
                i += 1
            cmd.heredoc = "\n".join(body)
        commands.append(cmd)
        i += 1
    return commands


def is_assignment(cmd: Command) -> bool:
    """`export CONNINFO=...`: a setting for the commands after it, nothing to run on its own."""
    try:
        words = shlex.split(cmd.text)
    except ValueError:
        return False
    return bool(words) and all(_ASSIGN.match(w) or w == "export" for w in words) and cmd.heredoc is None


def _words(text: str) -> list[str] | None:
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = ""
        return list(lexer)
    except ValueError:  # an unterminated quote
        return None


def as_http(cmd: Command) -> Http | None:
    """A `curl` call as an http check, or None when it is anything more than one plain request."""
    if cmd.heredoc is not None or "$" in cmd.text or "`" in cmd.text:
        return None
    words = _words(cmd.text)
    if not words or words[0] != "curl":
        return None
    dropped = ""
    if "|" in words:
        at = words.index("|")
        tail = tuple(words[at + 1:])
        if tail not in _FORMATTERS and not (tail[:1] == ("head",) and len(tail) <= 3):
            return None
        dropped, words = " ".join(tail), words[:at]
    if any(w in _SHELL_OPS for w in words):
        return None
    method: str | None = None
    headers: dict[str, str] = {}
    body: str | None = None
    urls: list[str] = []
    fail = follow = insecure = head = False
    args = iter(words[1:])
    for word in args:
        if word in ("-X", "--request"):
            method = next(args, "").upper()
        elif word in ("-H", "--header"):
            name, sep, value = next(args, "").partition(":")
            if not sep or not name.strip():
                return None
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data", "--data-raw", "--data-binary"):
            body = next(args, "")
            if body.startswith("@"):  # a file's content
                return None
        elif word in ("--fail", "--head", "--location", "--insecure", "--silent", "--show-error"):
            fail |= word == "--fail"
            head |= word == "--head"
            follow |= word == "--location"
            insecure |= word == "--insecure"
        elif re.fullmatch(r"-[sSfILkv]+", word):
            fail |= "f" in word
            head |= "I" in word
            follow |= "L" in word
            insecure |= "k" in word
        elif word.startswith("-"):
            return None  # an option this does not know: an honest run step instead
        else:
            urls.append(word)
    if len(urls) != 1 or not re.match(r"https?://\S+$", urls[0]):
        return None
    if method is None:
        method = "HEAD" if head else ("POST" if body is not None else "GET")
    status = None
    for comment in cmd.comments:
        found = _STATUS.search(comment)
        if found:
            status = int(found.group(1))
            break
    return Http(urls[0], method, headers, body, status, fail, follow, insecure, dropped)


def as_sql(cmd: Command) -> Sql | None:
    """`[docker exec C] psql ... -c "QUERY"` or `psql ... <<SQL` as a sql step, else None."""
    text = _HEREDOC.sub("", cmd.text) if cmd.heredoc is not None else cmd.text
    words = _words(text)
    if not words or "psql" not in words:
        return None
    at = words.index("psql")
    prefix, args = words[:at], words[at + 1:]
    if prefix and not (prefix[:2] == ["docker", "exec"] and all(not w.startswith("-") or w == "-i"
                                                               for w in prefix[2:])):
        return None
    if any(w in _SHELL_OPS or w == "|" for w in args):
        return None
    query = cmd.heredoc
    for i, word in enumerate(args):
        if word in ("-c", "--command"):
            if query is not None or i + 1 >= len(args):
                return None
            query = args[i + 1]
        elif word in ("-f", "--file"):
            return None
    if query is None or not query.strip() or query.lstrip().startswith("\\"):
        return None  # a meta-command (\dt) is psql's, not SQL
    statements = [s for s in (_strip_comments(p).strip() for p in query.split(";")) if s]
    if not statements:
        return None
    writes = [s.split(None, 1)[0].upper() not in _READS for s in statements]
    if len(statements) > 1 and not all(writes):
        return None  # several statements are one sql step only when they all write
    return Sql(query.strip(), any(writes))


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.split("\n") if not line.strip().startswith("--"))


__all__ = ["Command", "Http", "Sql", "as_http", "as_sql", "is_assignment", "split"]
