"""`tminus plan` and the point of no return (issue 11): why each step stands where it does, a step's
`effect:` over its kind's class, `manual` and read-only steps never the point of no return, a
`when` step conditional, and the after_go and finalize phases on the timeline after the decision
and after the monitor window."""

from __future__ import annotations

import json
import textwrap

from tminus.engine.context import Options
from tminus.engine.plan import build_plan
from tminus.runbook.loader import load_runbook

RUNBOOK = """\
    name: cutover
    vars: {blue: false}
    phases:
      - name: prepare
        budget: 5m
        steps:
          - {name: activate env, run: ./env.sh status, effect: none}
          - {name: team ready, manual: "Is the team ready?"}
          - {name: snapshot, run: ./snapshot.sh, effect: additive}
          - {name: status, http: "http://127.0.0.1:9/health"}
          - {name: migrate, migrate: {url: "sqlite:///app.db", dir: migrations}}
      - name: switch
        budget: 10m
        steps:
          - {name: flip, run: ./flip.sh, undo: [{run: ./unflip.sh}]}
          - {name: only blue, when: vars.blue, run: ./blue.sh}
          - {name: send emails, run: ./emails.sh}
    after_go:
      - name: doors
        budget: 2m
        steps: [{name: open, run: ./doors.sh open}]
        undo: [{run: ./doors.sh close}]
    monitor:
      duration: 15m
      interval: 30s
      probes: [{name: up, http: "http://127.0.0.1:9/health"}]
    finalize:
      - name: retire
        steps: [{name: stop blue, run: ./stop-blue.sh, effect: irreversible}]
"""


def _plan(text: str = RUNBOOK) -> dict:
    doc = load_runbook("rb.yaml", textwrap.dedent(text))
    return build_plan(doc, Options(environment="default", environ={"HOME": "/root"})).to_dict()


def test_why_each_phase_step_stands_where_it_does() -> None:
    plan = _plan()
    got = {s["title"]: (s["effect"], s["why"], s["reversible"]) for ph in plan["phases"] for s in ph["steps"]}
    assert got == {
        "activate env": ("none", "none: declared read-only (effect: none)", True),
        "team ready": ("none", "none: an operator's confirmation changes nothing by itself", True),
        "snapshot": ("additive", "additive: declared (effect: additive), nothing to undo", True),
        "status": ("none", "none: a check (http changes nothing)", True),
        "migrate": ("reversible", "reversible: a migrate step derives its own undo (automatic revert)", True),
        "flip": ("irreversible", "reversed by its undo", True),
        "only blue": ("irreversible", "irreversible: run without undo; conditional (when: vars.blue): counts only "
                      "if it runs", False),
        "send emails": ("irreversible", "irreversible: run without undo", False),
    }


def test_the_point_of_no_return_skips_read_only_and_manual_steps_and_says_it_is_conditional() -> None:
    ponr = _plan()["point_of_no_return"]
    assert ponr["step"] == "only blue" and ponr["section"] == "phases" and ponr["conditional"] is True
    assert ponr["tplus"] == "T+0:05" and ponr["why"].startswith("irreversible: run without undo")
    assert "runs only when `vars.blue` holds" in ponr["meaning"]
    json.dumps(ponr)


def test_without_effect_none_a_read_only_run_would_be_the_point_of_no_return() -> None:
    text = RUNBOOK.replace(", effect: none}", "}")
    assert _plan(text)["point_of_no_return"]["step"] == "activate env"


def test_after_go_and_finalize_phases_on_the_timeline() -> None:
    plan = _plan()
    assert plan["end_tplus"] == "T+0:15" and plan["total_budget"] == 900
    [doors] = plan["after_go"]
    assert doors["tplus"] == "T+0:15" and doors["starts_at"] == 900
    assert doors["steps"][0]["why"] == "reversed by its phase's undo"
    [retire] = plan["finalize"]
    assert retire["tplus"] == "T+0:32" and retire["starts_at"] == 900 + 120 + 900  # after the window
    assert retire["steps"][0]["why"] == "irreversible: declared, no undo"


def test_the_point_of_no_return_may_lie_after_the_go() -> None:
    text = RUNBOOK.replace("          - {name: only blue, when: vars.blue, run: ./blue.sh}\n", "").replace(
        "          - {name: send emails, run: ./emails.sh}\n", "")
    ponr = _plan(text)["point_of_no_return"]
    assert (ponr["section"], ponr["phase"], ponr["step"]) == ("finalize", "retire", "stop blue")


def test_finalize_without_a_monitor_follows_after_go_at_once() -> None:
    text = RUNBOOK[:RUNBOOK.index("    monitor:")] + RUNBOOK[RUNBOOK.index("    finalize:"):]
    plan = _plan(text)
    assert plan["monitor"] is None and plan["finalize"][0]["tplus"] == "T+0:17"
