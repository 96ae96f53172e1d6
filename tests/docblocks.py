"""Every fenced block of the docs, classified: what the docs test (tests/e2e/test_docs_run.py) does
with each one.

A block's class comes from its info string (```yaml, ```console, ```text, ...) and, where that is not
enough, from a marker on the line right above the fence:

    <!-- docs-test: invalid MESSAGE -->     a YAML block that must fail validation with MESSAGE
    <!-- docs-test: fragment PLACE -->      a YAML fragment, placed explicitly (see `WRAPPERS`)
    <!-- docs-test: run -->                 a shell block run in the page's sandbox, in order
    <!-- docs-test: skip REASON -->         not checked, with the reason (counted, kept few)
    <!-- docs-test: shell -->               the class of a block without an info string

A block without an info string and without a marker is unclassified: a failure.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
# docs/examples/reports/ holds reports of real runs, generated (scripts/example_reports.sh): their
# blocks are a run's output, not examples to check; tests/unit/test_docs_pages.py checks their links
REPORTS = ROOT / "docs" / "examples" / "reports"
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if REPORTS not in p.parents)]

SHELL = {"console", "sh", "bash", "shell"}
SHOWN = {"text", "usage", "json", "toml"}  # output samples, diagrams, synopses: checked by their own tests

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M)
_MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<word>[\w-]+)\s*(?P<arg>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence
    info: str
    body: str  # dedented by the fence's indentation
    marker: str | None = None
    marker_arg: str = ""

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"

    @property
    def lang(self) -> str:
        return self.info.split()[0] if self.info.split() else ""

    @property
    def kind(self) -> str | None:
        """yaml, shell, shown, skip, or None (unclassified)."""
        if self.marker == "skip":
            return "skip"
        lang = "shell" if self.marker == "shell" and not self.lang else self.lang
        if lang == "yaml":
            return "yaml"
        if lang in SHELL or lang == "shell":
            return "shell"
        if lang in SHOWN:
            return "shown"
        return None


def blocks(pages: list[Path] | None = None) -> list[Block]:
    out: list[Block] = []
    for page in pages or PAGES:
        text = page.read_text(encoding="utf-8")
        for m in _FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            marker = _MARKER.search(before)
            indent = m.group("indent")
            body = "".join(ln[len(indent):] if ln.startswith(indent) else ln
                           for ln in m.group("body").splitlines(keepends=True))
            out.append(Block(page, line, m.group("info").strip(), body,
                             marker.group("word") if marker else None, marker.group("arg") if marker else ""))
    return out


# --- shell lines ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    text: str  # the whole logical line, continuations joined, comment kept
    words: list[str]  # shell words of the first pipeline element, comment dropped
    comment: str

    @property
    def tminus_args(self) -> list[str] | None:
        """The arguments after `tminus` (or `.venv/bin/tminus`), after any VAR=value prefix; None if
        the command is not tminus."""
        words = list(self.words)
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words.pop(0)
        if words and (words[0] == "tminus" or words[0].endswith("/tminus")):
            return words[1:]
        return None

    @property
    def expected_exit(self) -> int | None:
        """`exit N` said in the line's comment: the code the docs promise."""
        m = re.search(r"\bexits? (\d+)\b", self.comment)
        return int(m.group(1)) if m else None


def commands(block: Block) -> list[Command]:
    """Command lines of a shell block: with a `$ ` prompt (console) only the prompted lines, else every
    line that is not a comment; `\\` continuations joined."""
    lines = block.body.splitlines()
    prompted = any(ln.startswith("$ ") for ln in lines)
    logical: list[str] = []
    pending = ""
    for ln in lines:
        if pending:
            ln = pending + " " + ln.strip()
            pending = ""
        elif prompted:
            if not ln.startswith("$ "):
                continue
            ln = ln[2:]
        if ln.rstrip().endswith("\\"):
            pending = ln.rstrip()[:-1].rstrip()
            continue
        if ln.strip() and not ln.lstrip().startswith("#"):
            logical.append(ln.strip())
    return [_command(text) for text in logical]


def _command(text: str) -> Command:
    code, comment = _split_comment(text)
    lexer = shlex.shlex(code, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    words: list[str] = []
    for token in lexer:
        if token and set(token) <= set(";&|<>"):
            break  # the first element of a pipeline or list is what the docs show
        words.append(token)
    return Command(text, words, comment)


def _split_comment(text: str) -> tuple[str, str]:
    """A `#` after whitespace and outside quotes starts the comment."""
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i], text[i:]
    return text, ""


def parse_cli(args: list[str]) -> click.Command:
    """Parse `args` as the real `tminus` would, down to the leaf command; raises click's usage errors."""
    from tminus.cli.app import cli

    command: click.Command = cli
    name = "tminus"
    parent: click.Context | None = None
    while True:
        ctx = command.make_context(name, list(args), parent=parent, resilient_parsing=False)
        if not isinstance(command, click.Group):
            return command
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not rest:
            raise click.UsageError(f"{name}: missing command")
        sub = command.get_command(ctx, rest[0])
        if sub is None:
            raise click.UsageError(f"no such command {' '.join([*ctx.command_path.split()[1:], rest[0]])!r}")
        command, name, args, parent = sub, rest[0], rest[1:], ctx
