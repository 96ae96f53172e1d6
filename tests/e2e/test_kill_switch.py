"""`tminus kill-switch`: a release goes live, then the kill switch restores the old path (a real flag
file that routes, proved by a real HTTP backend), timed against its target, recorded, under the lease."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from tests.helpers import spawn, tminus, wait_for, write_runbook
from tests.servers.backend import Backend, backends

RUNBOOK = """
    name: shop
    vars: {release: v1, hold: "0"}
    release: "{{ vars.release }}"
    phases:
      - name: switch
        steps:
          - run: "echo green > route.txt"
          - run: "echo $$ > holding.pid; sleep {{ vars.hold }}"
    kill_switch:
      target: TARGET
      steps:
        - run: "echo blue > route.txt"
        - http: "http://BLUE/"
          expect: [status == 200, 'header "X-Release" == "blue"']
        - run: "sleep ${KS_SLEEP:-0}"
"""


@pytest.fixture
def blue() -> Iterator[Backend]:
    with backends("blue") as b:
        yield b["blue"]


def book(tmp: Path, blue: Backend, target: str = "60s") -> None:
    write_runbook(tmp, RUNBOOK.replace("TARGET", target).replace("BLUE", blue.address))


def ks(tmp: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    done = tminus("kill-switch", "runbook.yaml", "--json", *args, cwd=tmp, env=env)
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        return done.returncode, {"stderr": done.stderr}


def test_a_live_release_then_the_kill_switch_restores_the_old_path(tmp_path: Path, blue: Backend) -> None:
    book(tmp_path, blue)
    live = tminus("run", "runbook.yaml", "--var", "release=v2", "--json", cwd=tmp_path)
    assert live.returncode == 0, live.stderr
    live_run = json.loads(live.stdout)["run_id"]
    assert (tmp_path / "route.txt").read_text().strip() == "green"
    newer = tminus("run", "runbook.yaml", "--var", "release=v3", "--json", cwd=tmp_path)
    assert newer.returncode == 0, newer.stderr
    undone = tminus("rollback", json.loads(newer.stdout)["run_id"], "--reason", "bad", cwd=tmp_path)
    assert undone.returncode == 11, undone.stderr  # v3 went live and was rolled back: v2 is live again

    code, out = ks(tmp_path, "--reason", "checkout errors", "--operator", "carol")
    assert code == 0, out
    assert (tmp_path / "route.txt").read_text().strip() == "blue"
    assert blue.served == 1  # the http step proved the old path answers
    assert out["status"] == "completed" and out["within_target"] is True
    assert 0 < out["elapsed"] < out["target"] == 60
    assert out["live_run"] == live_run and out["live_release"] == "v2" and out["took_over"] is None

    history = json.loads(tminus("history", "--json", cwd=tmp_path).stdout)
    newest = history[0]
    assert (newest["kind"], newest["status"], newest["operator"]) == ("kill_switch", "completed", "carol")
    shown = tminus("show", out["run_id"], cwd=tmp_path)
    assert shown.returncode == 0 and "kill-switch" in shown.stdout, shown.stdout
    releases = json.loads(tminus("releases", "--json", cwd=tmp_path).stdout)
    switch = releases[0]["live"]["kill_switches"]
    assert [(k["run"], k["status"], k["target"]) for k in switch] == [(out["run_id"], "completed", 60.0)]
    assert switch[0]["elapsed"] == pytest.approx(out["elapsed"])
    assert tminus("ledger", "verify", cwd=tmp_path).returncode == 0
    # a kill switch is run again, never resumed or reversed
    again = tminus("rollback", out["run_id"], "--reason", "x", cwd=tmp_path)
    assert again.returncode == 15 and "is a kill switch" in again.stderr


def test_a_kill_switch_that_misses_its_target_exits_17(tmp_path: Path, blue: Backend) -> None:
    book(tmp_path, blue, target="1s")
    code, out = ks(tmp_path, env={"KS_SLEEP": "1.5"})
    assert code == 17, out
    assert out["status"] == "completed_late" and out["within_target"] is False and out["elapsed"] > 1.5
    assert "MISSED its target of 1s" in out["reason"]
    assert (tmp_path / "route.txt").read_text().strip() == "blue"  # it did restore the path, late


def test_a_failing_step_stops_the_kill_switch_and_undoes_nothing(tmp_path: Path, blue: Backend) -> None:
    book(tmp_path, blue)
    blue.status = 500  # the old path is broken too: the proof fails
    code, out = ks(tmp_path)
    assert code == 13, out
    assert out["status"] == "aborted" and "kill switch step" in out["reason"] and "undoes nothing" in out["reason"]
    assert (tmp_path / "route.txt").read_text().strip() == "blue"  # the step before it stays done


def test_no_kill_switch_section_is_a_usage_error(tmp_path: Path) -> None:
    write_runbook(tmp_path, "name: x\nphases: [{name: p, steps: [{run: 'true'}]}]\n")
    done = tminus("kill-switch", "runbook.yaml", cwd=tmp_path)
    assert done.returncode == 2 and "no kill_switch section" in done.stderr


def _holding(tmp: Path) -> int:
    wait_for(lambda: (tmp / "holding.pid").exists() and (tmp / "holding.pid").read_text().strip() != "", 60)
    return int((tmp / "holding.pid").read_text())


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_a_live_run_holding_the_lease_refuses_it_unless_forced(tmp_path: Path, blue: Backend) -> None:
    book(tmp_path, blue)
    running = spawn("run", "runbook.yaml", "--var", "release=v3", "--var", "hold=120", "--json", cwd=tmp_path)
    try:
        step = _holding(tmp_path)
        code, out = ks(tmp_path)
        assert code == 14, out
        assert "--force" in out["stderr"]
        assert (tmp_path / "route.txt").read_text().strip() == "green"  # refused: nothing ran

        code, out = ks(tmp_path, "--force", "--reason", "cutover hung")
        assert code == 0, out
        assert out["took_over"]["why"].startswith("forced by tester: cutover hung")
        assert (tmp_path / "route.txt").read_text().strip() == "blue"
        # the fenced run stops (its writes are refused), resumable, and its step is killed
        stdout, stderr = running.communicate(timeout=60)
        assert running.returncode == 130, stderr
        assert json.loads(stdout)["status"] == "interrupted"
        wait_for(lambda: not _alive(step), 30)
        notes = tminus("show", json.loads(stdout)["run_id"], cwd=tmp_path).stdout
        assert "kill switch: forced by tester: cutover hung" in notes
    finally:
        _kill(running.pid)
        running.communicate(timeout=30)


def test_a_stale_lease_is_taken_over_without_force(tmp_path: Path, blue: Backend) -> None:
    book(tmp_path, blue)
    running = spawn("run", "runbook.yaml", "--var", "hold=120", cwd=tmp_path)
    step = 0
    try:
        step = _holding(tmp_path)
        running.send_signal(signal.SIGKILL)  # tminus dies mid-step: its lease is left behind, stale
        running.communicate(timeout=30)
        code, out = ks(tmp_path)
        assert code == 0, out
        assert "is no longer running" in out["took_over"]["why"]
        assert (tmp_path / "route.txt").read_text().strip() == "blue"
    finally:
        _kill(running.pid)
        if step:
            _kill(step)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
