"""`tminus approve` answers one named request, exactly once, and every answer stays in the ledger:
real `tminus run`/`resume` processes, frozen with SIGSTOP where a test needs answers to arrive before
the run can take one (so the races are forced, not hoped for)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.helpers import TMINUS, run_json, spawn, tminus, wait_for, wait_for_approval_request, write_runbook

MANUAL_THEN_DECISION = """
    name: cutover
    phases:
      - name: p
        steps:
          - name: announce
            manual: "Announce the maintenance window"
          - run: "echo do >> log"
        undo: [{run: "echo undo >> log"}]
    decision: {mode: manual, timeout: 30s}
"""
MANUAL = "phases[0].steps[0]"


def answers(cwd: Path, run_id: str) -> list[dict[str, Any]]:
    code, shown = run_json("show", run_id, cwd=cwd)
    assert code == 0, shown
    return list(shown["answers"])


def requests(cwd: Path, run_id: str, key: str) -> list[int]:
    _code, shown = run_json("show", run_id, cwd=cwd)
    return [e["seq"] for e in shown["events"] if e["type"] == "approval.requested" and e["step_key"] == key]


def test_a_late_no_go_answers_nothing_and_does_not_roll_the_run_back(tmp_path: Path) -> None:
    """Bob approves the manual step; Carol's no-go (no --step) comes before the run took Bob's answer.
    She is told it answered nothing; the decision is answered by a request-naming approve of its own."""
    write_runbook(tmp_path, MANUAL_THEN_DECISION)
    run = spawn("run", "runbook.yaml", cwd=tmp_path)
    run_id = wait_for_approval_request(tmp_path, MANUAL)
    os.kill(run.pid, signal.SIGSTOP)  # the run cannot take an answer until it goes on
    try:
        bob = tminus("approve", run_id, "--operator", "bob", cwd=tmp_path)
        carol = tminus("approve", run_id, "--no-go", "--reason", "wait", "--operator", "carol", cwd=tmp_path)
    finally:
        os.kill(run.pid, signal.SIGCONT)
    (asked,) = requests(tmp_path, run_id, MANUAL)
    assert bob.returncode == 0, bob.stderr
    assert f"{MANUAL} (request #{asked}: Announce the maintenance window)" in bob.stdout
    assert carol.returncode == 1 and "answered nothing" in carol.stderr and f"request #{asked}" in carol.stderr
    wait_for_approval_request(tmp_path, "decision")
    dave = tminus("approve", run_id, "--operator", "dave", cwd=tmp_path)
    (decision,) = requests(tmp_path, run_id, "decision")
    assert dave.returncode == 0 and f"decision (request #{decision}:" in dave.stdout, dave.stdout + dave.stderr
    assert run.wait(timeout=60) == 0
    assert (tmp_path / "log").read_text().split() == ["do"]  # not rolled back
    kept = answers(tmp_path, run_id)
    assert [(a["by"], a["approved"], a["given_for"], a["lead"], a["taken_by"]) for a in kept] == [
        ("bob", True, asked, True, asked), ("carol", False, asked, False, None),
        ("dave", True, decision, True, decision)]
    shown = tminus("show", run_id, cwd=tmp_path)
    assert f"not taken: no-go for {MANUAL} by carol" in shown.stdout, shown.stdout
    why = tminus("why", run_id, cwd=tmp_path)
    assert "dave answered go via approve-command" in why.stdout, why.stdout
    assert f"with approval {kept[2]['id']} for request #{decision}" in why.stdout, why.stdout


def test_two_concurrent_approves_one_is_told_it_answered_nothing(tmp_path: Path) -> None:
    write_runbook(tmp_path, MANUAL_THEN_DECISION)
    run = spawn("run", "runbook.yaml", cwd=tmp_path)
    run_id = wait_for_approval_request(tmp_path, MANUAL)
    os.kill(run.pid, signal.SIGSTOP)
    try:
        procs = [subprocess.Popen([*TMINUS, "approve", run_id, "--operator", who, *extra], cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for who, extra in (("bob", []), ("carol", ["--no-go"]))]
        outs = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    finally:
        os.kill(run.pid, signal.SIGCONT)
    assert sorted(code for code, _out, _err in outs) == [0, 1], outs
    (lost,) = [err for code, _out, err in outs if code == 1]
    assert "answered nothing" in lost
    kept = answers(tmp_path, run_id)
    assert sorted(a["by"] for a in kept) == ["bob", "carol"]  # both recorded
    (winner,) = [a for a in kept if a["lead"]]
    wait_for(lambda: run.poll() is not None or bool(requests(tmp_path, run_id, "decision")), timeout=30)
    kept = answers(tmp_path, run_id)
    assert [a["taken_by"] is not None for a in kept] == [a["id"] == winner["id"] for a in kept]
    run.kill()
    run.wait(timeout=30)


def test_a_leftover_answer_to_one_request_does_not_answer_the_next(tmp_path: Path) -> None:
    """An answer given to a run that died while asking stays for that request: the resumed run asks
    again and waits for an answer of its own, which names the new request."""
    write_runbook(tmp_path, MANUAL_THEN_DECISION.replace("mode: manual, timeout: 30s", "mode: auto"))
    run = spawn("run", "runbook.yaml", cwd=tmp_path)
    run_id = wait_for_approval_request(tmp_path, MANUAL)
    run.kill()  # SIGKILL: no run.finished, the request still looks pending
    run.wait(timeout=30)
    left = tminus("approve", run_id, "--operator", "bob", cwd=tmp_path)
    assert left.returncode == 0, left.stderr
    resumed = spawn("resume", run_id, "--retry", cwd=tmp_path)  # the manual step was cut short: ask again
    wait_for(lambda: len(requests(tmp_path, run_id, MANUAL)) == 2, timeout=30)
    first, second = requests(tmp_path, run_id, MANUAL)
    time.sleep(1.5)  # seven polls of the operator channel: a leftover would have been taken by now
    assert resumed.poll() is None, "the leftover answer to the first request answered the resumed one"
    assert not (tmp_path / "log").exists()
    again = tminus("approve", run_id, "--operator", "carol", cwd=tmp_path)
    assert again.returncode == 0 and f"request #{second}:" in again.stdout, again.stdout + again.stderr
    assert resumed.wait(timeout=60) == 0, resumed.stderr.read() if resumed.stderr else ""
    kept = answers(tmp_path, run_id)
    assert [(a["by"], a["given_for"], a["taken_by"]) for a in kept] == [("bob", first, None), ("carol", second, second)]
