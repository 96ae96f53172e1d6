"""Deadlines in the runbook model and templated durations: what loads, what is refused and where,
and how the projection measures a deadline's clock from a run's events (a resume keeps it)."""

from __future__ import annotations

import json
import textwrap
import time
from typing import Any

import pytest

from tminus.engine.context import Options, check_default_durations, render_durations
from tminus.errors import Problem, RunbookError
from tminus.projection import project
from tminus.runbook.deadlines import deadlines_of
from tminus.runbook.document import RunbookDocument
from tminus.runbook.loader import load_runbook
from tminus.runbook.types import DurationTemplate


def load(text: str) -> RunbookDocument:
    return load_runbook("rb.yaml", textwrap.dedent(text).lstrip())


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(RunbookError) as info:
        load(text)
    return info.value.problems


def rendered_problems(doc: RunbookDocument, **overrides: Any) -> list[Problem]:
    with pytest.raises(RunbookError) as info:
        render_durations(doc, Options(environment="default", overrides=overrides, environ={}))
    return info.value.problems


def at(p: Problem) -> tuple[int | None, int | None]:
    assert p.location is not None
    return p.location.line, p.location.column


TEMPLATED = """
    name: t
    vars: {window: 2s, step: 5m}
    monitor:
      duration: "{{ vars.window }}"
      interval: 1s
      probes: [{name: h, run: "true"}]
      rules: [{name: r, probe: h, when: "exit_code != 0", for: "{{ vars.window }}"}]
    phases:
      - name: one
        deadline: "{{ vars.step }}"
        steps:
          - run: "true"
            timeout: 30s
            retry: {attempts: 2, interval: "{{ vars.window }}"}
"""


def test_a_plain_duration_stays_a_float_and_a_template_waits() -> None:
    doc = load(TEMPLATED)
    rb = doc.runbook
    step = rb.phases[0].steps[0]
    assert type(step.timeout) is float and step.timeout == 30.0
    assert isinstance(rb.monitor and rb.monitor.duration, DurationTemplate)
    assert render_durations(load("name: t\nphases: [{name: p, steps: [{run: 'true'}]}]\n"),
                            Options(environment="default")) is not None
    plain = load("name: t\nphases: [{name: p, steps: [{run: 'true', timeout: 5s}]}]\n")
    assert render_durations(plain, Options(environment="default")) is plain  # the static path: untouched


def test_templates_render_with_the_runs_variables() -> None:
    doc = load(TEMPLATED)
    out = render_durations(doc, Options(environment="default", overrides={"window": "90s", "step": "1h"}))
    rb = out.runbook
    assert rb.monitor is not None and rb.monitor.duration == 90.0 and rb.monitor.rules[0].for_ == 90.0
    assert rb.phases[0].deadline is not None and rb.phases[0].deadline.after == 3600.0
    assert rb.phases[0].steps[0].retry is not None and rb.phases[0].steps[0].retry.interval == 90.0
    assert rb.phases[0].steps[0].key == "phases[0].steps[0]"  # keys and paths come along
    assert isinstance(doc.runbook.monitor and doc.runbook.monitor.duration, DurationTemplate)  # the loaded one kept


def test_a_rendered_value_that_is_no_duration_is_refused_where_it_is_written() -> None:
    doc = load(TEMPLATED)
    found = rendered_problems(doc, window="soon", step="400d")
    by_path = {p.path: p for p in found}
    assert at(by_path["monitor.duration"]) == (4, 3)
    assert "renders to 'soon'" in by_path["monitor.duration"].message
    assert at(by_path["phases[0].deadline.after"]) == (10, 5)  # the shorthand: where `deadline:` is
    assert "deadline is '{{ vars.step }}', which renders to '400d'" in by_path["phases[0].deadline.after"].message
    assert "at most 366 days" in by_path["phases[0].deadline.after"].message
    assert "monitor.rules[0].for" in by_path and "phases[0].steps[0].retry.interval" in by_path


def test_the_whole_runbook_checks_run_again_after_rendering() -> None:
    doc = load(TEMPLATED)
    (p,) = rendered_problems(doc, window="500ms")  # the window is now shorter than the 1s interval
    assert "interval (1s) is longer than the window (0.5s)" in p.message and "after rendering" in p.message
    assert at(p) == (5, 3)


def test_an_unknown_variable_or_a_broken_template_is_positioned() -> None:
    doc = load("""
        name: t
        phases:
          - name: one
            steps:
              - run: "true"
                timeout: "{{ vars.nope }}"
              - run: "true"
                timeout: "{{ vars.nope }"
    """)
    first, second = rendered_problems(doc)
    assert at(first) == (6, 9) and "undefined name vars.nope" in first.message
    assert at(second) == (8, 9) and "template syntax error" in second.message
    with pytest.raises(RunbookError):
        check_default_durations(doc)  # `tminus validate`: the defaults must render


