"""What a step's templates read: the context names (`vars.x`, `steps.id`, ...) in its `when`, its
expectations and its kind's configuration. The validator checks them against the runbook; the
engine asks which step outputs a check needs (a check after a rollback that needs a step that
never ran is skipped, not failed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from tminus.runbook.document import PathKey
from tminus.runbook.models import Step, nested_checks
from tminus.templating.templater import has_template, when_expression

if TYPE_CHECKING:  # imported where there is a template to read: a runbook without one never loads Jinja2
    from jinja2 import nodes

CONTEXT_NAMES = ("vars", "env", "steps", "run", "secrets")


def attributes(ast: nodes.Node) -> Iterator[tuple[str, str]]:
    """(root, key) for every `vars.x`, `steps['x']`, ... read directly from a context name."""
    from jinja2 import nodes

    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        base = node.node
        if not (isinstance(base, nodes.Name) and base.ctx == "load" and base.name in CONTEXT_NAMES):
            continue
        if isinstance(node, nodes.Getattr):
            yield base.name, node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            yield base.name, node.arg.value


def config_strings(value: Any, path: PathKey) -> Iterator[tuple[str, PathKey]]:
    """Every string a kind's configuration holds, with its YAML path; nested steps excluded."""
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            child = getattr(value, name)
            if not isinstance(child, BaseModel):
                yield from config_strings(child, (*path, info.alias or name))
    elif isinstance(value, str):
        yield value, path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from config_strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from config_strings(v, (*path, i))


def step_outputs_read(step: Step) -> list[str]:
    """The ids of the steps whose outputs `step` reads (`steps.<id>`), a wait's check included,
    in the order they first appear. Text that does not parse reads nothing here: the validator
    reported it when the runbook was loaded."""
    sources: list[tuple[bool, str]] = []  # (an expression?, text) of every template it holds
    todo: list[Step] = [step]
    while todo:
        current = todo.pop(0)
        if current.when is not None:
            sources.append((True, when_expression(current.when)))
        texts = [*(current.expect or []), *(t for t, _ in config_strings(current.config, ()))]
        sources += [(False, text) for text in texts if has_template(text)]
        todo += [nested for nested, _ in nested_checks(current)]
    if not sources:
        return []
    import jinja2

    from tminus.templating.environment import new_environment, parse_expression

    env = new_environment()
    asts: list[nodes.Node] = []
    for expression, text in sources:
        with suppress(jinja2.TemplateSyntaxError):
            asts.append(parse_expression(env, text) if expression else env.parse(text))
    found = [key for ast in asts for root, key in attributes(ast) if root == "steps"]
    return list(dict.fromkeys(found))
