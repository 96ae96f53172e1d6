"""A runbook's YAML read fast: libyaml's parser (PyYAML's C extension), values built by YAML 1.2.

libyaml reads the text into events (with line and column) ~30x faster than ruamel's pure-Python
reader; the values are built here, one pass over the events, with the YAML 1.2 core schema exactly
as ruamel applies it (runbook/yamlscalars.py), never PyYAML's YAML 1.1 resolver (`yes`, `0755`,
`1:30`, `=`...). Each key's and list item's position and each quoted list item are recorded as
runbook/yamlruamel.py records them.

The fast reader only reads what it is sure of. It declines, and the caller hands the text to
ruamel (the reference reader, whose problems carry the exact wording and position), on anything
refused or unusual: a syntax error, a tag, a directive, a second document, a duplicate key, a merge
key or `=`, a collection or alias as a key, an anchor defined twice or an alias before its anchor
or inside it, a limit crossed (runbook/yamltext.py), a scalar whose value ruamel builds oddly, and
text holding tabs, byte-order marks or the line breaks YAML 1.1 and 1.2 read differently.
tests/unit/test_yaml_differential.py holds both readers to the same result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from yaml import YAMLError
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)

from tminus.runbook.yamlscalars import Unusual, resolve_plain
from tminus.runbook.yamltext import INTEGER, MAX_ALIAS_VALUES, MAX_DEPTH, MAX_NUMBER_DIGITS, MAX_VALUES, refuse_text

try:
    from yaml import CSafeLoader as _Parser  # libyaml
except ImportError:  # pragma: no cover  # PyYAML built without libyaml: the same events, in pure Python (slower)
    from yaml import SafeLoader as _Parser

PathKey = tuple[str | int, ...]

# Characters the two readers may read differently (YAML 1.1 line breaks U+0085/2028/2029, tabs as
# separators, a byte-order mark inside the text): left to ruamel.
_UNUSUAL_TEXT = re.compile("[\t\ufeff\x85\u2028\u2029]")
_QUOTES = frozenset({"'", '"'})
# After an anchor's or alias's name: ruamel's names go on over any other character (`&a:` is named
# `a:`), libyaml's stop at the first that is not a letter, digit, - or _.
_NAME_ENDS = frozenset(" \r\n,[]{}")
# A block scalar's header (after | or >): a chomping indicator, then a comment after a space, or
# nothing. ruamel refuses `|#` and libyaml takes it; an explicit indentation (`|2`) is left to ruamel.
_BLOCK_HEADER = re.compile(r"[+-]?(?: +#[^\n]*| *)\r?(?:\n|$)")
_SPACES_LINE = re.compile(r" +\r?(?:\n|$)")


class _Decline(Exception):
    """The fast reader is not sure: ruamel reads the text."""


@dataclass
class Read:
    """A document as plain Python, with the positions ruamel's round-trip reader gives."""

    data: Any
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)  # 1-based line, column
    quoted: set[PathKey] = field(default_factory=set)  # list items written in quotes


@dataclass
class _Anchor:
    value: Any
    mark: tuple[int, int]  # where the anchored value starts: an alias list item is positioned there
    size: int  # values it stands for, aliases expanded (the guard's count)
    positions: list[tuple[PathKey, tuple[int, int]]]  # below it, paths relative to it
    quoted: list[PathKey]  # below it, relative
    is_quoted: bool  # a quoted string itself


def read(text: str) -> Read | None:
    """The document read by libyaml, or None when ruamel must read it (see the module's docstring)."""
    if _UNUSUAL_TEXT.search(text) or refuse_text(text, ""):
        return None
    parser = _Parser(text)
    try:
        return _Builder(text, parser.get_event).document()
    except (_Decline, Unusual, YAMLError):
        return None
    except Exception:  # anything unforeseen: ruamel reads the text, as it did before this reader existed
        return None
    finally:
        parser.dispose()


