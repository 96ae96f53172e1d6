"""ruamel's first look at a runbook's YAML, before anything is built from it: limits and refusals.

The reference reader's guard (runbook/yamlruamel.py): it reads what the fast reader declines and vars
files, so every refusal below is worded and positioned here.

ruamel builds values recursively and expands every alias, so a hostile file can exhaust the stack
(a 5,000-deep list), memory (the billion-laughs alias bomb) or time (a 20 MB file). This pass reads
each event on its way from ruamel's parser (lazy and flat) to its composer, and stops at the first
limit crossed, so what is refused is refused within milliseconds, each with file:line:column and
a hint; the size, the characters and the brackets are checked on the text before that. It also refuses
what a runbook has no use for and that would otherwise be silently misread: explicit tags
(`!!python/object`, `!!str`, `!custom`), merge keys (`<<:`), a collection as a key, an alias inside
the node it names (read as an empty value), an anchor defined twice, and control characters.

Only when nothing was found does ruamel construct values from what it composed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
)

from tminus.errors import Location, Problem, RunbookError
from tminus.runbook.yamltext import (
    INTEGER,
    MAX_ALIAS_VALUES,
    MAX_DEPTH,
    MAX_NUMBER_DIGITS,
    MAX_VALUES,
    location_at,
    refuse_text,
)

_YAML_HINTS = {
    "mapping values are not allowed": "quote the value: a plain value cannot contain ': '",
    "found character '\\t'": "indent with spaces: YAML does not allow tabs",
    "could not find expected ':'": "check the indentation and that every key ends with ':'",
    "found another document": "a runbook is one YAML document: remove the '---' line or split the file",
}


class _Stop(Exception):
    """A limit was crossed: nothing after this point is read."""


def yaml_problem(exc: MarkedYAMLError, file: str) -> Problem:
    """A ruamel syntax error as a positioned problem."""
    mark = exc.problem_mark or exc.context_mark
    message = f"YAML syntax error: {exc.problem or exc.context}"
    if exc.problem and exc.context:
        started = exc.context_mark
        at = f" started at line {started.line + 1}, column {started.column + 1}" if started else ""
        message += f" ({exc.context}{at})"
    hint = next((h for k, h in _YAML_HINTS.items() if k in message), None)
    location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
    return Problem(message, location, hint)


def load(yaml: YAML, text: str, file: str) -> Any:
    """`yaml.load(text)` with every event checked on its way from the parser to the composer.

    Raises RunbookError with the problems found: at once when a limit is crossed (nothing deeper
    or further is read), else at the document's end, before ruamel constructs anything from what
    it composed. Other ruamel errors (syntax, duplicate keys) pass through to the caller.
    """
    if refused := refuse_text(text, file):
        raise RunbookError(refused)
    guard = _Guard(file)

    class Parser(yaml.Parser):  # type: ignore[name-defined]  # one pass: no second parse
        def get_event(self) -> Any:
            event = super().get_event()
            guard.see(event)
            if isinstance(event, DocumentEndEvent) and guard.problems:
                raise _Stop
            return event

    yaml.Parser = Parser
    constructing: list[Any] = []  # the nodes being built, innermost last: where a value failed

    class Constructor(yaml.Constructor):  # type: ignore[name-defined]
        def construct_object(self, node: Any, deep: bool = False) -> Any:
            constructing.append(node)
            value = super().construct_object(node, deep=deep)
            constructing.pop()  # not on an error: the innermost node stays to say where
            return value

    yaml.Constructor = Constructor
    try:
        with warnings.catch_warnings():  # ruamel warns of a reused anchor as it peeks: the guard refuses it
            warnings.simplefilter("ignore", ReusedAnchorWarning)
            return yaml.load(text)
    except _Stop:
        raise RunbookError(guard.problems) from None
    except MarkedYAMLError as exc:
        if guard.problems:  # the syntax error is one more problem
            raise RunbookError([*guard.problems, yaml_problem(exc, file)]) from None
        raise
    except (ValueError, IndexError, OverflowError) as exc:  # ruamel failing on a scalar it resolved: 2026-02-30, 0b_
        node = constructing[-1] if constructing else None
        mark = getattr(node, "start_mark", None)
        at = Location(file, mark.line + 1, mark.column + 1) if mark is not None else Location(file)
        shown = f" {node.value!r}" if node is not None else ""
        raise RunbookError([*guard.problems, Problem(
            f"cannot read the value{shown}: {exc}", at,
            "quote it to keep it as text (e.g. \"2026-02-30\"), or write a valid date or number")]) from None
    except YAMLError as exc:  # a reader error, which _refuse_text should have caught: a position still
        at = location_at(text, getattr(exc, "position", 0), file)
        raise RunbookError([*guard.problems, Problem(f"YAML error: {exc}", at)]) from None


@dataclass
class _Frame:
    """An open list or mapping: its anchor, how many values it holds (aliases expanded)."""

    mapping: bool
    anchor: str | None
    size: int = 1
    items: int = 0  # events directly inside: in a mapping, even ones are keys


@dataclass
class _Guard:
    file: str
    problems: list[Problem] = field(default_factory=list)
    stack: list[_Frame] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)  # anchor -> values it stands for
    anchored_at: dict[str, Any] = field(default_factory=dict)  # anchor -> its mark
    expanded: int = 0
    values: int = 0

    def see(self, event: Any) -> None:
        if isinstance(event, MappingEndEvent | SequenceEndEvent):
            self._close()
            return
        if not isinstance(event, AliasEvent | ScalarEvent | CollectionStartEvent):
            return  # stream and document boundaries
        self._check_key(event)
        self._check_anchor_and_tag(event)
        self.values += 1
        if self.values > MAX_VALUES:
            self._stop(event, f"the runbook holds more than {MAX_VALUES:,} values",
                       "split it into smaller runbooks, or keep large data in files the steps read")
        if isinstance(event, CollectionStartEvent):
            if len(self.stack) >= MAX_DEPTH:
                self._stop(event, f"lists and mappings nested more than {MAX_DEPTH} deep",
                           "flatten the structure: a runbook never needs this depth")
            self.stack.append(_Frame(isinstance(event, MappingStartEvent), event.anchor))
            return
        size = 1 if isinstance(event, ScalarEvent) else self._alias(event)
        if isinstance(event, ScalarEvent):
            self._check_number(event)
            if event.anchor is not None:
                self.sizes[event.anchor] = 1
        self._add(size)

    def _add(self, size: int) -> None:
        if self.stack:
            self.stack[-1].size += size
            self.stack[-1].items += 1

    def _close(self) -> None:
        frame = self.stack.pop()
        if frame.anchor is not None:
            self.sizes[frame.anchor] = frame.size
        self._add(frame.size)

    def _alias(self, event: AliasEvent) -> int:
        name = event.anchor
        if any(f.anchor == name for f in self.stack):
            self._stop(event, f"the alias *{name} is inside the value &{name} it names (a recursive alias)",
                       "an alias can only repeat a value that is complete: write the value out")
        size = self.sizes.get(name)
        if size is None:  # ruamel would say it too, but only after building
            self._stop(event, f"the alias *{name} names no anchor before it",
                       f"define the value with &{name} before it is used")
        self.expanded += size
        self.values += size - 1  # the alias itself was counted
        if self.expanded > MAX_ALIAS_VALUES:
            self._stop(event, f"aliases expand to more than {MAX_ALIAS_VALUES:,} values (an alias bomb?)",
                       "repeat fewer values through aliases: write the runbook out, or use vars")
        return size

    def _check_key(self, event: Any) -> None:
        frame = self.stack[-1] if self.stack else None
        if frame is None or not frame.mapping or frame.items % 2:
            return
        if isinstance(event, CollectionStartEvent):
            what = "mapping" if isinstance(event, MappingStartEvent) else "list"
            self._add_problem(event, f"a {what} cannot be a key", "a key is a word or a quoted string")
        elif isinstance(event, ScalarEvent) and event.value == "<<" and event.style is None and event.tag is None:
            self._add_problem(event, "merge keys (<<) are not supported",
                              "write the keys out: a merged key has no position of its own to report")

    def _check_anchor_and_tag(self, event: Any) -> None:
        anchor = getattr(event, "anchor", None) if not isinstance(event, AliasEvent) else None
        if anchor is not None:
            if anchor in self.anchored_at:
                first = self.anchored_at[anchor]
                self._stop(event, f"the anchor &{anchor} is defined twice (first at line {first.line + 1}, "
                                  f"column {first.column + 1})", "give each anchor its own name")
            self.anchored_at[anchor] = event.start_mark
        tag = getattr(event, "tag", None)
        if tag is not None:
            shown = "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag
            self._add_problem(event, f"unsupported YAML tag '{shown}'",
                              "remove the tag: runbooks use plain YAML values")

    def _check_number(self, event: ScalarEvent) -> None:
        value = event.value
        if event.style is None and len(value) > MAX_NUMBER_DIGITS and INTEGER.fullmatch(value):
            self._add_problem(event, f"a number of {len(value):,} digits is too long to read",
                              "quote it if it is text")

    def _add_problem(self, event: Any, message: str, hint: str) -> None:
        mark = event.start_mark
        self.problems.append(Problem(message, Location(self.file, mark.line + 1, mark.column + 1), hint))

    def _stop(self, event: Any, message: str, hint: str) -> NoReturn:
        self._add_problem(event, message, hint)
        raise _Stop
