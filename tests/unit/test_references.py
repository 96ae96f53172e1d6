"""`step_outputs_read`: which steps' outputs a step reads, from every template it has."""

from __future__ import annotations

from tminus.runbook.models import Step
from tminus.runbook.references import step_outputs_read


def _step(data: dict[str, object]) -> Step:
    return Step.model_validate(data)


def test_expectations_config_and_when_are_read_in_order() -> None:
    step = _step({
        "name": "no note was lost",
        "when": "steps.gate.exit_code == 0",
        "run": "test {{ steps['count'].stdout }} -gt 0",
        "expect": ['stdout trim == "{{ steps.notes_before.stdout | trim }}"', "exit_code == 0"],
    })
    assert step_outputs_read(step) == ["gate", "notes_before", "count"]


def test_a_waits_check_is_read_too() -> None:
    step = _step({"name": "ready", "wait": {"check": {"http": "http://h:{{ steps.deploy.port }}/ready"}}})
    assert step_outputs_read(step) == ["deploy"]


def test_no_steps_read() -> None:
    assert step_outputs_read(_step({"name": "plain", "run": "echo {{ vars.x }} {{ env.HOME }}"})) == []
    # text that does not parse reads nothing here (the validator reports it at load time)
    assert step_outputs_read(_step({"name": "broken", "run": "echo {{ steps.x"})) == []