class _Builder:
    def __init__(self, text: str, next_event: Any) -> None:
        self.text = text
        self.next = next_event
        self.positions: list[tuple[PathKey, tuple[int, int]]] = []
        self.quoted: list[PathKey] = []
        self.anchors: dict[str, _Anchor] = {}
        self.open: set[str] = set()  # anchors whose collection is still being read
        self.values = 0
        self.expanded = 0
        self.depth = 0

    def document(self) -> Read:
        if self.next().__class__ is not StreamStartEvent:
            raise _Decline
        event = self.next()
        if event.__class__ is StreamEndEvent:  # an empty text, or comments only
            return Read(None)
        if event.__class__ is not DocumentStartEvent or event.version is not None or event.tags:
            raise _Decline  # %YAML 1.1 would switch ruamel to the YAML 1.1 schema
        data = self.node(self.next(), (), False)
        if self.next().__class__ is not DocumentEndEvent or self.next().__class__ is not StreamEndEvent:
            raise _Decline  # a second document
        return Read(data, dict(self.positions), set(self.quoted))

    def node(self, event: Any, path: PathKey, item: bool) -> Any:
        """The value starting with `event`, read to its end."""
        cls = event.__class__
        if cls is ScalarEvent:
            return self.scalar(event, path, item)
        if cls is AliasEvent:
            return self.alias(event, path, item)
        if cls is not MappingStartEvent and cls is not SequenceStartEvent:
            raise _Decline
        if event.tag is not None:
            raise _Decline
        self.values += 1
        self.depth += 1
        if self.depth > MAX_DEPTH or self.values > MAX_VALUES:
            raise _Decline
        anchor = event.anchor
        if anchor is not None:
            self.define(anchor, event)
            self.open.add(anchor)
        if cls is MappingStartEvent and event.flow_style and not self.text.startswith("{", self.content_at(event)):
            raise _Decline  # a pair inside [ ] (`[a: b]`, `[? a]`): the readers differ on its odd forms
        start_values, start_positions, start_quoted = self.values, len(self.positions), len(self.quoted)
        value = self.mapping(path) if cls is MappingStartEvent else self.sequence(path)
        self.depth -= 1
        if anchor is not None:
            self.open.discard(anchor)
            self.remember(anchor, value, event, path, self.values - start_values + 1, start_positions, start_quoted,
                          False)
        return value

    def mapping(self, path: PathKey) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        next_event, positions = self.next, self.positions
        while True:
            event = next_event()
            if event.__class__ is not ScalarEvent:
                if event.__class__ is MappingEndEvent:
                    return out
                raise _Decline  # a collection or an alias as a key
            key = self.scalar(event, path, False)  # a merge key (<<) raises Unusual: refused
            if key in out:
                raise _Decline  # a duplicate key: ruamel names both positions
            if key.__class__ is str and not event.style and key != event.value:
                raise _Decline  # a timestamp as a key: ruamel compares instants (2026-12-05T22:00Z == ...23:00+01)
            at = (*path, key)
            mark = event.start_mark
            positions.append((at, (mark.line + 1, mark.column + 1)))
            out[key] = self.node(next_event(), at, False)

    def sequence(self, path: PathKey) -> list[Any]:
        items: list[Any] = []
        next_event, positions = self.next, self.positions
        while True:
            event = next_event()
            cls = event.__class__
            if cls is SequenceEndEvent:
                return items
            at = (*path, len(items))
            if cls is AliasEvent:  # ruamel positions the item where the value it repeats starts
                anchored = self.anchors.get(event.anchor)
                if anchored is None:
                    raise _Decline
                positions.append((at, anchored.mark))
            else:
                mark = event.start_mark
                positions.append((at, (mark.line + 1, mark.column + 1)))
            items.append(self.node(event, at, True))

    def scalar(self, event: Any, path: PathKey, item: bool) -> Any:
        if event.tag is not None:
            raise _Decline  # refused: runbooks use plain YAML values
        self.values += 1
        if self.values > MAX_VALUES:
            raise _Decline
        text = event.value
        style = event.style
        quoted = False
        if style:  # quoted, literal (|) or folded (>): a string as written
            value: Any = text
            if style in _QUOTES:
                quoted = True
                if item:
                    self.quoted.append(path)
            else:
                self.check_block_header(event)
        else:
            if len(text) > MAX_NUMBER_DIGITS and INTEGER.fullmatch(text):
                raise _Decline
            value = resolve_plain(text)
        if event.anchor is not None:
            self.define(event.anchor, event)
            self.remember(event.anchor, value, event, path, 1, len(self.positions), len(self.quoted), quoted)
        return value

    def alias(self, event: Any, path: PathKey, item: bool) -> Any:
        name = event.anchor
        anchored = self.anchors.get(name)
        if anchored is None or name in self.open:
            raise _Decline  # an alias before its anchor, or inside the value it names
        self.check_name(event.start_mark.index, "*", name)
        self.values += anchored.size
        self.expanded += anchored.size
        if self.values > MAX_VALUES or self.expanded > MAX_ALIAS_VALUES:
            raise _Decline
        for below, mark in anchored.positions:
            self.positions.append(((*path, *below), mark))
        for below in anchored.quoted:
            self.quoted.append((*path, *below))
        if item and anchored.is_quoted:
            self.quoted.append(path)
        return _copy(anchored.value)

    def define(self, name: str, event: Any) -> None:
        if name in self.anchors or name in self.open:
            raise _Decline  # an anchor defined twice: refused
        self.check_name(event.start_mark.index, "&", name)

    def check_name(self, at: int, indicator: str, name: str) -> None:
        """Both readers read the same name: libyaml's ends where ruamel's does."""
        end = at + 1 + len(name)
        text = self.text
        if text[at:at + 1] != indicator or (end < len(text) and text[end] not in _NAME_ENDS):
            raise _Decline

    def content_at(self, event: Any) -> int:
        """Where a value's text starts, after its anchor."""
        text, at = self.text, event.start_mark.index
        if event.anchor is not None:
            at += 1 + len(event.anchor)
            while text[at:at + 1] == " ":
                at += 1
        return at

    def check_block_header(self, event: Any) -> None:
        """A literal or folded scalar both readers read alike: a plain header, no indented blank first line
        (ruamel refuses a first blank line more indented than... see its scan_block_scalar_indentation)."""
        text, at = self.text, self.content_at(event)
        if text[at:at + 1] not in ("|", ">") or not (header := _BLOCK_HEADER.match(text, at + 1)):
            raise _Decline
        if _SPACES_LINE.match(text, header.end()):
            raise _Decline

    def remember(self, name: str, value: Any, event: Any, path: PathKey, size: int, first_position: int,
                 first_quoted: int, is_quoted: bool) -> None:
        cut = len(path)
        mark = event.start_mark
        self.anchors[name] = _Anchor(
            value=value, mark=(mark.line + 1, mark.column + 1), size=size,
            positions=[(at[cut:], pos) for at, pos in self.positions[first_position:]],
            quoted=[at[cut:] for at in self.quoted[first_quoted:]], is_quoted=is_quoted,
        )


def _copy(value: Any) -> Any:
    """Each alias is a value of its own, as ruamel's reader gives it (never shared with its anchor)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
