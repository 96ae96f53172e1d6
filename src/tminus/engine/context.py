"""What a run is set up from, before any session exists: its options, the environment it runs in,
the variables it sees and the templater that renders its steps.

Below the session and the plan (both read it); the CLI builds `Options` from its flags.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from tminus.errors import TminusError
from tminus.runbook.document import RunbookDocument
from tminus.templating.templater import Templater


@dataclass
class Options:
    """How this run was asked for: the flags of `tminus run`, `resume`, `rollback`, `gate` and `monitor`."""

    environment: str
    overrides: dict[str, Any] = field(default_factory=dict)
    operator: str = ""
    yes: bool = False
    no_input: bool = False
    interactive: bool = False
    lock_wait: float = 0.0
    at: float | None = None  # the cutover time (T+0) as an epoch: `--at` or the runbook's `at:`
    stage: float | None = None  # `tminus gate --stage T-48h`: the stage's offset in seconds
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))


def resolve_environment(doc: RunbookDocument, name: str | None) -> str:
    envs = doc.runbook.environments
    if name is None:
        if not envs:
            return "default"
        if len(envs) == 1:
            return next(iter(envs))
        raise TminusError(f"choose an environment with -e: {', '.join(envs)}")
    if envs and name not in envs:
        raise TminusError(f"unknown environment '{name}'; the runbook defines: {', '.join(envs)}")
    return name


def effective_vars(doc: RunbookDocument, environment: str, overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(doc.runbook.vars)
    env = doc.runbook.environments.get(environment)
    if env is not None:
        merged.update(env.vars)
    merged.update(overrides)
    return merged


def build_templater(
    doc: RunbookDocument, opts: Options, facts: dict[str, Any], *, plan_mode: bool = False
) -> Templater:
    return Templater(
        vars=effective_vars(doc, opts.environment, opts.overrides),
        environ=opts.environ,
        secrets=doc.runbook.secrets,
        run=facts,
        plan_mode=plan_mode,
    )


def render_durations(doc: RunbookDocument, opts: Options) -> RunbookDocument:
    """The document with its templated durations rendered with the run's variables (its environment's
    and the --var overrides) and validated; RunbookError (exit 78) with positioned problems if not."""
    from tminus.runbook.templated import has_templated_durations
    from tminus.runbook.templated import render_durations as render

    if not has_templated_durations(doc):
        return doc
    templater = build_templater(doc, opts, {"environment": opts.environment, "runbook": doc.runbook.name})
    return render(doc, templater.render, templater.masker.mask)


def check_default_durations(doc: RunbookDocument) -> None:
    """`tminus validate`: the templated durations render with the defaults of every environment."""
    from tminus.errors import RunbookError

    found: list[Any] = []
    for env in list(doc.runbook.environments) or ["default"]:
        try:
            render_durations(doc, Options(environment=env, environ={}))
        except RunbookError as exc:
            found += [p for p in exc.problems if p not in found]
    if found:
        raise RunbookError(found)


def lease_key(doc: RunbookDocument, environment: str) -> str:
    return f"{doc.runbook.name}@{environment}"
