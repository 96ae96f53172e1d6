"""The `service` kind without running anything: what validation refuses (at its line), the command
lines the docker backend builds, the derived undo read from recorded effects, the plan line."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import tminus, write_runbook

from tminus.errors import RunbookError
from tminus.kinds import registry
from tminus.kinds.base import Effect, Execution
from tminus.kinds.service_backends.docker import inspect_argv, run_argv, stop_argv
from tminus.runbook.loader import load_runbook
from tminus.runbook.models import Step
from tminus.runbook.service_spec import ServiceSpec

BAD = """
    name: s
    phases:
      - name: p
        steps:
          - service: {action: start, name: a, health: {tcp: {port: 80}}}
          - service: {action: start, name: b, command: "sleep 9"}
          - service: {action: start, backend: docker, name: c, health: {tcp: {port: 80}}}
          - service: {action: stop, backend: systemd, name: d}
          - service: {action: start, name: e, command: x, previous: {image: y}, health: {tcp: {port: 80}}}
          - service: {action: start, name: f, command: x, health: {run: "curl -X POST x"}}
          - service: {action: start, name: g, command: x, image: y, health: {tcp: {port: 80}}}
"""


def test_validation_refuses_with_the_position_and_a_hint(tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, BAD)
    with pytest.raises(RunbookError) as err:
        load_runbook(rb)
    problems = {(p.location.line, p.path): p for p in err.value.problems}
    assert set(problems) == {
        # a missing key is refused where the service is written; a wrong one at the key
        (5, "phases[0].steps[0].service"), (6, "phases[0].steps[1].service"),
        (7, "phases[0].steps[2].service"), (8, "phases[0].steps[3].service"),
        (9, "phases[0].steps[4].service.previous"), (10, "phases[0].steps[5].service.health"),
        (11, "phases[0].steps[6].service.image"),
    }, problems
    assert "needs 'command'" in problems[(5, "phases[0].steps[0].service")].message
    assert "needs a health check" in problems[(6, "phases[0].steps[1].service")].message
    assert problems[(6, "phases[0].steps[1].service")].hint
    assert "needs 'image'" in problems[(7, "phases[0].steps[2].service")].message
    assert "needs 'unit'" in problems[(8, "phases[0].steps[3].service")].message
    assert "must be a check, not a 'run' step" in problems[(10, "phases[0].steps[5].service.health")].message
    assert "no meaning for the process backend" in problems[(11, "phases[0].steps[6].service.image")].message
    proc = tminus("validate", str(rb), cwd=tmp_path)
    assert proc.returncode == 78 and f"{rb}:5:" in proc.stdout + proc.stderr


def test_health_checks_get_keys_and_their_templates_are_checked(tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, """
        name: s
        phases:
          - name: p
            steps:
              - service:
                  action: start
                  name: a
                  command: x
                  health: {http: "http://127.0.0.1:{{ steps.nope.port }}/"}
    """)
    with pytest.raises(RunbookError) as err:
        load_runbook(rb)
    assert any(p.path.startswith("phases[0].steps[0].service.health") and "nope" in p.message
               for p in err.value.problems), err.value.problems


def test_docker_command_lines() -> None:
    spec = ServiceSpec(action="start", backend="docker", name="green", image="myapp:v2", env={"RELEASE": "v2"},
                       options=["-p", "127.0.0.1:8002:8000"], stop_timeout=15, command="gunicorn app:app")
    assert run_argv(spec) == ["docker", "run", "-d", "--name", "green", "--stop-timeout", "15",
                              "--env", "RELEASE=v2", "-p", "127.0.0.1:8002:8000", "myapp:v2",
                              "sh", "-c", "gunicorn app:app"]
    assert stop_argv("green", 15) == [["docker", "stop", "--time", "15", "green"], ["docker", "rm", "green"]]
    assert inspect_argv("green")[:3] == ["docker", "inspect", "--format"]
    named = spec.model_copy(update={"container": "myapp-green", "command": None})
    assert run_argv(named)[4] == "myapp-green" and run_argv(named)[-1] == "myapp:v2"


def _step(**spec: object) -> Step:
    step = Step.model_validate({"name": "svc", "service": {"name": "green", **spec}})
    step._key, step._path = "phases[0].steps[0]", ("phases", 0, "steps", 0)
    return step


def _derive(step: Step, effects: list[dict[str, object]], status: str | None = "ok",
            evidence: dict[str, object] | None = None) -> list[Step] | None:
    undo = registry.get("service").derive_undo
    assert undo is not None
    return undo(step, Execution(step.key, effects=effects, status=status, evidence=evidence or {}))


START = {"action": "start", "command": "x", "health": {"tcp": {"port": 80}}}


def test_the_undo_of_a_start_stops_the_recorded_identity_only() -> None:
    step = _step(**START)
    started = {"effect": "service_started", "pid": 42, "started": "boot:7", "execution": 1, "attempt": 1}
    (undo,) = _derive(step, [started]) or []
    assert undo.key == "phases[0].steps[0].undo[auto]" and undo.service is not None
    assert undo.service.action == "stop" and undo.service.target == {"pid": 42, "started": "boot:7"}
    assert undo.service.health is None
    assert _derive(step, []) is None  # it never started anything
    assert _derive(step, [started], "failed", {"stopped_after_failure": "pid 42 terminated"}) is None
    (interrupted,) = _derive(step, [started], None) or []  # killed mid-health-wait: stop it
    assert interrupted.service is not None and interrupted.service.target is not None


def test_the_undo_of_a_stop_and_of_a_restart() -> None:
    stop = _step(**{**START, "action": "stop"})
    found = {"effect": "service_found", "running": {"pid": 9, "started": "b:1"}}
    (again,) = _derive(stop, [found]) or []
    assert again.service is not None and again.service.action == "start" and again.service.health is not None
    assert again.service.health.key.startswith("phases[0].steps[0].undo[auto]")
    assert _derive(stop, [{"effect": "service_found", "running": None}]) is None
    bare = _step(action="stop")
    assert bare.effect == Effect.IRREVERSIBLE and _derive(bare, [found]) is None
    restart = _step(**{**START, "action": "restart", "env": {"RELEASE": "v2"}, "previous": {"env": {"RELEASE": "v1"}}})
    assert restart.effect == Effect.REVERSIBLE
    (back,) = _derive(restart, [found]) or []
    assert back.service is not None and back.service.action == "restart" and back.service.env == {"RELEASE": "v1"}
    assert back.service.previous is None
    plain = _step(**{**START, "action": "restart"})
    assert plain.effect == Effect.IRREVERSIBLE and _derive(plain, [found]) is None


def test_recover_leaves_a_healthy_start_running() -> None:
    recover = registry.get("service").recover
    assert recover is not None
    healthy = Execution("k", effects=[{"effect": "service_started", "pid": 1, "started": "x"},
                                      {"effect": "service_healthy"}])
    assert recover(healthy, None) is None  # type: ignore[arg-type]
    assert recover(Execution("k"), None) is None  # type: ignore[arg-type]
    asked = Execution("k", effects=[{"effect": "service_starting", "backend": "systemd", "name": "g",
                                     "unit": "g.service"}])
    note = recover(asked, None)  # type: ignore[arg-type]
    assert note is not None and "unit g.service" in note and "never recorded" in note
    assert registry.get("service").survivor is None  # meant to outlive tminus: resume never waits for it


def test_a_restart_without_previous_is_valid_but_warned(tmp_path: Path) -> None:
    rb = write_runbook(tmp_path, """
        name: s
        phases:
          - name: p
            steps:
              - service: {action: restart, name: a, command: x, health: {tcp: {port: 80}}}
    """)
    load_runbook(rb)  # valid
    proc = tminus("validate", str(rb), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"warning: {rb}:5:" in proc.stderr and "without 'previous' has no derived undo" in proc.stderr
