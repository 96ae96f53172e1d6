"""Markdown (or plain text) -> a neutral outline: sections with their items and code blocks, each
with the line it came from. Nothing here knows what a runbook is (mapping.py decides that).

Hand-written runbooks are careless: a file flattened onto one line, plain text with `•` bullets and
`Requirement:` lines for headings, CRLF, a BOM, an unterminated fence. `normalize` repairs what it
can before markdown-it-py (CommonMark, already installed with rich) parses it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

# what YAML cannot hold (control characters, surrogates, U+FFFE/U+FFFF) and the loader refuses
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_BULLET = re.compile(r"^(\s*)[•●▪‣◦]\s*", re.M)
_FLAT_HEADING = re.compile(r" (#{1,6}) (?=\S)")
_FLAT_NUMBER = re.compile(r" (\d{1,3})\. (?=\S)")
_FLAT_BULLET = re.compile(r" - (?=\S)")
_TASK = re.compile(r"^\[([ xX])\]\s+")
_PREFIX = re.compile(r"^([A-Z][A-Za-z-]{2,30}):\s+\S")
LineOf = Callable[[Token], int]
FLAT_LINE = 400  # a "line" longer than this with heading marks inside is a flattened document
_ATX = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)")
_NUMBERED_TITLE = re.compile(r"^\d{1,2}\)[ \t]+[^\s.!?:;,][^.!?:;,]{0,60}$")


@dataclass(frozen=True)
class Code:
    """A fenced (or indented) code block."""

    line: int
    info: str  # the fence's language word, lowercased ("" when none)
    text: str


@dataclass(frozen=True)
class Item:
    """A top-level list item: its first paragraph, the rest of its text, and its code blocks."""

    line: int
    text: str
    detail: str
    ordered: bool
    task: bool
    code: tuple[Code, ...] = ()


@dataclass(frozen=True)
class Para:
    line: int
    text: str


Block = Code | Item | Para


@dataclass
class Section:
    title: str
    level: int  # 1-6; 0 for what comes before the first heading
    line: int
    blocks: list[Block] = field(default_factory=list)


@dataclass(frozen=True)
class Outline:
    sections: list[Section]
    flattened: bool  # the text was one long line, split again by guessing
    plain: bool  # no Markdown headings: short lines were taken for headings


def clean(text: str) -> str:
    """Control characters and what YAML cannot hold out (the YAML guard refuses them), tabs and
    newlines kept."""
    return _CONTROL.sub("", text)


def normalize(text: str) -> tuple[str, bool, bool, list[int]]:
    """CRLF/CR -> LF, BOM and control characters out, `•` bullets -> `-`, and a document flattened
    onto one line split again at its heading, numbered-item and bullet marks. Also returns whether it
    was flattened, whether it is plain text (at most one heading), and for each line of the result
    the line (1-based) of the input it came from."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    text = clean(text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}- ", text)
    flattened = False
    lines: list[str] = []
    origin: list[int] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if len(line) > FLAT_LINE and len(_FLAT_HEADING.findall(line)) >= 2:
            flattened = True
            line = _unflatten(line)
        for part in line.split("\n"):
            lines.append(part)
            origin.append(number)
    plain = sum(bool(_ATX.match(line)) for line in lines) <= 1
    if plain:  # `1) Secrets Management` standing alone in a text without headings is one
        lines = ["## " + line if _NUMBERED_TITLE.match(line) else line for line in lines]
    return "\n".join(lines), flattened, plain, origin


def _unflatten(line: str) -> str:
    out: list[str] = []
    for chunk in _FLAT_HEADING.sub(lambda m: f"\n\n{m.group(1)} ", line).split("\n"):
        if not chunk.lstrip().startswith("#"):
            out.append(_unflatten_lists(chunk))
            continue
        # a heading runs on into its first sentence: end it after a closing parenthesis
        head, sep, rest = chunk.partition(") ")
        if sep and "(" in head and not _FLAT_NUMBER.search(head) and " - " not in head:
            out += [head + ")", "", _unflatten_lists(" " + rest)]
        else:
            out.append(_unflatten_lists(chunk))
    return "\n".join(out)


def _unflatten_lists(chunk: str) -> str:
    chunk = _FLAT_NUMBER.sub(lambda m: f"\n{m.group(1)}. ", chunk)
    parts = chunk.split("\n")
    # a bullet after a numbered item belongs to it (indented); before any, it is top-level
    out = []
    for part in parts:
        numbered = bool(re.match(r"\d{1,3}\. ", part))
        indent = "   " if numbered else ""
        out.append(_FLAT_BULLET.sub(f"\n{indent}- ", part))
    return "\n".join(out)


