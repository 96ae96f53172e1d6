"""`tminus plan` and decision.require_rehearsal: what it asks, where it applies, met or not met (a real
SQLite ledger), and not checked without one; its durations may be templates of the environment's vars."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tminus.cli.render import print_plan
from tminus.engine.context import Options
from tminus.engine.plan import build_plan, rehearsal_status
from tminus.ledger import open_ledger
from tminus.runbook.loader import load_runbook

RUNBOOK = """
name: cutover
environments: {staging: {}, production: {vars: {rto: 10m}}, qa: {}}
vars: {rto: 1m}
decision:
  require_rehearsal: {environment: staging, max_rto: "{{ vars.rto }}", enforced_in: [production]}
phases:
  - name: a
    steps: [{run: "true"}]
"""


def test_plan_says_where_it_applies_and_whether_it_is_met(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = load_runbook("rb.yaml", textwrap.dedent(RUNBOOK))
    staging = build_plan(doc, Options(environment="staging"))
    assert staging.rehearsal is not None and staging.rehearsal["applies"] is False
    print_plan(staging)
    assert "Rehearsal: not required in staging (where it is rehearsed)" in capsys.readouterr().out
    print_plan(build_plan(doc, Options(environment="qa")))
    assert "Rehearsal: not required in qa (not in enforced_in)" in capsys.readouterr().out

    plan = build_plan(doc, Options(environment="production"))
    assert plan.rehearsal is not None and plan.rehearsal["applies"] and plan.rehearsal["met"] is None
    plan.rehearsal.update(rehearsal_status(doc, Options(environment="production"), None, "no ledger at x.db"))
    print_plan(plan)
    out = capsys.readouterr().out
    assert ("a passing rehearsal of cutover in staging, every RTO <= 10m00s, every phase, same procedure\n"
            "  unknown: not checked: no ledger at x.db") in out, out
    with open_ledger(f"sqlite:///{tmp_path / 'l.db'}") as ledger:
        plan.rehearsal.update(rehearsal_status(doc, Options(environment="production"), ledger))
    assert plan.rehearsal["met"] is False and plan.to_dict()["rehearsal"]["message"].startswith("no rehearsal of")
    print_plan(plan)
    assert "  not met: no rehearsal of cutover in staging has finished" in capsys.readouterr().out
    plain = load_runbook("rb.yaml", "name: x\nphases: []\n")
    assert build_plan(plain, Options(environment="default")).rehearsal is None
