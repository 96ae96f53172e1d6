"""What a template's or a `when` expression's text alone says, read once per distinct text, for the
validator (validate.py imports this at the first template it meets: Jinja2 comes with it).

Runbooks repeat their templates (a URL with {{ vars.port }}), and `tminus validate` checks a runbook
twice (problems, then warnings): parsing and walking each text once halves the checks' cost. Each
result depends on the text alone (the environment is always new_environment()'s); bounded caches.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jinja2
from jinja2 import meta, nodes

from tminus.runbook.references import CONTEXT_NAMES, attributes
from tminus.templating import contexts
from tminus.templating.checks import static_problems
from tminus.templating.environment import new_environment, parse_expression
from tminus.templating.sandbox import GuardedEnvironment
from tminus.templating.templater import when_expression


@dataclass(frozen=True)
class Reading:
    static: tuple[tuple[str, str], ...]  # (message, hint): unknown filters and tests, unsafe attributes
    undeclared: frozenset[str] | None  # the names it reads; None: an unknown filter or test (in `static`)
    attributes: tuple[tuple[str, str], ...]  # (root, key): vars.x, steps.id...


@dataclass(frozen=True)
class SyntaxFault:
    """A text Jinja2 cannot parse: its message and line (kept in a cache, so no exception and frames)."""

    message: str
    lineno: int


@functools.cache
def environment() -> GuardedEnvironment:
    return new_environment()


def _reading(env: GuardedEnvironment, ast: nodes.Template) -> Reading:
    static = tuple(static_problems(env, ast, CONTEXT_NAMES))
    try:
        undeclared: frozenset[str] | None = frozenset(meta.find_undeclared_variables(ast))
    except jinja2.TemplateAssertionError:
        undeclared = None
    return Reading(static, undeclared, tuple(attributes(ast)) if undeclared is not None else ())


def _fault(exc: jinja2.TemplateSyntaxError) -> SyntaxFault:
    return SyntaxFault(exc.message or str(exc), exc.lineno)


@functools.lru_cache(maxsize=4096)
def template_reading(text: str) -> Reading | SyntaxFault:
    env = environment()
    try:
        return _reading(env, env.parse(text))
    except jinja2.TemplateSyntaxError as exc:
        return _fault(exc)


@functools.lru_cache(maxsize=1024)
def expression_reading(text: str) -> Reading | SyntaxFault:
    env = environment()
    try:
        expr = parse_expression(env, when_expression(text))
    except jinja2.TemplateSyntaxError as exc:
        return _fault(exc)
    template = nodes.Template([nodes.Output([expr])])
    template.set_environment(env)
    return _reading(env, template)


@functools.lru_cache(maxsize=1024)
def rewriting(text: str, language: str) -> contexts.Rewritten | SyntaxFault | contexts.ContextRefused:
    try:
        return contexts.rewrite(environment(), text, language)
    except jinja2.TemplateSyntaxError as exc:
        return _fault(exc)
    except contexts.ContextRefused as exc:
        return exc.with_traceback(None)  # kept in a cache: no frames
