"""Validation of the cutover sections: `kill_switch:` and `release:`, each problem at its file:line."""

from __future__ import annotations

import textwrap

import pytest

from tminus.errors import Problem, RunbookError
from tminus.runbook.loader import load_runbook


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(RunbookError) as info:
        load_runbook("rb.yaml", textwrap.dedent(text))
    return info.value.problems


def at(p: Problem) -> tuple[int | None, int | None]:
    assert p.location is not None
    return p.location.line, p.location.column


def test_a_valid_kill_switch_and_release_load_with_keys() -> None:
    doc = load_runbook("rb.yaml", textwrap.dedent("""
        name: x
        vars: {release: v1}
        release: "{{ vars.release }}"
        phases: [{name: p, steps: [{run: "true"}]}]
        kill_switch:
          target: 30s
          steps:
            - run: "echo blue > route"
    """))
    ks = doc.runbook.kill_switch
    assert ks is not None and ks.target == 30 and ks.steps[0].key == "kill_switch.steps[0]"
    assert doc.runbook.release == "{{ vars.release }}"
    assert "kill_switch.steps[0]" in doc.step_by_key()


def test_kill_switch_mistakes_are_refused_where_written() -> None:
    found = problems_of("""
        name: x
        release: "{{ vars.relase }}"
        phases: [{name: p, steps: [{id: sw, run: "true"}]}]
        kill_switch:
          target: 5s
          steps:
            - manual: "are you sure?"
            - run: "echo {{ steps.sw.stdout }}"
            - run: "true"
              timeout: 10s
    """)
    got = sorted((at(p), p.message) for p in found)
    assert [line for (line, _col), _m in got] == [3, 8, 9, 11]
    messages = " | ".join(m for _w, m in got)
    assert "undefined variable vars.relase" in messages
    assert "cannot wait for an operator" in messages
    assert "steps.sw" in messages
    assert "longer than the kill switch's target" in messages


@pytest.mark.parametrize("body, needle", [
    ("kill_switch: {steps: [{run: 'true'}]}", "target"),
    ("kill_switch: {target: 5s, steps: []}", "steps"),
    ("kill_switch: {target: soon, steps: [{run: 'true'}]}", "target"),
])
def test_kill_switch_shape_errors_name_the_field(body: str, needle: str) -> None:
    found = problems_of(f"name: x\nphases: [{{name: p, steps: [{{run: 'true'}}]}}]\n{body}\n")
    assert found and all(p.location is not None and p.location.line == 3 for p in found), found
    assert any(needle in (p.path or "") or needle in p.message for p in found), found


WATCH = """
    name: x
    phases:
      - name: canary
        steps:
          - id: first
            run: "echo 10"
          - name: analysis
            watch:
              duration: DURATION
              interval: 10s
              probes:
                - name: green
                  http: "http://127.0.0.1:9/{{ steps.first.stdout }}"
              rules:
                - name: errors
                  probe: PROBE
                  when: status >= 500
                  consecutive: 3
"""


def test_a_valid_watch_loads_with_its_probes_keyed() -> None:
    doc = load_runbook("rb.yaml", textwrap.dedent(WATCH.replace("DURATION", "5m").replace("PROBE", "green")))
    step = doc.runbook.phases[0].steps[1]
    assert step.kind == "watch" and step.is_check
    assert step.watch is not None and step.watch.probes[0].key == "phases[0].steps[1].watch.probes[0]"
    assert "phases[0].steps[1].watch.probes[0]" in doc.step_by_key()


def test_watch_mistakes_are_refused_where_written() -> None:
    found = problems_of("""
        name: x
        channels: {ops: {url: "http://127.0.0.1:9/"}}
        phases:
          - name: canary
            steps:
              - watch:
                  duration: 10s
                  interval: 10s
                  probes: [{name: green, http: "http://127.0.0.1:9/"}]
                  rules:
                    - name: errors
                      probe: gren
                      when: status >= 500
                      consecutive: 2
                      action: abort
                      notify: [ops]
    """)
    got = {p.message: at(p) for p in found}
    messages = " | ".join(got)
    assert "duration (10s) must be longer than its interval (10s)" in messages
    assert "reads probe 'gren', which is not defined" in messages
    assert "a watch rule only fails the step (action: abort" in messages
    assert "a watch rule tells no channel" in messages
    lines = sorted(line for line, _c in got.values() if line is not None)
    assert lines == [8, 13, 16, 17], got


def test_a_watch_probe_must_be_a_named_check_and_templates_are_checked() -> None:
    found = problems_of("""
        name: x
        phases:
          - name: canary
            steps:
              - watch:
                  duration: 1m
                  interval: 10s
                  probes:
                    - http: "http://127.0.0.1:9/{{ steps.later.stdout }}"
                    - name: writes
                      http: {url: "http://127.0.0.1:9/", method: POST}
                  rules: [{name: errors, probe: writes, when: status >= 500, consecutive: 1}]
              - id: later
                run: "echo"
    """)
    messages = " | ".join(p.message for p in found)
    assert "a probe needs a name" in messages
    assert "steps.later" in messages
    assert "a probe must be a check" in messages


def test_a_watch_step_timeout_shorter_than_its_duration_is_refused() -> None:
    text = WATCH.replace("DURATION", "5m").replace("PROBE", "green").replace(
        "- name: analysis\n", "- name: analysis\n            timeout: 1m\n")
    found = problems_of(text)
    assert any("would end the watch before its duration" in p.message for p in found), found
