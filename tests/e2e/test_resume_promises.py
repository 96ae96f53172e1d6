"""Resume keeps its promises (issue 9: crash and resume): a rollback that finished before a crash
is honoured, an operator-skipped step is undone, a run can be rolled back after the go decision,
the environment is re-checked before acting, and a CRLF or BOM runbook resumes."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest
from tests.helpers import lines, run_json, spawn, tminus, wait_for, write_runbook

FAILS_IN_PHASE_TWO = """
    name: crashy
    phases:
      - name: one
        steps: [{run: "echo one >> log"}]
        undo: [{run: "echo undo-one >> log"}]
      - name: two
        steps:
          - name: not idempotent
            run: "echo two >> log; exit 1"
          - run: "echo three >> log"
        undo: [{run: "echo undo-two >> log"}]
    verify:
      - name: service back
        run: "{verify}"
"""


def _crash_before_the_end(tmp_path: Path, run_id: str) -> None:
    """What a crash after `rollback.finished` and before the run's status leaves in the ledger:
    the last event (run.finished) never committed, the run still 'running'."""
    db = sqlite3.connect(tmp_path / ".tminus" / "ledger.db")
    with db:
        (seq, kind, prev) = db.execute(
            "SELECT seq, type, prev_hash FROM tminus_events WHERE run_id = ? ORDER BY seq DESC LIMIT 1",
            (run_id,)).fetchone()
        assert kind == "run.finished"
        db.execute("DELETE FROM tminus_events WHERE run_id = ? AND seq = ?", (run_id, seq))
        db.execute("UPDATE tminus_runs SET status = 'running', exit_code = NULL, reason = NULL, "
                   "finished_at = NULL, event_count = event_count - 1, head_hash = ? WHERE id = ?",
                   (prev, run_id))
        (last,) = db.execute("SELECT type FROM tminus_events WHERE run_id = ? ORDER BY seq DESC LIMIT 1",
                             (run_id,)).fetchone()
        assert last == "rollback.finished"
    db.close()


def test_resume_honours_a_rollback_that_finished_before_the_crash(tmp_path: Path) -> None:
    write_runbook(tmp_path, FAILS_IN_PHASE_TWO.replace("{verify}", "true"))
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result
    done = ["one", "two", "undo-two", "undo-one"]
    assert lines(tmp_path / "log") == done
    _crash_before_the_end(tmp_path, result["run_id"])
    code, resumed = run_json("resume", result["run_id"], "--no-input", cwd=tmp_path)
    assert code == 11 and resumed["status"] == "rolled_back", resumed
    assert lines(tmp_path / "log") == done  # nothing forward again, nothing undone twice
    code, history = run_json("history", cwd=tmp_path)
    assert history[0]["status"] == "rolled_back"
    assert tminus("ledger", "verify", cwd=tmp_path).returncode == 0


def test_resume_honours_a_rollback_whose_verify_failed(tmp_path: Path) -> None:
    write_runbook(tmp_path, FAILS_IN_PHASE_TWO.replace("{verify}", "echo verify >> log; exit 1"))
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 12, result
    done = ["one", "two", "undo-two", "undo-one", "verify"]
    assert lines(tmp_path / "log") == done
    _crash_before_the_end(tmp_path, result["run_id"])
    code, resumed = run_json("resume", result["run_id"], "--no-input", cwd=tmp_path)
    assert code == 12 and resumed["status"] == "rollback_failed", resumed
    assert "verify" in resumed["reason"]
    assert lines(tmp_path / "log") == done
    assert tminus("ledger", "verify", cwd=tmp_path).returncode == 0


SKIPPABLE = """
    name: skippable
    phases:
      - name: one
        steps:
          - name: half-acting
            run: "echo acted >> log; touch started; while [ ! -f release ]; do sleep 0.05; done"
            undo: [{run: "echo undo-half >> log"}]
          - name: later
            run: "echo later >> log; test ! -f fail-later"
        undo: [{run: "echo undo-one >> log"}]
