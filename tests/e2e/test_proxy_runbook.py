"""The `proxy` kind in whole runs of the real `tminus` command, against a real nginx: a later failing
step rolls the switch back through its derived undo (exit 11); tminus killed with SIGKILL during a
switch, then resumed: nginx ends in one consistent state and the ledger says which."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers import run_json, spawn, tminus, wait_for
from tests.servers.backend import Backend, backends
from tests.servers.nginx import NGINX, Nginx, nginx

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason=f"{NGINX} is not installed")


@pytest.fixture
def blue_green(tmp_path: Path) -> Iterator[tuple[Nginx, dict[str, Backend]]]:
    with backends("blue", "green") as b, nginx(tmp_path / "nginx", {n: [x.address] for n, x in b.items()},
                                                "blue") as ng:
        yield ng, b


def _runbook(tmp_path: Path, ng: Nginx, *, then: list[dict[str, Any]] | None = None) -> None:
    """The runbook as JSON (which is YAML): a switch to green, proven, then the steps `then`."""
    spec = ng.spec(action="switch", to="green", prove={"url": ng.url, "requests": 10,
                                                       "expect": ['header "X-Release" == "green"']})
    steps = [{"id": "switch", "name": "send all traffic to green", "proxy": spec}, *(then or [])]
    runbook = {"name": "blue-green", "phases": [{"name": "cutover", "steps": steps}]}
    (tmp_path / "runbook.yaml").write_text(json.dumps(runbook, indent=2))


def _release(ng: Nginx) -> str:
    return str(httpx.get(ng.url, timeout=5).headers["x-release"])


def _state(ng: Nginx) -> dict[str, Any]:
    line = next(x for x in ng.config.read_text().splitlines() if x.startswith("# tminus-state: "))
    return dict(json.loads(line.split(": ", 1)[1]))


def _events(tmp_path: Path, run_id: str) -> list[dict[str, Any]]:
    code, shown = run_json("show", run_id, cwd=tmp_path)
    assert code == 0
    return list(shown["events"])


def _run_id(tmp_path: Path) -> str:
    _code, history = run_json("history", cwd=tmp_path)
    return str(history[0]["id"])


def test_a_later_failure_restores_the_previous_routing(blue_green: Any, tmp_path: Path) -> None:
    ng, _b = blue_green
    _runbook(tmp_path, ng, then=[{"name": "a later step fails", "run": "exit 3"}])
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 11, result
    assert _release(ng) == "blue" and _state(ng)["weights"] == {"blue": 100, "green": 0}
    events = _events(tmp_path, result["run_id"])
    undo = [e for e in events if e["type"] == "step.finished" and e["step_key"].endswith(".undo[auto]")]
    assert len(undo) == 1 and undo[0]["data"]["status"] == "ok", undo
    assert undo[0]["data"]["evidence"]["after"]["weights"] == {"blue": 100, "green": 0}
    assert undo[0]["data"]["evidence"]["proof"]["statuses"] == {"200": 10}


@pytest.mark.parametrize("at", ["step.effect:1", "step.effect:2"])
def test_killed_during_a_switch_resume_rollback_restores_blue(blue_green: Any, tmp_path: Path, at: str) -> None:
    """step.effect:1: killed once the state before is recorded, before nginx changed; :2: once nginx
    serves green, before the proof. Either way the rollback restores the recorded state."""
    ng, _b = blue_green
    _runbook(tmp_path, ng)
    proc = spawn("run", "runbook.yaml", "--no-input", cwd=tmp_path, env={"TMINUS_TEST_CRASH_AT": at})
    assert proc.wait(timeout=60) == -signal.SIGKILL
    run_id = _run_id(tmp_path)
    effects = [e for e in _events(tmp_path, run_id) if e["type"] == "step.effect"]
    # the ledger says what the proxy was left serving
    assert effects[0]["data"]["before"]["weights"] == {"blue": 100, "green": 0}
    if at.endswith(":2"):
        assert effects[1]["data"]["state"]["weights"] == {"blue": 0, "green": 100}
        assert _release(ng) == "green"
    else:
        assert len(effects) == 1 and _release(ng) == "blue"
    refused = tminus("resume", run_id, "--no-input", cwd=tmp_path)
    assert refused.returncode == 15 and "--rollback" in refused.stderr  # it may have half-acted: the operator says
    code, back = run_json("resume", run_id, "--no-input", "--rollback", "--reason", "abandon", cwd=tmp_path)
    assert code == 11, back
    assert _release(ng) == "blue" and _state(ng)["weights"] == {"blue": 100, "green": 0}
    restored = [e for e in _events(tmp_path, run_id)
                if e["type"] == "step.finished" and e["step_key"].endswith(".undo[auto]")]
    assert restored[-1]["data"]["status"] == "ok"
    assert restored[-1]["data"]["evidence"]["after"]["weights"] == {"blue": 100, "green": 0}
    assert tminus("ledger", "verify", cwd=tmp_path).returncode == 0


def test_killed_during_a_switch_resume_retry_ends_on_green(blue_green: Any, tmp_path: Path) -> None:
    ng, _b = blue_green
    _runbook(tmp_path, ng)
    proc = spawn("run", "runbook.yaml", "--no-input", cwd=tmp_path, env={"TMINUS_TEST_CRASH_AT": "step.effect:2"})
    assert proc.wait(timeout=60) == -signal.SIGKILL
    run_id = _run_id(tmp_path)
    code, done = run_json("resume", run_id, "--no-input", "--retry", cwd=tmp_path)
    assert code == 0, done
    assert _release(ng) == "green" and _state(ng)["weights"] == {"blue": 0, "green": 100}
    finished = [e for e in _events(tmp_path, run_id) if e["type"] == "step.finished"]
    assert finished[-1]["data"]["status"] == "ok"
    assert finished[-1]["data"]["evidence"]["proof"]["passed"] == 10
    # the first execution's record of the state before stays the one an undo would restore
    effects = [e for e in _events(tmp_path, run_id) if e["type"] == "step.effect"]
    assert effects[0]["data"]["before"]["weights"] == {"blue": 100, "green": 0}


def test_killed_between_writing_the_include_and_the_reload_resume_rollback_makes_it_consistent(
        blue_green: Any, tmp_path: Path) -> None:
    """The worst moment: the include says green, nginx still serves blue (tminus killed while `nginx -t`
    ran). The ledger holds the state before and the target, and no `proxy_applied`: resume --rollback
    writes and loads blue again, so the file and what nginx serves agree."""
    ng, _b = blue_green
    wrapper = tmp_path / "nginx-wrapper"
    wrapper.write_text(f"#!/bin/sh\ntouch {tmp_path}/in-check\nwhile [ -e {tmp_path}/hold ]; do sleep 0.05; done\n"
                       f'exec {NGINX} "$@"\n')
    wrapper.chmod(0o755)
    (tmp_path / "hold").touch()
    spec = ng.spec(action="switch", to="green", nginx=str(wrapper), prove={"url": ng.url, "requests": 5})
    runbook = {"name": "blue-green", "phases": [{"name": "cutover", "steps": [{"proxy": spec}]}]}
    (tmp_path / "runbook.yaml").write_text(json.dumps(runbook))
    proc = spawn("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "in-check").exists(), timeout=60)
    os.kill(proc.pid, signal.SIGKILL)  # tminus only; its `nginx -t` goes on and ends once released
    proc.wait(timeout=10)
    (tmp_path / "hold").unlink()
    assert _state(ng)["weights"] == {"blue": 0, "green": 100} and _release(ng) == "blue"  # they disagree
    run_id = _run_id(tmp_path)
    effects = [e["data"] for e in _events(tmp_path, run_id) if e["type"] == "step.effect"]
    assert [e["effect"] for e in effects] == ["proxy_state"]  # asked for green, never confirmed
    assert effects[0]["wanted"]["weights"] == {"blue": 0, "green": 100}
    code, back = run_json("resume", run_id, "--no-input", "--rollback", "--reason", "killed mid-switch",
                          cwd=tmp_path)
    assert code == 11, back
    assert _state(ng)["weights"] == {"blue": 100, "green": 0} and _release(ng) == "blue"  # they agree again


def test_a_broken_green_stops_at_preview_and_users_never_see_it(blue_green: Any, tmp_path: Path) -> None:
    """The preview's proof fails (green answers 500): the run rolls back (the preview route is
    removed), and the load on the live site saw blue only, never an error."""
    from tests.servers.load import Load

    ng, b = blue_green
    b["green"].status = 500
    preview = ng.spec(action="preview", to="green", prove={"url": ng.preview_url, "requests": 10,
                                                           "expect": ["status == 200"]})
    switch = ng.spec(action="switch", to="green")
    runbook = {"name": "blue-green", "phases": [{"name": "cutover", "steps": [
        {"name": "preview green", "proxy": preview}, {"name": "switch", "proxy": switch}]}]}
    (tmp_path / "runbook.yaml").write_text(json.dumps(runbook))
    load = Load("127.0.0.1", ng.port, threads=4).start()
    load.wait(200)
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    load.wait(len(load.answers) + 200)
    load.stop()
    assert code == 11, result
    assert "10 of 10 requests" in result["reason"] and "status == 200" in result["reason"], result["reason"]
    assert load.not_ok() == [] and {a.release for a in load.answers} == {"blue"}
    assert _state(ng)["preview"] is None and _state(ng)["weights"] == {"blue": 100, "green": 0}
    undo = [e for e in _events(tmp_path, result["run_id"])
            if e["type"] == "step.finished" and e["step_key"].endswith(".undo[auto]")]
    assert [u["data"]["status"] for u in undo] == ["ok"]
