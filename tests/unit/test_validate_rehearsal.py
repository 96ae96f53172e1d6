"""decision.require_rehearsal's environments: declared (when the runbook declares any), each problem at
its file:line:column with a hint; enforced_in never names the environment rehearsals run in."""

from __future__ import annotations

import textwrap

import pytest

from tminus.errors import Problem, RunbookError
from tminus.runbook.loader import load_runbook

RUNBOOK = """
name: cutover
{environments}
decision:
  require_rehearsal:
    environment: {environment}
    enforced_in: {enforced_in}
phases:
  - name: a
    steps: [{{run: "true"}}]
"""


def load(environment: str = "staging", enforced_in: str = "[]",
         environments: str = "environments: {staging: {}, production: {}, qa: {}}") -> list[Problem]:
    text = textwrap.dedent(RUNBOOK.format(environment=environment, enforced_in=enforced_in, environments=environments))
    try:
        load_runbook("rb.yaml", text)
    except RunbookError as exc:
        return exc.problems
    return []


def said(problems: list[Problem]) -> list[tuple[str, int | None, int | None, str | None]]:
    return [(p.message, p.location.line if p.location else None, p.location.column if p.location else None, p.hint)
            for p in problems]


def test_declared_environments_pass() -> None:
    assert load() == [] and load(enforced_in="[production, qa]") == []


def test_an_undeclared_environment_is_named_at_its_line_with_a_hint() -> None:
    assert said(load(environment="stagin")) == [
        ("environment 'stagin' is not declared under environments:", 6, 5, "did you mean 'staging'?")]
    assert said(load(enforced_in="[production, prod]")) == [
        ("environment 'prod' is not declared under environments:", 7, 31,
         "the environments are staging, production, qa")]


def test_enforced_in_must_not_name_where_it_is_rehearsed() -> None:
    (problem,) = load(enforced_in="[production, staging]")
    assert problem.message.startswith("enforced_in names 'staging', where the rehearsals run")
    assert problem.location is not None and (problem.location.line, problem.location.column) == (7, 31)
    assert problem.path == "decision.require_rehearsal.enforced_in[1]"


@pytest.mark.parametrize("environments", ["", "environments: {}"])
def test_without_declared_environments_any_name_goes_but_not_the_rehearsal_one(environments: str) -> None:
    assert load(environment="stage", enforced_in="[prod]", environments=environments) == []
    (problem,) = load(environment="stage", enforced_in="[stage]", environments=environments)
    assert "enforced_in names 'stage'" in problem.message
