"""A runbook's YAML text before any parser reads it: the limits, and what is refused on sight.

Shared by both readers of a runbook (runbook/yamlread.py, libyaml; runbook/yamlguard.py, ruamel):
the size, the characters YAML refuses, and bracket bombs are checked here on the raw text, with
file:line:column and a hint; the limits on what the parsed document holds are the readers' own.
"""

from __future__ import annotations

import re

from tminus.errors import Location, Problem

# A long real runbook is ~100 KB and 5,000 values. ruamel (pure Python) reads ~100,000 values a
# second at best, and its guard ~300,000: these bounds keep a refusal well under a second.
MAX_BYTES = 512 * 1024
MAX_VALUES = 20_000  # scalars, lists and mappings, aliases expanded
MAX_DEPTH = 64  # nested lists and mappings; a runbook's own structure is under 12 deep
MAX_ALIAS_VALUES = 10_000  # values all aliases together may expand to
MAX_BRACKETS = 256  # [ and { open at once anywhere in the text, strings included (see _brackets)
MAX_NUMBER_DIGITS = 1000  # Python refuses to read integers of more than 4,300 digits

# What YAML allows in a stream (YAML 1.2, 5.1); ruamel raises an unpositioned error on the rest.
_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
INTEGER = re.compile(r"[-+]?[0-9][0-9_]*")
_BRACKET = re.compile(r"[\[\]{}]")


def too_large(size: int, file: str) -> Problem:
    return Problem(
        f"the runbook is {size:,} bytes; at most {MAX_BYTES:,} are read", Location(file, 1, 1),
        "split it into smaller runbooks, or keep large data in files the steps read",
    )


def refuse_text(text: str, file: str) -> list[Problem]:
    """What is refused before parsing: the size, characters YAML refuses, bracket bombs."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        return [too_large(size, file)]
    if bad := _NOT_PRINTABLE.search(text):
        return [_control_character(text, bad.start(), file)]
    if (index := _brackets(text)) is not None:
        return [Problem(f"more than {MAX_BRACKETS} '[' and '{{' open at once", location_at(text, index, file),
                        "flatten the structure: a runbook never needs this depth")]
    return []


def _brackets(text: str) -> int | None:
    """Where more than MAX_BRACKETS brackets are open, counted in the raw text.

    ruamel's scanner keeps a possible key per open flow collection and re-checks them all at
    every token, before the parser says anything: 5,000 '[' take seconds, a megabyte of them
    hours. Counting without reading quotes errs only on text with hundreds of unclosed brackets.
    """
    if text.count("[") + text.count("{") <= MAX_BRACKETS:
        return None
    depth = 0
    for m in _BRACKET.finditer(text):
        depth = depth + 1 if m.group() in "[{" else max(depth - 1, 0)
        if depth > MAX_BRACKETS:
            return m.start()
    return None


def location_at(text: str, index: int, file: str) -> Location:
    """The line and column of the character at `index`."""
    line = text.count("\n", 0, index) + 1
    return Location(file, line, index - (text.rfind("\n", 0, index) + 1) + 1)


def _control_character(text: str, index: int, file: str) -> Problem:
    char = text[index]
    name = "a NUL byte" if char == "\0" else f"the character U+{ord(char):04X}, which YAML does not allow"
    count = len(_NOT_PRINTABLE.findall(text))
    more = f" ({count} such characters in the file)" if count > 1 else ""
    return Problem(f"the runbook contains {name}{more}", location_at(text, index, file),
                   "remove it: a runbook is plain text (write \\0 or \\x07 inside double quotes if a value needs it)")