def test_validate_renders_the_defaults_of_every_environment() -> None:
    doc = load("""
        name: t
        vars: {limit: 5m}
        environments:
          staging: {}
          prod: {vars: {limit: forever}}
        phases: [{name: one, deadline: "{{ vars.limit }}", steps: [{run: "true"}]}]
    """)
    with pytest.raises(RunbookError) as info:
        check_default_durations(doc)
    (p,) = info.value.problems
    assert "renders to 'forever'" in p.message


def test_rollback_is_a_list_or_a_mapping_and_keeps_its_keys() -> None:
    listed = load("name: t\nrollback: [{run: 'true'}]\n")
    assert listed.runbook.rollback.steps[0].key == "rollback[0]" and listed.runbook.rollback.deadline is None
    mapped = load("""
        name: t
        rollback:
          deadline: 1h
          steps:
            - run: "true"
    """)
    assert mapped.runbook.rollback.steps[0].key == "rollback.steps[0]"
    assert mapped.runbook.rollback.deadline == 3600.0
    (p,) = problems_of("""
        name: t
        rollback:
          steps:
            - run: "true"
              tiemout: 5s
    """)
    assert at(p) == (5, 7) and "unknown key 'tiemout'" in p.message
    (p,) = problems_of("name: t\nrollback:\n  - run: 'true'\n    tiemout: 5s\n")
    assert at(p) == (4, 5)


@pytest.mark.parametrize(("text", "where", "words"), [
    ("rollback: {steps: [{run: 'true'}], deadline: 1h, action: rollback}", (2, 50), "cannot roll back again"),
    ("rollback: {steps: [{run: 'true'}], action: pause}", (2, 1), "need a 'deadline'"),
    ("downtime: {from: on, to: of, deadline: 4h}", (2, 22), "downtime to 'of' is not the id"),
    ("downtime: {from: off, to: on, deadline: 4h}", (2, 23), "ends ('on') before it starts ('off')"),
    ("downtime: {from: on, to: off, deadline: 0s}", (2, 31), "exceeded as soon as it starts"),
    ("downtime: {from: on, to: off, deadline: 1h, notify: [opz]}", (2, 54), "unknown channel 'opz'"),
    ("downtime: {from: on, to: off, deadline: 1h, action: later}", (2, 45), "expected 'notify', 'pause' or"),
])
def test_deadline_mistakes_are_refused_with_positions(text: str, where: tuple[int, int], words: str) -> None:
    """Each at its key: `to:`, `action:`, `deadline:`..."""
    found = problems_of(f"""
        name: t
        {text}
        channels: {{ops: {{url: "http://127.0.0.1:9/x"}}}}
        phases:
          - name: p
            steps:
              - {{id: on, run: "true"}}
              - {{id: off, run: "true"}}
    """)
    assert any(words in p.message and at(p) == where for p in found), [(p.message, at(p)) for p in found]


def test_deadlines_in_the_order_a_run_meets_them() -> None:
    rb = load("""
        name: t
        downtime: {from: first, to: last, deadline: 4h, action: pause}
        phases:
          - {name: first, deadline: 30m, steps: [{run: "true"}]}
          - {name: second, id: last, deadline: {after: 10m, action: rollback}, steps: [{run: "true"}]}
        rollback: {steps: [], deadline: 1h}
    """).runbook
    assert [(d.id, d.after, d.action, d.start, d.end) for d in deadlines_of(rb)] == [
        ("downtime", 14400.0, "pause", ("section", "phase:first"), ("section", "phase:second")),
        ("phase:first", 1800.0, "notify", ("section", "phase:first"), ("section", "phase:first")),
        ("phase:second", 600.0, "rollback", ("section", "phase:second"), ("section", "phase:second")),
        ("rollback", 3600.0, "notify", ("rollback", ""), ("rollback", "")),
    ]


# --- the projection measures a deadline from the events ------------------------------------------------

SPEC = [{"id": "phase:p", "what": "phase 'p'", "after": 10, "action": "notify", "notify": [],
         "start": ["section", "phase:p"], "end": ["section", "phase:p"]}]


def ev(seq: int, type_: str, at: float, **data: Any) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}+00:00"
    return {"seq": seq, "type": type_, "at": stamp, "data": data, "step_key": None}


def test_an_interrupted_phase_keeps_its_first_start_across_a_resume() -> None:
    t0 = 1_800_000_000.0
    events = [
        ev(1, "run.started", t0, deadlines=SPEC),
        ev(2, "section.started", t0 + 1, section="phase:p", kind="phase", name="p"),
        ev(3, "section.finished", t0 + 4, section="phase:p", ok=False, status="stopped", stopped="interrupt"),
        ev(4, "run.finished", t0 + 4, status="interrupted", exit_code=130),
        ev(5, "run.resumed", t0 + 20),
        ev(6, "section.started", t0 + 21, section="phase:p", kind="phase", name="p"),
    ]
    (m,) = project(events).deadlines(now=t0 + 22)
    assert m.started_at == t0 + 1 and m.ended_at is None  # open, from the first start
    assert m.actual == pytest.approx(21) and m.exceeded_by == pytest.approx(11) and m.state == "exceeded"
    events.append(ev(7, "section.finished", t0 + 23, section="phase:p", ok=True, status="ok"))
    (m,) = project(events).deadlines(now=t0 + 99)
    assert m.ended_at == pytest.approx(t0 + 23) and m.actual == pytest.approx(22)


