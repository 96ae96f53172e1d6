"""Judging one observation against a step's expectations (or its kind's default ones).

A verdict is explained: each expectation's message carries the runbook file:line of the assertion,
what was expected and the actual value; a failure quotes the raw output behind it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tminus.errors import ExpectationSyntaxError, TemplateError
from tminus.kinds.base import Observation
from tminus.runbook.document import RunbookDocument
from tminus.runbook.models import Step
from tminus.templating.templater import Templater

RAW_EXCERPT = 600  # characters of stdout, stderr or a body quoted with a failed verdict


@dataclass
class Judgement:
    passed: bool
    message: str
    verdicts: list[dict[str, Any]]


def judge(
    doc: RunbookDocument,
    templater: Templater,
    outputs: Mapping[str, Mapping[str, Any]],
    step: Step,
    obs: Observation,
    default_expect: tuple[str, ...],
) -> Judgement:
    """Every expectation is rendered (it may use earlier steps' `outputs`) and evaluated; a kind's
    error or failures, a template or syntax error, or a verdict without data all fail the step."""
    from tminus.expect import parse  # the grammar is loaded by the first step judged

    where = doc.locate(step)
    problems: list[str] = []
    if obs.error:
        problems.append(f"{where}: {obs.error}")
    problems.extend(f"{where}: {f}" for f in obs.failures)
    verdicts: list[dict[str, Any]] = []
    texts = step.expect if step.expect is not None else list(default_expect)
    for i, text in enumerate(texts):
        loc = doc.locate(step, "expect", i) if step.expect is not None else where
        try:
            assertion = parse(templater.render(text, outputs))
        except (TemplateError, ExpectationSyntaxError) as exc:
            problems.append(f"{loc}: {text}: {exc}")
            continue
        if obs.error:
            continue  # nothing was observed; the error already explains the failure
        verdict = assertion.evaluate(obs.values)
        data = verdict.to_dict()
        data["location"] = str(loc)
        verdicts.append(data)
        if verdict.passed is not True:  # a failure, or no data: checks fail closed
            problems.append(f"{loc}: {verdict.message}")
    if problems:
        raw = raw_excerpt(obs)
        if raw:
            problems.append(raw)
    return Judgement(not problems, "\n".join(problems), verdicts)


def raw_excerpt(obs: Observation) -> str:
    """The raw output behind a failed verdict, always shown (truncated)."""
    parts = []
    for key in ("stdout", "stderr", "body"):
        text = obs.evidence.get(key)
        if isinstance(text, str) and text.strip():
            text = text.strip()
            if len(text) > RAW_EXCERPT:
                text = "..." + text[-RAW_EXCERPT:]
            parts.append(f"{key}: {text}")
    return "\n".join(parts)


__all__ = ["Judgement", "judge", "raw_excerpt"]