"""


def _kill_in_the_first_step(tmp_path: Path) -> str:
    """kill -9 tminus while its non-idempotent first step runs; the step's command then ends by itself."""
    proc = spawn("run", "runbook.yaml", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    (tmp_path / "release").touch()  # the orphaned loop (if resume does not end it) ends itself
    _code, runs = run_json("history", cwd=tmp_path)
    assert runs[0]["status"] == "running"
    return str(runs[0]["id"])


def test_a_step_skipped_on_resume_is_undone_by_the_rollback_that_follows(tmp_path: Path) -> None:
    write_runbook(tmp_path, SKIPPABLE)
    (tmp_path / "fail-later").touch()
    run_id = _kill_in_the_first_step(tmp_path)
    code, result = run_json("resume", run_id, "--skip", "--reason", "it completed", "--no-input", cwd=tmp_path)
    assert code == 11, result
    assert lines(tmp_path / "log") == ["acted", "later", "undo-half", "undo-one"]
    assert "half-acting" in result["reason"]  # the run says what it undid


def test_a_step_skipped_on_resume_is_undone_by_a_later_rollback(tmp_path: Path) -> None:
    write_runbook(tmp_path, SKIPPABLE)
    run_id = _kill_in_the_first_step(tmp_path)
    code, result = run_json("resume", run_id, "--skip", "--reason", "it completed", "--no-input", cwd=tmp_path)
    assert code == 0, result
    code, rolled = run_json("rollback", run_id, "--reason", "undo it all", "--no-input", cwd=tmp_path)
    assert code == 11, rolled
    assert lines(tmp_path / "log") == ["acted", "later", "undo-half", "undo-one"]


WATCHED = """
    name: watched
    phases:
      - name: deploy
        steps:
          - name: ship
            run: "echo ship >> log"
            undo: [{run: "echo unship >> log"}]
        undo: [{run: "echo undo-deploy >> log"}]
    decision: auto
    monitor:
      duration: 120s
      interval: 100ms
      probes:
        - name: alive
          run: "touch watching; echo ok"
      rules:
        - name: broken
          when: "exit_code != 0"
          consecutive: 3
"""


@pytest.mark.parametrize("how", ["resume --rollback", "rollback"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["interrupted", "killed"])
def test_an_operator_rolls_back_a_run_stopped_in_its_monitor_window(
        tmp_path: Path, how: str, sig: signal.Signals) -> None:
    write_runbook(tmp_path, WATCHED)
    proc = spawn("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "watching").exists())  # after the go decision, inside the window
    os.kill(proc.pid, sig)
    assert proc.wait(timeout=20) == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    _code, runs = run_json("history", cwd=tmp_path)
    run_id = runs[0]["id"]
    if how == "rollback":
        code, result = run_json("rollback", run_id, "--reason", "errors since the release", "--no-input",
                                cwd=tmp_path)
    else:
        code, result = run_json("resume", run_id, "--rollback", "--no-input", cwd=tmp_path)
    assert code == 11 and result["status"] == "rolled_back", result
    assert lines(tmp_path / "log") == ["ship", "unship", "undo-deploy"]
    assert "step 'ship'" in result["reason"]
    # rolled back: nothing to resume, nothing more to undo
    assert tminus("resume", run_id, "--no-input", cwd=tmp_path).returncode == 15
    assert tminus("ledger", "verify", cwd=tmp_path).returncode == 0


MANIFEST = """
    name: manifested
    secrets: [DEPLOY_TOKEN]
    environments:
      production:
        env:
          required: [DEPLOY_REGION]
          forbidden: {DEPLOY_MODE: dry}
    phases:
      - name: one
        steps:
          - name: half-acting
            run: "echo acted >> log; touch started; while [ ! -f release ]; do sleep 0.05; done"
            idempotent: true
          - name: uses the token
            run: 'echo token-$(printf %s "$DEPLOY_TOKEN" | wc -c) >> log'
        undo: [{run: "echo undo-one >> log"}]
"""
GOOD_ENV = {"DEPLOY_TOKEN": "s3cr3t", "DEPLOY_REGION": "eu", "DEPLOY_MODE": "live"}


@pytest.mark.parametrize("unset, named", [
    ({"DEPLOY_TOKEN": ""}, "DEPLOY_TOKEN"),
    ({"DEPLOY_REGION": ""}, "DEPLOY_REGION"),
    ({"DEPLOY_MODE": "dry"}, "DEPLOY_MODE"),
], ids=["secret", "required", "forbidden"])
def test_resume_refuses_a_shell_missing_what_the_run_needs(tmp_path: Path, unset: dict[str, str],
                                                            named: str) -> None:
    write_runbook(tmp_path, MANIFEST)
    proc = spawn("run", "runbook.yaml", "-e", "production", cwd=tmp_path, env=GOOD_ENV)
    wait_for(lambda: (tmp_path / "started").exists())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    (tmp_path / "release").touch()
    _code, runs = run_json("history", cwd=tmp_path)
    run_id = runs[0]["id"]
    shell = {**GOOD_ENV, **unset}
    for command in (("resume", run_id, "--no-input"), ("rollback", run_id, "--reason", "x", "--no-input")):
        refused = tminus(*command, cwd=tmp_path, env=shell)
        assert refused.returncode == 15, refused.stderr
        assert named in refused.stderr and "s3cr3t" not in refused.stderr
        assert lines(tmp_path / "log") == ["acted"]  # nothing ran, nothing was undone
    _code, runs = run_json("history", cwd=tmp_path)
    assert runs[0]["status"] == "running"  # still resumable once the shell is fixed
    code, result = run_json("resume", run_id, "--no-input", cwd=tmp_path, env=GOOD_ENV)
    assert code == 0, result
    # the half-acting step's process ran to its end after the kill: adopted, not run a second time
    assert lines(tmp_path / "log") == ["acted", "token-6"]


@pytest.mark.parametrize("encode", [
    lambda text: text.replace("\n", "\r\n").encode(),
    lambda text: "\ufeff".encode() + text.encode(),
    lambda text: "\ufeff".encode() + text.replace("\n", "\r\n").encode(),
], ids=["crlf", "bom", "bom-crlf"])
def test_a_crlf_or_bom_runbook_resumes(tmp_path: Path, encode: object) -> None:
    import textwrap

    text = textwrap.dedent(SKIPPABLE).lstrip()
    (tmp_path / "runbook.yaml").write_bytes(encode(text))  # type: ignore[operator]
    run_id = _kill_in_the_first_step(tmp_path)
    code, result = run_json("resume", run_id, "--skip", "--reason", "it completed", "--no-input", cwd=tmp_path)
    assert code == 0, result
    assert lines(tmp_path / "log") == ["acted", "later"]


def test_an_operator_rolls_back_a_live_run_in_its_monitor_window(tmp_path: Path) -> None:
    """A live run holds its lease: `tminus unlock` stops it at once (fenced: it writes nothing more)
    and `tminus rollback` then undoes what it did, as docs/cli.md says."""
    write_runbook(tmp_path, WATCHED)
    proc = spawn("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "watching").exists())
    _code, runs = run_json("history", cwd=tmp_path)
    run_id = runs[0]["id"]
    held = tminus("rollback", run_id, "--reason", "errors", "--no-input", cwd=tmp_path)
    assert held.returncode == 14, held.stderr  # never two processes acting on one run
    unlocked = tminus("unlock", "runbook.yaml", "-e", "default", "--reason", "rolling back by hand", cwd=tmp_path)
    assert unlocked.returncode == 0, unlocked.stderr
    code, result = run_json("rollback", run_id, "--reason", "errors since the release", "--no-input",
                            "--lock-wait", "20s", cwd=tmp_path)
    assert proc.wait(timeout=20) == 130
    assert code == 11 and result["status"] == "rolled_back", result
    assert lines(tmp_path / "log") == ["ship", "unship", "undo-deploy"]
    assert tminus("ledger", "verify", cwd=tmp_path).returncode == 0
