"""`tminus rehearse` itself killed (SIGKILL) in the middle of a cycle: nothing is lost. The record stays
unfinished (and satisfies no `require_rehearsal`), the cycle's run is an ordinary crashed run that
`tminus rollback` undoes, and a new rehearsal then passes and unblocks production."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.helpers import run_json, spawn, tminus, wait_for, write_runbook

RUNBOOK = """
    name: killed-rehearsal
    environments:
      staging: {}
      production: {}
    decision:
      mode: auto
      require_rehearsal: {environment: staging}
    phases:
      - name: one
        steps:
          - run: "touch one"
            undo: [{run: "rm one"}]
      - name: two
        steps:
          - run: "touch two-started; sleep 1.5; touch two"
            undo: [{run: "rm -f two two-started"}]
"""


def test_a_killed_rehearsal_leaves_an_unfinished_record_and_a_crashed_run_to_roll_back(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    proc = spawn("rehearse", "runbook.yaml", "-e", "staging", cwd=tmp_path)
    try:  # cycle 1 (after 'one') is done and rolled back; cycle 2 is inside phase two
        wait_for(lambda: (tmp_path / "two-started").exists(), timeout=30)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    code, listed = run_json("rehearsals", cwd=tmp_path)
    assert code == 0 and len(listed) == 1
    (row,) = listed
    assert row["verdict"] == "unfinished", row
    code, shown = run_json("show", row["rehearsal_id"], cwd=tmp_path)
    assert code == 0 and [c["ok"] for c in shown["cycles"]] == [True]  # only cycle 1 was measured

    # production is not unblocked by a rehearsal that never finished
    blocked = tminus("gate", "runbook.yaml", "-e", "production", cwd=tmp_path)
    assert blocked.returncode == 10, blocked.stdout + blocked.stderr
    assert "rehearsal" in blocked.stdout + blocked.stderr

    # the cycle's run is an ordinary crashed run: find it, let its step end, roll it back
    code, history = run_json("history", cwd=tmp_path)
    crashed = [r for r in history if r.get("kind") == "run" and r["status"] == "running"]
    assert len(crashed) == 1, json.dumps(history, indent=1)
    wait_for(lambda: (tmp_path / "two").exists(), timeout=10)
    rolled = tminus("rollback", crashed[0]["id"], "--reason", "rehearsal was killed", cwd=tmp_path)
    assert rolled.returncode == 11, rolled.stdout + rolled.stderr
    assert not any((tmp_path / name).exists() for name in ("one", "two", "two-started"))

    # a new rehearsal passes and production's gates open
    again = tminus("rehearse", "runbook.yaml", "-e", "staging", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    opened = tminus("gate", "runbook.yaml", "-e", "production", cwd=tmp_path)
    assert opened.returncode == 0, opened.stdout + opened.stderr
