"""Which cycles a rehearsal plans (engine/rehearsal/plan.py), from the runbook alone: nothing runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.helpers import write_runbook

from tminus.engine.context import Options
from tminus.engine.rehearsal.plan import PlanError, plan_rehearsal
from tminus.runbook.loader import load_runbook

# phases a and b can be undone; c has a step without undo (the point of no return), d comes after it
RUNBOOK = """
    name: plan-me
    phases:
      - name: a
        budget: 1m
        steps:
          - run: "echo a"
            undo: [{run: "echo undo a"}]
      - name: b
        id: bee
        budget: 2m
        steps:
          - run: "echo b"
            undo: [{run: "echo undo b"}]
      - name: c
        budget: 4m
        steps:
          - run: "echo c"
            undo: [{run: "echo undo c"}]
          - name: mail the customers
            run: "echo mail"
      - name: d
        steps:
          - run: "echo d"
            undo: [{run: "echo undo d"}]
    kill_switch:
      target: 30s
      steps:
        - run: "echo off"
"""


def _plan(tmp_path: Path, text: str = RUNBOOK, **kw: Any) -> Any:
    doc = load_runbook(write_runbook(tmp_path, text))
    return plan_rehearsal(doc, Options(environment="default"), **kw)


def test_one_cycle_per_phase_before_the_point_of_no_return_then_the_kill_switch(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert [(c.index, c.fault, c.at, c.budget) for c in plan.cycles] == [
        (0, "fail", "a", 60), (1, "fail", "b", 120), (2, "kill_switch", None, 180)]  # a and b: 1m + 2m
    assert plan.point_of_no_return is not None and plan.point_of_no_return["step"] == "mail the customers"
    assert [(n["phase"], n["covered_by"]) for n in plan.not_rehearsed] == [("c", None), ("d", None)]
    assert plan.not_rehearsed[0]["why"] == "its step 'mail the customers' is the point of no return (no undo)"
    assert plan.not_rehearsed[1]["why"] == "after the point of no return ('mail the customers' in phase 'c')"
    assert not plan.all_phases


def test_roll_forward_covers_the_phases_after_the_point_of_no_return(tmp_path: Path) -> None:
    plan = _plan(tmp_path, roll_forward=True, fault="kill")
    assert [c.fault for c in plan.cycles] == ["kill", "kill", "kill_switch", "roll_forward"]
    forward = plan.cycles[-1]
    assert (forward.rehearsed_as, forward.covers, forward.budget) == ("roll_forward_only", ["c", "d"], 420)
    assert all(n["covered_by"] == "roll_forward" for n in plan.not_rehearsed) and plan.all_phases
    assert plan.to_dict()["options"] == {"at": [], "fault": "kill", "roll_forward": True}


def test_at_takes_names_and_ids_once_each_in_runbook_order(tmp_path: Path) -> None:
    plan = _plan(tmp_path, at=["bee", "a", "b"], roll_forward=True)
    assert [c.at for c in plan.cycles if c.at] == ["a", "b"]
    assert plan.all_phases  # every phase before the point of no return was chosen
    assert not _plan(tmp_path, at=["b"], roll_forward=True).all_phases


@pytest.mark.parametrize(("kw", "message"), [
    ({"at": ["z"]}, "--at z: no such phase; the runbook's phases: 'a', 'b' (id bee), 'c', 'd'"),
    ({"at": [""]}, "--at : no such phase"),
    ({"at": ["d"]}, "--at d: phase 'd' is at or after the point of no return ('mail the customers' in phase "
                    "'c' has no undo): it cannot be rolled back; rehearse it with --roll-forward"),
    ({"fault": "explode"}, "unknown fault 'explode': one of fail, kill, monitor"),
    ({"fault": "monitor"}, "--fault monitor: the runbook has no monitor section"),
])
def test_what_cannot_be_planned_says_why(tmp_path: Path, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError) as caught:
        _plan(tmp_path, **kw)
    assert str(caught.value).startswith(message)


def test_the_monitor_cycle_needs_a_rule_that_rolls_back(tmp_path: Path) -> None:
    monitor = """
    monitor:
      duration: 1m
      interval: 10s
      probes:
        - name: health
          run: "true"
      rules:
        - name: slow
          when: exit_code != 0
          consecutive: 2
          action: {action}
    """
    with pytest.raises(PlanError, match="no monitor rule has action rollback"):
        _plan(tmp_path, RUNBOOK + monitor.format(action="notify"), fault="monitor")
    plan = _plan(tmp_path, RUNBOOK + monitor.format(action="rollback"), fault="monitor")
    assert [c.fault for c in plan.cycles] == ["fail", "fail", "monitor", "kill_switch"]
