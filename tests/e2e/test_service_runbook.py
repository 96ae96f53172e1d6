"""`service` steps through the real `tminus` command: real gunicorn, real signals, kill -9 of tminus.

A phase starts a release and a later step fails: the rollback stops exactly the started process
(by its recorded pid and start time), not another gunicorn with the same command line. tminus is
SIGKILLed during the health wait (right after `service_started` is in the ledger): the release
outlives it, and `tminus rollback` / `tminus resume --retry` act on the recorded pid."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import run_json, spawn, tminus, write_runbook
from tests.servers.gunicorn import Gunicorn, command, free_port, get

from tminus.kinds.transport import group_alive, process_start_time

RUNBOOK = """
name: service-e2e
vars: {{port: 0}}
phases:
  - name: green
    steps:
      - name: start green
        id: green
        service:
          action: start
          name: green
          command: {command}
          env: {{RELEASE: v2}}
          log: logs/green.log
          pid_file: run/green.pid
          stop_timeout: 5s
          health: {health}
          health_interval: 100ms
          health_timeout: 60s
      - name: a later step fails
        run: "{later}"
"""


def _runbook(tmp_path: Path, port: int, *, health: str | None = None, later: str = "exit 1") -> None:
    health = health or json.dumps({"http": f"http://127.0.0.1:{port}/healthz"})
    write_runbook(tmp_path, RUNBOOK.format(command=json.dumps(command(port)), health=health, later=later))


@pytest.fixture
def groups(tmp_path: Path) -> Iterator[list[int]]:
    """Process groups a test started, and those its pid files name: killed at the end whatever happened."""
    started: list[int] = []
    yield started
    started += [int(p.read_text()) for p in (tmp_path / "run").glob("*.pid") if p.read_text().strip().isdigit()]
    for pgid in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _effects(tmp_path: Path, run_id: str, kind: str) -> list[dict[str, Any]]:
    code, shown = run_json("show", run_id, cwd=tmp_path)
    assert code == 0
    return [e["data"] for e in shown["events"] if e["type"] == "step.effect" and e["data"].get("effect") == kind]


def _last_run(tmp_path: Path) -> str:
    code, runs = run_json("history", cwd=tmp_path)
    assert code == 0, runs
    return str(runs[0]["id"])


def test_a_later_failure_rolls_back_exactly_the_started_service(tmp_path: Path, groups: list[int]) -> None:
    port = free_port()
    decoy = Gunicorn(tmp_path, "decoy").start()  # same command line, another port: must survive
    groups.append(decoy.proc.pid if decoy.proc else 0)
    _runbook(tmp_path, port)
    proc = tminus("run", "runbook.yaml", "--no-input", cwd=tmp_path, timeout=120)
    assert proc.returncode == 11, proc.stdout + proc.stderr
    run_id = _last_run(tmp_path)
    (started,) = _effects(tmp_path, run_id, "service_started")
    groups.append(started["pid"])
    assert not group_alive(started["pid"])  # stopped by the derived undo
    assert get(f"http://127.0.0.1:{port}/healthz")[0] == 0
    assert get(f"{decoy.url}/")[1] == "decoy"  # never a name match
    _code, shown = run_json("show", run_id, cwd=tmp_path)
    undone = [e for e in shown["events"] if e["type"] == "step.finished" and str(e.get("step_key", "")).endswith(
        "undo[auto]")]
    assert undone and undone[-1]["data"]["status"] == "ok", undone
    decoy.stop()


def test_kill_during_the_health_wait_then_rollback_stops_the_recorded_pid(tmp_path: Path, groups: list[int]) -> None:
    port = free_port()
    _runbook(tmp_path, port, health=json.dumps({"file": {"path": "ready", "exists": True}}))
    proc = spawn("run", "runbook.yaml", "--no-input", cwd=tmp_path,
                 env={"TMINUS_TEST_CRASH_AT": "step.effect:1"})  # right after service_started is recorded
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    run_id = _last_run(tmp_path)
    (started,) = _effects(tmp_path, run_id, "service_started")
    pid = started["pid"]
    groups.append(pid)
    assert process_start_time(pid) == started["started"] and group_alive(pid)  # it outlived tminus
    code, result = run_json("rollback", run_id, "--reason", "crashed in the health wait", "--no-input",
                            cwd=tmp_path)
    assert code == 11, result
    assert not group_alive(pid)
    code, shown = run_json("show", run_id, cwd=tmp_path)
    notes = [e["data"].get("message", "") for e in shown["events"] if e["type"] == "note"]
    assert any("never proven healthy" in n and f"pid {pid}" in n for n in notes), notes


def test_kill_during_the_health_wait_then_resume_retry_runs_one_copy(tmp_path: Path, groups: list[int]) -> None:
    port = free_port()
    _runbook(tmp_path, port, health=json.dumps({"file": {"path": "ready", "exists": True}}), later="true")
    proc = spawn("run", "runbook.yaml", "--no-input", cwd=tmp_path, env={"TMINUS_TEST_CRASH_AT": "step.effect:1"})
    proc.wait(timeout=120)
    run_id = _last_run(tmp_path)
    (first,) = _effects(tmp_path, run_id, "service_started")
    groups.append(first["pid"])
    (tmp_path / "ready").touch()
    refused = tminus("resume", run_id, "--no-input", cwd=tmp_path)
    assert refused.returncode != 0 and "--retry" in refused.stdout + refused.stderr
    done = tminus("resume", run_id, "--retry", "--no-input", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    second = _effects(tmp_path, run_id, "service_started")[-1]
    groups.append(second["pid"])
    assert second["pid"] != first["pid"] and not group_alive(first["pid"])  # the unproven one was ended
    assert group_alive(second["pid"]) and get(f"http://127.0.0.1:{port}/")[1] == "v2"


RESTART = """
name: service-restart
phases:
  - name: cutover
    steps:
      - name: {what}
        service:
          action: {action}
          name: app
          command: {command}
          env: {{RELEASE: {release}}}
          pid_file: run/app.pid
          stop_timeout: 5s
          health: {health}
          health_interval: 100ms
          previous: {{env: {{RELEASE: v1}}}}
      - name: a later step fails
        run: "{later}"
