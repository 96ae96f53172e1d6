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
