"""Signals and a broken lease go through the stop channel: the run ends interrupted and resumable,
and the ledger records who stopped it (`run.stop`)."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.helpers import lines, run_json, spawn, tminus, wait_for, write_runbook

RUNBOOK = """
    name: stoppable
    phases:
      - name: p
        steps:
          - run: "echo once >> log; touch started; sleep 30"
            idempotent: true
          - run: "echo after >> log"
"""


def _stops(tmp_path: Path, run_id: str) -> list[dict[str, object]]:
    _code, shown = run_json("show", run_id, cwd=tmp_path)
    return [e["data"] for e in shown["events"] if e["type"] == "run.stop"]


def test_sigint_is_an_interrupt_request_and_the_run_resumes(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    proc = spawn("run", "runbook.yaml", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 130
    run_id = run_json("history", cwd=tmp_path)[1][0]["id"]
    (stop,) = _stops(tmp_path, run_id)
    assert stop["mode"] == "interrupt" and stop["by"] == "signal SIGINT" and stop["accepted"] is True
    (tmp_path / "started").unlink()
    resumed = spawn("resume", run_id, cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    resumed.send_signal(signal.SIGTERM)  # the rerun is interrupted too, and recorded as such
    assert resumed.wait(timeout=20) == 130
    assert [s["by"] for s in _stops(tmp_path, run_id)] == ["signal SIGINT", "signal SIGTERM"]
    assert lines(tmp_path / "log") == ["once", "once"]


def test_a_broken_lease_is_an_interrupt_request(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    proc = spawn("run", "runbook.yaml", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    assert tminus("unlock", "runbook.yaml", "-e", "default", "--reason", "testing", cwd=tmp_path).returncode == 0
    assert proc.wait(timeout=30) == 130
    run_id = run_json("history", cwd=tmp_path)[1][0]["id"]
    # The holder stops as on an interrupt, but its ledger writes are fenced off once the lease is
    # gone: the unlock note (written by `tminus unlock`) is the last word in its chain.
    _code, shown = run_json("show", run_id, cwd=tmp_path)
    assert _stops(tmp_path, run_id) == []
    assert shown["events"][-1]["type"] == "note" and shown["events"][-1]["data"]["action"] == "unlock"
