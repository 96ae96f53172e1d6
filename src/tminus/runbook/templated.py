"""Durations written as templates (`timeout: "{{ vars.window }}"`): rendered once when a run starts,
with the run's variables, then validated as if written so, with the same positioned problems.

The loader keeps such a value as a `DurationTemplate` (runbook/types.py) and skips the checks that
need its number; `render_durations` returns the document with every one rendered to seconds, checked
(a duration, finite, at most a year) and the whole-runbook checks run again on the result. A runbook
without templated durations is returned as it is: the static path costs one walk of the model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from pydantic import BaseModel

from tminus.errors import Problem, RunbookError, TemplateError
from tminus.runbook.document import PathKey, RunbookDocument, path_to_str
from tminus.runbook.models import RollbackSpec
from tminus.runbook.monitor import AlertRule
from tminus.runbook.types import duration_value, is_template

Render = Callable[[str], str]


@dataclass(frozen=True)
class Slot:
    owner: BaseModel  # the model holding the field
    field: str  # its attribute name
    path: PathKey  # where it is written (the key as in the file: `for`, not `for_`)
    template: str


def templated(model: BaseModel, path: PathKey = ()) -> Iterator[Slot]:
    """Every duration field of `model` (and below) that holds a template."""
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        key = info.alias or name
        if is_template(value):
            yield Slot(model, name, (*path, key), str(value))
        elif isinstance(value, BaseModel):
            yield from templated(value, (*path, key))
        elif isinstance(value, list):
            base = path if isinstance(model, RollbackSpec) and model.base == ("rollback",) else (*path, key)
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from templated(item, (*base, i))
        elif isinstance(value, dict):
            for k, item in value.items():
                if isinstance(item, BaseModel):
                    yield from templated(item, (*path, key, k))


def has_templated_durations(doc: RunbookDocument) -> bool:
    return next(templated(doc.runbook), None) is not None


def render_durations(doc: RunbookDocument, render: Render, mask: Render = str) -> RunbookDocument:
    """The document with its templated durations rendered by `render` (vars known) and validated.
    Raises RunbookError with every problem, each at the field's file:line:column; `mask` keeps a
    secret a template read out of the message."""
    if not has_templated_durations(doc):
        return doc
    from tminus.runbook.validate import semantic_problems  # the whole-runbook checks, again

    runbook = copy.deepcopy(doc.runbook)  # private attributes (step keys, paths) come along
    problems: list[Problem] = []
    rules: dict[int, tuple[AlertRule, PathKey]] = {}
    for slot in list(templated(runbook)):
        where = doc.source.locate(slot.path)
        written = next((slot.path[:n] for n in range(len(slot.path), 0, -1) if slot.path[:n] in doc.source.positions),
                       slot.path)  # `deadline: "{{ ... }}"` stands for {after: ...}: name the key written
        field, key = path_to_str(slot.path), written[-1]
        try:
            text = render(slot.template)
        except TemplateError as exc:
            problems.append(Problem(f"{key} is {slot.template!r}, which cannot be rendered: {exc}", where,
                                    "a duration may use the run's variables, e.g. \"{{ vars.window }}\"; "
                                    "declare each under vars: (tminus run --var window=5m sets it)", field))
            continue
        try:
            seconds = duration_value(text.strip())
        except ValueError as exc:
            hint = getattr(exc, "hint", "it must render to a duration such as 500ms, 30s, 5m or 1h30m")
            problems.append(Problem(mask(f"{key} is {slot.template!r}, which renders to {text!r}: {exc}"),
                                    where, hint, field))
            continue
        object.__setattr__(slot.owner, slot.field, seconds)
        if isinstance(slot.owner, AlertRule):
            rules[id(slot.owner)] = (slot.owner, slot.path[:-1])
    for rule, path in rules.values():
        try:
            rule.to_rule()
        except ValueError as exc:
            problems.append(Problem(f"{exc} (after rendering its templated durations)", doc.source.locate(path),
                                    None, path_to_str(path)))
    if not problems:
        problems = [Problem(f"{p.message} (after rendering its templated durations)", p.location, p.hint, p.path)
                    for p in semantic_problems(runbook, doc.source)]
    if problems:
        raise RunbookError(problems)
    return replace(doc, runbook=runbook)


__all__ = ["Slot", "has_templated_durations", "render_durations", "templated"]