def test_a_run_that_ended_closes_an_open_clock_and_a_resumable_end_does_not() -> None:
    t0 = 1_800_000_000.0
    events = [ev(1, "run.started", t0, deadlines=SPEC),
              ev(2, "section.started", t0 + 1, section="phase:p", kind="phase", name="p")]
    assert project(events).deadlines(now=t0 + 5)[0].state == "open"
    needs = [*events, ev(3, "run.finished", t0 + 3, status="needs_operator", exit_code=15)]
    assert project(needs).deadlines(now=t0 + 50)[0].ended_at is None  # resumable: still running on
    aborted = [*events, ev(3, "run.finished", t0 + 3, status="aborted", exit_code=13)]
    (m,) = project(aborted).deadlines(now=t0 + 50)
    assert m.ended_at == pytest.approx(t0 + 3) and m.state == "met"
    (m,) = project([ev(1, "run.started", t0, deadlines=SPEC)]).deadlines(now=t0 + 50)
    assert m.state == "not started" and m.actual is None


def test_the_alert_and_its_answer_are_folded() -> None:
    t0 = 1_800_000_000.0
    events = [ev(1, "run.started", t0, deadlines=SPEC),
              ev(2, "section.started", t0 + 1, section="phase:p", kind="phase", name="p"),
              ev(3, "deadline.exceeded", t0 + 11.1, deadline="phase:p", after=10, action="pause", elapsed=10.1),
              ev(4, "deadline.answered", t0 + 15, deadline="phase:p", outcome="continue", by="bob", how="tty")]
    view = project(events)
    (alert,) = view.alerts
    assert (alert.id, alert.action, alert.elapsed, alert.outcome, alert.by) == ("phase:p", "pause", 10.1,
                                                                               "continue", "bob")
    assert view.deadlines(now=t0 + 16)[0].alert is alert


def test_a_secret_read_by_a_duration_is_masked_in_the_problem() -> None:
    doc = load("""
        name: t
        secrets: [TOKEN]
        phases: [{name: one, deadline: "{{ secrets.TOKEN }}", steps: [{run: "true"}]}]
    """)
    with pytest.raises(RunbookError) as info:
        render_durations(doc, Options(environment="default", environ={"TOKEN": "hunter2-s3cret"}))
    (p,) = info.value.problems
    assert "hunter2" not in p.message and "***" in p.message


def test_the_json_schema_takes_deadlines_both_rollback_forms_and_templated_durations() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="the jsonschema package is not installed")
    from tminus.runbook.schema import json_schema

    check = jsonschema.Draft202012Validator(json_schema())
    good = {"name": "t", "vars": {"w": "5m"}, "downtime": {"from": "a", "to": "a", "deadline": "4h"},
            "phases": [{"name": "p", "deadline": "{{ vars.w }}", "steps": [{"id": "a", "run": "true",
                                                                           "timeout": "{{ vars.w }}"}]},
                       {"name": "q", "deadline": {"after": "30m", "action": "pause"}, "steps": [{"run": "true"}]}],
            "rollback": {"steps": [{"run": "true"}], "deadline": "1h", "action": "notify"}}
    assert [e.message for e in check.iter_errors(good)] == []
    assert check.is_valid({**good, "rollback": [{"run": "true"}]})
    assert not check.is_valid({**good, "rollback": {"steps": [], "action": "later"}})
    assert not check.is_valid({**good, "downtime": {"from": "a", "deadline": "4h"}})  # no `to`
    load_runbook("rb.yaml", json.dumps(good))  # and the loader agrees


def test_a_guard_may_template_its_durations_too() -> None:
    doc = load("""
        name: t
        vars: {every: 1s, hold: 3s}
        phases:
          - name: one
            guard:
              interval: "{{ vars.every }}"
              probes: [{name: bind, tcp: {port: 8080}}]
              rules: [{name: lost, probe: bind, when: "open == false", for: "{{ vars.hold }}"}]
            steps: [{run: "true"}]
    """)
    rb = render_durations(doc, Options(environment="default", overrides={"hold": "5s"})).runbook
    guard = rb.phases[0].guard
    assert guard is not None and guard.interval == 1.0 and guard.rules[0].for_ == 5.0
    (p,) = rendered_problems(doc, every="often")
    assert p.path == "phases[0].guard.interval" and at(p) == (6, 7) and "renders to 'often'" in p.message
