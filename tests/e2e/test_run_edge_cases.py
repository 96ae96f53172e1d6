"""Edge cases an operator meets on production day, each once a real bug."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.helpers import lines, run_json, spawn, tminus, wait_for, write_runbook


def test_a_step_skipped_by_when_has_nothing_to_undo(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: skipped-undo
        vars: {flag: false}
        phases:
          - name: p
            steps:
              - run: "echo do >> log"
                undo: [{run: "echo undo-do >> log"}]
              - when: "vars.flag"
                run: "echo skipped >> log"
                undo: [{run: "echo undo-skipped >> log"}]
              - run: "exit 1"
    """)
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result
    assert lines(tmp_path / "log") == ["do", "undo-do"]


def test_sigterm_during_a_non_idempotent_step_makes_resume_ask(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: term-resume
        phases:
          - name: p
            steps:
              - run: "echo once >> log; touch started; sleep 30"
              - run: "echo after >> log"
    """)
    proc = spawn("run", "runbook.yaml", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 130
    run_id = run_json("history", cwd=tmp_path)[1][0]["id"]
    asked = tminus("resume", run_id, "--no-input", cwd=tmp_path)
    assert asked.returncode == 15 and "--retry" in asked.stderr
    assert lines(tmp_path / "log") == ["once"]  # not silently re-run


def test_var_overrides_survive_resume(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: vars-resume
        vars: {target: default}
        phases:
          - name: p
            steps:
              - run: "echo {{ vars.target }} >> log; echo $$ > pgid; touch started; sleep 30"
                idempotent: true
              - run: "echo {{ vars.target }}-done >> log"
    """)
    proc = spawn("run", "runbook.yaml", "--var", "target=v7", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    os.killpg(int((tmp_path / "pgid").read_text()), signal.SIGKILL)  # its group outlived tminus: end it
    (tmp_path / "started").unlink()
    run_id = run_json("history", cwd=tmp_path)[1][0]["id"]
    resumed = spawn("resume", run_id, cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    os.killpg(int((tmp_path / "pgid").read_text()), signal.SIGKILL)  # let the rerun finish quickly
    resumed.wait(timeout=30)
    assert lines(tmp_path / "log")[:2] == ["v7", "v7"]


def test_a_refused_run_leaves_no_record(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: phantom
        phases:
          - name: p
            steps: [{run: "touch started; sleep 30"}]
    """)
    first = spawn("run", "runbook.yaml", cwd=tmp_path)
    try:
        wait_for(lambda: (tmp_path / "started").exists())
        assert tminus("run", "runbook.yaml", cwd=tmp_path).returncode == 14
        _code, runs = run_json("history", cwd=tmp_path)
        assert len(runs) == 1
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=20)


def test_a_broken_lease_stops_the_run(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: broken-lease
        phases:
          - name: p
            steps:
              - run: "touch started; sleep 30"
              - run: "touch never"
    """)
    proc = spawn("run", "runbook.yaml", "--json", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    unlock = tminus("unlock", "runbook.yaml", "-e", "default", "--reason", "testing", cwd=tmp_path)
    assert unlock.returncode == 0, unlock.stderr
    assert proc.wait(timeout=30) == 130
    out = json.loads(proc.stdout.read() if proc.stdout else "{}")
    assert "lease was broken" in out["reason"]
    assert not (tmp_path / "never").exists()


def test_secret_output_masks_values_inside_json(tmp_path: Path) -> None:
    (tmp_path / "creds.json").write_text('{"token": "tok-very-secret-991"}')
    write_runbook(tmp_path, """
        name: secret-json
        phases:
          - name: p
            steps:
              - id: creds
                secret_output: true
                run: "cat creds.json"
              - run: "echo using {{ steps.creds.stdout }}"
    """)
    proc = tminus("run", "runbook.yaml", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout)["run_id"]
    shown = tminus("show", run_id, "--json", cwd=tmp_path)
    assert "tok-very-secret-991" not in shown.stdout + proc.stderr


def test_bad_duration_option_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    write_runbook(tmp_path, "name: x\nphases:\n  - name: p\n    steps: [{run: 'true'}]\n")
    proc = tminus("run", "runbook.yaml", "--lock-wait", "abc", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "--lock-wait" in proc.stderr


def test_a_resumed_run_gets_secret_outputs_back_by_re_running_an_idempotent_step(tmp_path: Path) -> None:
    (tmp_path / "vault").write_text("s3cret-from-vault-42")
    write_runbook(tmp_path, """
        name: secret-resume
        phases:
          - name: fetch
            steps:
              - id: creds
                secret_output: true
                idempotent: true
                run: "cat vault; echo fetched >> fetches"
            undo:
              - run: "touch fetch-undone"
          - name: use
            steps:
              - run: "touch started; test -f go || sleep 30"
                idempotent: true
              - run: 'test "{{ steps.creds.stdout | trim }}" = "s3cret-from-vault-42" && touch used'
                undo: [{run: "true"}]
    """)
    proc = spawn("run", "runbook.yaml", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    (tmp_path / "go").touch()
    run_id = json.loads(tminus("history", "--json", cwd=tmp_path).stdout)[0]["id"]
    code, result = run_json("resume", run_id, cwd=tmp_path)
    assert code == 0, result
    assert (tmp_path / "used").exists()  # the real value, not "***"
    assert (tmp_path / "fetches").read_text().split() == ["fetched", "fetched"]  # fetched again on resume
    shown = tminus("show", run_id, "--json", cwd=tmp_path)
    assert "s3cret-from-vault-42" not in shown.stdout
    # Rolling the completed run back still undoes the fetch phase (the step counts as done).
    code, result = run_json("rollback", run_id, "--reason", "test", cwd=tmp_path)
    assert code == 11, result
    assert (tmp_path / "fetch-undone").exists()


def test_an_undeliverable_announcement_neither_rolls_back_nor_stops_a_rollback(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: announce
        phases:
          - name: go
            steps:
              - notify: {url: "http://127.0.0.1:9/hook", message: "starting"}
                retry: {attempts: 1}
              - run: "echo done >> log"
                undo: [{run: "echo undone >> log"}]
              - run: "exit 4"
        rollback:
          - notify: {url: "http://127.0.0.1:9/hook", message: "rolled back"}
          - run: "echo after >> log"
    """)
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result  # rolled back because of `exit 4`, not because of the chat
    assert lines(tmp_path / "log") == ["done", "undone", "after"]
    assert "exit 4" in result["reason"] or "exit_code" in result["reason"]