def parse(text: str) -> Outline:
    normal, flattened, plain, origin = normalize(text)

    def _line(tok: Token) -> int:
        return origin[min(tok.map[0], len(origin) - 1)] if tok.map else 1

    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(normal)
    lines = normal.split("\n")
    sections = [Section("", 0, 1)]
    prefixes: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.level != 0:
            i += 1
            continue
        start = _line(tok)
        if tok.type == "heading_open":
            sections.append(Section(tokens[i + 1].content.strip(), int(tok.tag[1:]), start))
        elif tok.type in ("fence", "code_block"):
            sections[-1].blocks.append(_code(tok, _line))
        elif tok.type in ("bullet_list_open", "ordered_list_open"):
            end = _close(tokens, i)
            sections[-1].blocks += _items(tokens[i + 1:end], tok.type == "ordered_list_open", lines, _line)
            i = end
        elif tok.type in ("table_open", "blockquote_open", "html_block"):
            sections[-1].blocks.append(Para(start, f"({tok.type.removesuffix('_open').replace('_', ' ')})"))
        elif tok.type == "paragraph_open":
            content = tokens[i + 1].content.strip()
            level = _pseudo_heading(content, tokens, i, plain, prefixes)
            if level:
                sections.append(Section(content, level, start))
            else:
                sections[-1].blocks.append(Para(start, content))
        i += 1
    return Outline([s for s in sections if s.level or s.blocks], flattened, plain)


def _pseudo_heading(content: str, tokens: list[Token], i: int, plain: bool, prefixes: list[str]) -> int:
    """In a document with (almost) no Markdown headings, a short line of its own that does not end
    like a sentence is a heading; `Word: ...` lines nest by the order their word first appears."""
    if not plain or "\n" in content or len(content) > 100 or content.startswith(("**", "`", "|")):
        return 0
    if content[-1:] in ".!?,;:" or not re.search(r"[A-Za-z]", content):
        return 0
    following = tokens[i + 3].type if i + 3 < len(tokens) else ""
    standalone = following in ("", "paragraph_open", "heading_open", "bullet_list_open", "ordered_list_open",
                               "hr", "fence", "table_open")
    if not standalone:
        return 0
    match = _PREFIX.match(content)
    if not match:
        return 2
    word = match.group(1)
    if word not in prefixes:
        prefixes.append(word)
    return min(2 + prefixes.index(word), 6)


def _close(tokens: list[Token], i: int) -> int:
    """The index of the token closing tokens[i] (same level, nesting -1)."""
    depth = 0
    for j in range(i, len(tokens)):
        depth += tokens[j].nesting
        if depth == 0:
            return j
    return len(tokens) - 1


def _code(tok: Token, line: LineOf) -> Code:
    info = tok.info.strip().split(maxsplit=1)[0].lower() if tok.info.strip() else ""
    return Code(line(tok), info, tok.content.rstrip("\n"))


def _items(tokens: list[Token], ordered: bool, lines: list[str], line: LineOf) -> list[Block]:
    items: list[Block] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type != "list_item_open":
            i += 1
            continue
        end = _close(tokens, i)
        inner = tokens[i + 1:end]
        items.append(_item(tok, inner, ordered, lines, line))
        i = end + 1
    return items


def _item(tok: Token, inner: list[Token], ordered: bool, lines: list[str], line: LineOf) -> Item:
    first = next((t for t in inner if t.type == "inline"), None)
    text = first.content.strip() if first is not None else ""
    task = False
    match = _TASK.match(text)
    if match:
        task, text = True, text[match.end():]
    code = tuple(_code(t, line) for t in inner if t.type in ("fence", "code_block"))
    # the rest of the item as written: its lines after the first paragraph, fences left out
    skip: set[int] = set()
    for t in inner:
        if t.type in ("fence", "code_block") and t.map:
            skip.update(range(t.map[0], t.map[1]))
    para_end = next((t.map[1] for t in inner if t.type == "paragraph_open" and t.map), None)
    begin = para_end if para_end is not None else (tok.map[0] + 1 if tok.map else 0)
    stop = tok.map[1] if tok.map else begin
    rest = [lines[n] for n in range(begin, min(stop, len(lines))) if n not in skip]
    detail = _dedent("\n".join(rest)).strip("\n")
    return Item(line(tok), text, detail, ordered, task, code)


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text)


__all__ = ["FLAT_LINE", "Block", "Code", "Item", "Outline", "Para", "Section", "clean", "normalize", "parse"]
