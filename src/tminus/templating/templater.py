"""Rendering `{{ ... }}` templates in step configurations, expectations and `when:` expressions.

Context names: `vars`, `env` (the process environment), `steps` (id -> outputs of steps that
ran), `run` (facts about this run) and `secrets` (NAME -> value of a declared secret). Undefined
names are errors, never empty strings: a typo must not turn `rm -rf {{ vars.dir }}/` into
`rm -rf /`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from tminus.errors import TemplateError
from tminus.templating import contexts
from tminus.templating.contexts import TemplateContext
from tminus.templating.masking import MASK, Masker
from tminus.templating.names import Named

if TYPE_CHECKING:
    import jinja2

    from tminus.templating.sandbox import GuardedEnvironment

TEMPLATE_MARKERS = ("{{", "{%", "{#")
_FALSE_WORDS = frozenset({"", "0", "false", "no", "off", "none", "null"})


def has_template(text: str) -> bool:
    return any(m in text for m in TEMPLATE_MARKERS)


def when_expression(text: str) -> str:
    """`when:` is an expression; accept the common `{{ expr }}` spelling too."""
    stripped = text.strip()
    if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
        return stripped[2:-2].strip()
    return stripped


class Templater:
    """Renders runbook strings for one run (or one plan) with a fixed vars/env/run context."""

    def __init__(
        self,
        *,
        vars: Mapping[str, Any],
        environ: Mapping[str, str],
        secrets: Sequence[str],
        run: Mapping[str, Any] | None = None,
        plan_mode: bool = False,
    ) -> None:
        self.plan_mode = plan_mode
        self.masker = Masker(environ[name] for name in secrets if name in environ)
        self._jinja: GuardedEnvironment | None = None  # made at the first template (environment.py)
        secret_names = set(secrets)
        if plan_mode:
            environ = {k: MASK if k in secret_names else v for k, v in environ.items()}
            secret_values = {n: MASK if n in environ else f"⟨secret {n} unset⟩" for n in secrets}
        else:
            secret_values = {n: environ[n] for n in secrets if n in environ}
        self._context: dict[str, Any] = {
            "vars": Named("vars", vars),
            "env": Named("env", environ),
            "run": Named("run", run or {}),
            "secrets": Named("secrets", secret_values),
        }
        self._templates: dict[tuple[str | None, str], jinja2.Template] = {}
        self._expressions: dict[str, jinja2.Template] = {}
        # id(config) -> (config, whether any of its strings is a template): a configuration without
        # one renders to itself, so each step's is looked at once per run, not rebuilt at every run
        # of it. The config is kept with its id, so the id cannot be reused by another object.
        self._static: dict[int, tuple[BaseModel, bool]] = {}

    @property
    def _env(self) -> GuardedEnvironment:
        """The Jinja2 environment, made (and Jinja2 imported) when the first template is rendered."""
        if self._jinja is None:
            from tminus.templating.environment import new_environment

            self._jinja = new_environment(self.plan_mode)
        return self._jinja

    def set_fact(self, name: str, value: Any) -> None:
        """Update a run fact (`run.t_plus` changes as the run goes on)."""
        self._context["run"][name] = value

    def _with_steps(
        self, steps: Mapping[str, Mapping[str, Any]] | None, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        outputs = {k: Named(f"steps.{k}", v) for k, v in (steps or {}).items()}
        return {**self._context, "steps": Named("steps", outputs), **(extra or {})}

    def render(
        self,
        text: str,
        steps: Mapping[str, Mapping[str, Any]] | None = None,
        extra: Mapping[str, Any] | None = None,
        language: str | None = None,
    ) -> str:
        """Render `text`; `extra` adds names for one rendering (a notification's `message`, `rule`).
        `language` ("shell", "sql") escapes each `{{ }}` for where it stands (see contexts.py); a SQL
        rendering must run inside `contexts.binding()`, which collects the bound values."""
        if not has_template(text):
            return text
        import jinja2  # the Jinja2 side is imported at the first template: plain text never loads it

        from tminus.templating.environment import SecurityError, bounded
        from tminus.templating.sandbox import budget, guard

        with budget():
            template = self._templates.get((language, text))
            if template is None:
                try:
                    source = contexts.rewrite(self._env, text, language).text if language else text
                    template = self._env.from_string(guard(self._env.parse(source)))
                except jinja2.TemplateSyntaxError as exc:
                    raise TemplateError(f"template syntax error in {text!r}: {exc.message}") from None
                except SecurityError as exc:  # a constant folded while compiling went over a limit
                    raise TemplateError(_refused(text, exc)) from None
                except contexts.ContextRefused as exc:
                    where = f"line {exc.slot.line}, column {exc.slot.column}"
                    raise TemplateError(f"{exc} ({{{{ {exc.slot.expr} }}}} at {where} of {text!r}); "
                                        f"{exc.hint}") from None
                self._templates[(language, text)] = template
            try:
                return bounded(template.generate(self._with_steps(steps, extra)))
            except jinja2.UndefinedError as exc:
                raise TemplateError(str(exc)) from None
            except SecurityError as exc:
                raise TemplateError(_refused(text, exc)) from None
            except Exception as exc:  # a filter or operator failed on the values it got
                raise TemplateError(f"cannot render {text!r}: {type(exc).__name__}: {exc}") from None

    def render_obj(self, obj: Any, steps: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
        if isinstance(obj, str):
            return self.render(obj, steps)
        if isinstance(obj, dict):
            return {k: self.render_obj(v, steps) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.render_obj(v, steps) for v in obj]
        return obj

    def render_config(
        self, config: BaseModel, steps: Mapping[str, Mapping[str, Any]] | None = None
    ) -> BaseModel:
        """A copy of `config` with every string rendered, validated again (so "8080" -> 8080).

        Nested models (a `wait` step's check) are kept as they are: they render when they run, unless
        their class sets `render_with_parent` (a part of this configuration, e.g. migrate's `django:`). A field
        marked SHELL or SQL (contexts.py) is escaped for its language; a SQL field's values are bound,
        added to the field its marker names (`params`).
        """
        known = self._static.get(id(config))
        if known is None:
            known = self._static[id(config)] = (config, not _has_templates(config))
        if known[1]:
            return config  # nothing to render: the same values, validated when the runbook loaded
        model = type(config)
        data: dict[str, Any] = {}
        bound: dict[str, dict[str, Any]] = {}
        for name, info in model.model_fields.items():
            value = getattr(config, name)
            marker = next((m for m in info.metadata if isinstance(m, TemplateContext)), None)
            if marker is not None and isinstance(value, str):
                if marker.params is not None:
                    with contexts.binding() as params:
                        data[info.alias or name] = self.render(value, steps, language=marker.language)
                    bound[marker.params] = params
                else:
                    data[info.alias or name] = self.render(value, steps, language=marker.language)
                continue
            if isinstance(value, BaseModel):  # rendered here only when it says so (migrate's `django:`)
                data[info.alias or name] = (self.render_config(value, steps)
                                            if getattr(value, "render_with_parent", False) else value)
                continue
            data[info.alias or name] = self.render_obj(value, steps)
        for target, params in bound.items():
            if params:
                data[target] = {**data[target], **params}
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            if self.plan_mode:
                # A run-time value (⟨steps.x.port⟩) cannot pass validation yet; show it anyway.
                return model.model_construct(**{n: data[i.alias or n] for n, i in model.model_fields.items()})
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e['input']!r})" for e in exc.errors()
            )
            raise TemplateError(f"the rendered {model.__name__} is invalid: {problems}") from None

    def truthy(self, expr: str, steps: Mapping[str, Mapping[str, Any]] | None = None) -> bool:
        """Evaluate a `when:` expression. Strings like "false", "no", "0" and "" are false,
        because environment variables and rendered values are always text."""
        import jinja2

        from tminus.templating.environment import SecurityError, compile_expression, evaluate, names
        from tminus.templating.sandbox import budget

        source = when_expression(expr)
        with budget():
            compiled = self._expressions.get(source)
            if compiled is None:
                try:
                    compiled = compile_expression(self._env, source)
                except jinja2.TemplateSyntaxError as exc:
                    raise TemplateError(f"expression syntax error in {source!r}: {exc.message}") from None
                except SecurityError as exc:
                    raise TemplateError(_refused(source, exc)) from None
                self._expressions[source] = compiled
            if self.plan_mode and "steps" in names(self._env, source):
                return True  # depends on run-time outputs: the plan shows the step as conditional
            try:
                value = evaluate(compiled, self._with_steps(steps))
                if isinstance(value, str):
                    return value.strip().lower() not in _FALSE_WORDS
                return bool(value)
            except jinja2.UndefinedError as exc:
                raise TemplateError(str(exc)) from None
            except SecurityError as exc:
                raise TemplateError(_refused(source, exc)) from None
            except Exception as exc:
                raise TemplateError(f"cannot evaluate {source!r}: {type(exc).__name__}: {exc}") from None

def _has_templates(config: BaseModel) -> bool:
    """Whether `render_config` would render anything in `config`: a template marker in a string of a
    field (or inside its lists and dicts), or of a nested configuration rendered with its parent."""
    for name in type(config).model_fields:
        value = getattr(config, name)
        if isinstance(value, BaseModel):
            if getattr(value, "render_with_parent", False) and _has_templates(value):
                return True
        elif _has_marker(value):
            return True
    return False


def _has_marker(obj: Any) -> bool:
    """As `render_obj` walks: strings, dicts (their values, and conservatively their keys), lists."""
    if isinstance(obj, str):
        return has_template(obj)
    if isinstance(obj, dict):
        return any(_has_marker(k) or _has_marker(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_has_marker(v) for v in obj)
    return False



def _refused(text: str, exc: Exception) -> str:
    return f"template refused in {text!r}: {exc}"
