"""The Jinja2 side of the templater: the sandboxed environment every runbook string is rendered
(and validated) with, and what compiles and evaluates with it.

Imported at the first string that holds a template (templater.py, runbook/validate.py): a runbook
without one never loads Jinja2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.parser import Parser
from jinja2.sandbox import SecurityError

from tminus.templating import contexts
from tminus.templating.names import Named, Pending
from tminus.templating.sandbox import MAX_SIZE, GuardedEnvironment, TemplateLimit, guard

__all__ = ["SecurityError", "bounded", "compile_expression", "evaluate", "names", "new_environment",
           "parse_expression"]


class _PlanUnset(jinja2.Undefined):
    """Plan mode: an unset environment variable. Shown as a placeholder, yet still undefined, so
    `{{ env.PORT | default(vars.port) }}` plans the same value a run would use."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"⟨env.{self._undefined_name} unset⟩"


class _Undefined(jinja2.StrictUndefined):
    """Fails on any use, naming the full dotted path that was undefined."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        obj, name = self._undefined_obj, self._undefined_name
        if self._undefined_hint:
            return self._undefined_hint
        if obj is jinja2.utils.missing:
            return f"undefined name {name} (known: vars, env, steps, run, secrets)"
        if isinstance(obj, Named):
            message = f"undefined name {obj.label}.{name}"
            if obj.label == "env":
                message += f" (the environment variable {name} is not set)"
            elif obj.label == "secrets":
                message += f" (list it under secrets: and set the environment variable {name})"
            elif obj.label == "steps":
                message += " (no step with this id has run successfully before this one)"
            return message
        return super()._undefined_message


class _Environment(GuardedEnvironment):
    """Sandboxed (see sandbox.py); prefers keys over dict methods (a var named `items` is the var)
    and labels nested dicts."""

    plan_mode: bool = False

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Named) and attribute in obj:
            return self._child(obj, attribute, obj[attribute])
        return self._child(obj, attribute, super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        return self._child(obj, argument, super().getitem(obj, argument))

    def _child(self, parent: Any, key: Any, value: Any) -> Any:
        if not isinstance(parent, Named):
            return value
        if isinstance(value, jinja2.Undefined) and self.plan_mode:
            if parent.label == "steps":
                return Pending(f"steps.{key}")
            if parent.label == "env":
                return _PlanUnset(name=str(key))
        if type(value) is dict:
            return Named(f"{parent.label}.{key}", value)
        return value


def _tojson(value: Any) -> str:
    # Jinja's own tojson escapes <, >, & for HTML; runbooks feed shells and APIs, not browsers.
    return json.dumps(value, default=str, ensure_ascii=False)


def new_environment(plan_mode: bool = False) -> GuardedEnvironment:
    """The Jinja2 environment every runbook string is rendered (and validated) with."""
    env = _Environment(undefined=_Undefined, autoescape=False, keep_trailing_newline=True)
    env.plan_mode = plan_mode
    env.add_filters(shquote=contexts.quote, sh=contexts.quote, quote=contexts.quote, raw=contexts.raw,
                    tojson=_tojson, **{contexts.SHELL_FILTER: contexts.shell_escape,
                                       contexts.BIND_FILTER: contexts.sql_escape})
    return env


def parse_expression(env: jinja2.Environment, source: str) -> nodes.Expr:
    """Parse a Jinja2 expression (as `Environment.compile_expression` does), for validation."""
    parser = Parser(env, source, state="variable")
    expr = parser.parse_expression()
    if not parser.stream.eos:
        raise jinja2.TemplateSyntaxError("unexpected text after the expression", parser.stream.current.lineno)
    return expr


def compile_expression(env: jinja2.Environment, source: str) -> jinja2.Template:
    """As `Environment.compile_expression`, but through the sandbox's rewrite."""
    expr = parse_expression(env, source)
    body = nodes.Template([nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)], lineno=1)
    return env.from_string(guard(body))


def bounded(chunks: Iterator[str]) -> str:
    """Join a rendering's output, stopping as soon as it passes MAX_SIZE."""
    out: list[str] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > MAX_SIZE:
            raise TemplateLimit(f"the rendered text is over {MAX_SIZE:,} characters")
        out.append(chunk)
    return "".join(out)


def evaluate(template: jinja2.Template, names: dict[str, Any]) -> Any:
    context = template.new_context(names)
    for _ in template.root_render_func(context):
        pass
    return context.vars["result"]


def names(env: jinja2.Environment, source: str) -> set[str]:
    """Top-level names an expression reads."""
    expr = parse_expression(env, source)
    return {n.name for n in expr.find_all(nodes.Name) if n.ctx == "load"}