"""


def test_a_failed_cutover_restarts_the_previous_release(tmp_path: Path, groups: list[int]) -> None:
    """The undo of a restart carries its health check (a nested step) through the recorded rollback
    plan: v1 is started, restarted as v2, a later step fails, and v1 serves again."""
    port = free_port()
    health = json.dumps({"http": f"http://127.0.0.1:{port}/healthz"})
    start = RESTART.format(what="v1", action="start", command=json.dumps(command(port)), release="v1",
                           health=health, later="true").replace("          previous: {env: {RELEASE: v1}}\n", "")
    write_runbook(tmp_path, start, "start.yaml")
    assert tminus("run", "start.yaml", "--no-input", cwd=tmp_path, timeout=120).returncode == 0
    v1 = int((tmp_path / "run/app.pid").read_text())
    groups.append(v1)
    write_runbook(tmp_path, RESTART.format(what="v2", action="restart", command=json.dumps(command(port)),
                                           release="v2", health=health, later="exit 1"), "cutover.yaml")
    proc = tminus("run", "cutover.yaml", "--no-input", cwd=tmp_path, timeout=120)
    assert proc.returncode == 11, proc.stdout + proc.stderr
    run_id = _last_run(tmp_path)
    (v2,) = _effects(tmp_path, run_id, "service_started")[:1]
    groups.append(v2["pid"])
    now = int((tmp_path / "run/app.pid").read_text())
    groups.append(now)
    assert not group_alive(v1) and not group_alive(v2["pid"]) and group_alive(now)
    assert get(f"http://127.0.0.1:{port}/")[1] == "v1"
    _code, shown = run_json("show", run_id, cwd=tmp_path)
    plan = next(e for e in shown["events"] if e["type"] == "rollback.started")["data"]["steps"]
    assert plan[0]["derived"] and plan[0]["step"]["service"]["health"]["http"]["url"].endswith("/healthz")
