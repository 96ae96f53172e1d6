"""Crashes, resume, the run lease and operator approvals, with real processes and signals."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.helpers import lines, run_json, spawn, tminus, wait_for, wait_for_approval_request, write_runbook

SLOW_RUNBOOK = """
    name: slow
    phases:
      - name: one
        steps:
          - run: "echo step1 >> log"
          - run: "echo step2 >> log"
      - name: two
        steps:
          - name: long step
            idempotent: {idempotent}
            run: "echo long-start >> log; echo $$ > pgid; touch started; sleep 30; echo long-end >> log"
          - run: "echo step4 >> log"
        undo:
          - run: "echo undo2 >> log"
"""


def _start_and_kill(tmp_path: Path, idempotent: str) -> str:
    write_runbook(tmp_path, SLOW_RUNBOOK.replace("{idempotent}", idempotent))
    proc = spawn("run", "runbook.yaml", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up: the ledger must be enough
    proc.wait(timeout=10)
    _code, runs = run_json("history", cwd=tmp_path)
    assert runs[0]["status"] == "running"
    # the killed run's step leads its own process group, which outlived tminus: end it, so resume
    # finds no survivor to wait for (tests/e2e/test_survivors.py covers that)
    os.killpg(int((tmp_path / "pgid").read_text()), signal.SIGKILL)
    return runs[0]["id"]


def test_sigkill_then_resume_skips_completed_steps(tmp_path: Path) -> None:
    run_id = _start_and_kill(tmp_path, "true")
    assert lines(tmp_path / "log") == ["step1", "step2", "long-start"]
    _code, status = run_json("status", cwd=tmp_path)
    assert status[0]["run_id"] == run_id and status[0]["state"].startswith("interrupted")
    (tmp_path / "runbook.yaml").write_text((tmp_path / "runbook.yaml").read_text())  # unchanged content
    # make the long step quick on resume without changing the runbook: it is idempotent, so it reruns
    proc = tminus("resume", run_id, "--json", cwd=tmp_path, timeout=60, env={"PATH": _fast_sleep_path(tmp_path)})
    result = json.loads(proc.stdout)
    assert result["status"] == "completed", proc.stderr
    assert lines(tmp_path / "log") == ["step1", "step2", "long-start", "long-start", "long-end", "step4"]


def test_interrupted_non_idempotent_step_needs_a_choice(tmp_path: Path) -> None:
    run_id = _start_and_kill(tmp_path, "false")
    proc = tminus("resume", run_id, "--no-input", cwd=tmp_path)
    assert proc.returncode == 15
    assert "--retry" in proc.stderr and "--skip" in proc.stderr and "--rollback" in proc.stderr
    proc = tminus("resume", run_id, "--skip", cwd=tmp_path)
    assert proc.returncode == 2 or proc.returncode == 15
    assert "--reason" in proc.stderr
    code, result = run_json("resume", run_id, "--rollback", cwd=tmp_path)
    assert code == 11, result
    # phase two was touched, so its undo ran; nothing ran twice
    assert lines(tmp_path / "log") == ["step1", "step2", "long-start", "undo2"]


def test_skip_with_reason_continues(tmp_path: Path) -> None:
    run_id = _start_and_kill(tmp_path, "false")
    code, result = run_json("resume", run_id, "--skip", "--reason", "checked by hand: it finished", cwd=tmp_path)
    assert code == 0, result
    assert lines(tmp_path / "log") == ["step1", "step2", "long-start", "step4"]
    code, shown = run_json("show", run_id, cwd=tmp_path)
    resumed = [e for e in shown["events"] if e["type"] == "run.resumed"]
    assert resumed and resumed[0]["data"]["reason"] == "checked by hand: it finished"


def test_resume_refuses_a_changed_runbook(tmp_path: Path) -> None:
    run_id = _start_and_kill(tmp_path, "true")
    path = tmp_path / "runbook.yaml"
    path.write_text(path.read_text() + "\n# edited\n")
    proc = tminus("resume", run_id, cwd=tmp_path)
    assert proc.returncode == 15 and "changed" in proc.stderr
    proc = tminus("resume", run_id, "--allow-changed", cwd=tmp_path)
    assert proc.returncode == 2 and "--reason" in proc.stderr


def test_second_run_is_refused_naming_the_holder_and_stale_lease(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: locked
        phases:
          - name: p
            steps:
              - run: "echo $$ > pgid; touch started; sleep 30"
    """)
    first = spawn("run", "runbook.yaml", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    second = tminus("run", "runbook.yaml", cwd=tmp_path)
    assert second.returncode == 14
    assert "tester" in second.stderr and str(first.pid) in second.stderr
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    os.killpg(int((tmp_path / "pgid").read_text()), signal.SIGKILL)
    third = tminus("run", "runbook.yaml", cwd=tmp_path)
    assert third.returncode == 14
    assert "stale" in third.stderr.lower() and "tminus unlock" in third.stderr
    unlock = tminus("unlock", "runbook.yaml", "-e", "default", "--reason", "holder crashed", cwd=tmp_path)
    assert unlock.returncode == 0, unlock.stderr
    (tmp_path / "runbook.yaml").write_text("name: locked\nphases:\n  - name: p\n    steps:\n      - run: 'true'\n")
    assert tminus("run", "runbook.yaml", cwd=tmp_path).returncode == 0


def test_sigterm_interrupts_and_kills_the_process_group(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: term
        phases:
          - name: p
            steps:
              - run: "sleep 60 & echo $! > child; touch started; sleep 60"
    """)
    proc = spawn("run", "runbook.yaml", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists() and (tmp_path / "child").read_text().strip() != "")
    child = int((tmp_path / "child").read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 130
    wait_for(lambda: not _alive(child), timeout=10)
    _code, runs = run_json("history", cwd=tmp_path)
    assert runs[0]["status"] == "interrupted"


def test_timed_out_step_leaves_no_child_alive(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: timeout
        phases:
          - name: p
            steps:
              - run: "sleep 60 & echo $! > child; sleep 60"
                timeout: 500ms
    """)
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result
    assert "timed out" in result["reason"]
    child = int((tmp_path / "child").read_text())
    wait_for(lambda: not _alive(child), timeout=10)


def test_manual_step_no_input_fails_and_approval_from_second_process(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: manual
        phases:
          - name: p
            steps:
              - manual: "Announce the maintenance window"
              - run: "touch done"
    """)
    proc = tminus("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert proc.returncode == 11
    assert "no-input" in proc.stderr
    assert not (tmp_path / "done").exists()

    waiting = spawn("run", "runbook.yaml", cwd=tmp_path)
    run_id = wait_for_approval_request(tmp_path)
    approve = tminus("approve", run_id, "--reason", "announced on the status page", cwd=tmp_path,
                     env={"TMINUS_OPERATOR": "second-person"})
    assert approve.returncode == 0, approve.stderr
    assert waiting.wait(timeout=30) == 0, waiting.stderr.read() if waiting.stderr else ""
    assert (tmp_path / "done").exists()
    _code, shown = run_json("show", run_id, cwd=tmp_path)
    given = [e for e in shown["events"] if e["type"] == "approval.given"]
    assert given[0]["data"]["by"] == "second-person"
    assert given[0]["data"]["how"] == "approve-command"


def test_manual_decision_no_go_rolls_back(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: decide
        phases:
          - name: p
            steps: [{run: "echo do >> log"}]
            undo: [{run: "echo undo >> log"}]
        decision: {mode: manual, timeout: 20s}
    """)
    waiting = spawn("run", "runbook.yaml", cwd=tmp_path)
    run_id = wait_for_approval_request(tmp_path, "decision")
    assert tminus("approve", run_id, "--no-go", "--reason", "error rate too high", cwd=tmp_path).returncode == 0
    assert waiting.wait(timeout=30) == 11
    assert lines(tmp_path / "log") == ["do", "undo"]


def test_rollback_of_a_completed_run(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: later
        phases:
          - name: p
            steps: [{run: "echo do >> log"}]
            undo: [{run: "echo undo >> log"}]
    """)
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 0
    code, rolled = run_json("rollback", result["run_id"], "--reason", "customer complaints", cwd=tmp_path)
    assert code == 11, rolled
    assert lines(tmp_path / "log") == ["do", "undo"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def _fast_sleep_path(tmp_path: Path) -> str:
    """A PATH whose `sleep` returns at once, so the rerun of the long idempotent step is quick."""
    bin_dir = tmp_path / "fastbin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "sleep"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"
