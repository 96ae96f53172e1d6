"""The run as an operator sees it: real `tminus` subprocesses, real shell commands, a real ledger."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.helpers import lines, run_json, tminus, write_runbook


def test_blocked_gate_changes_nothing(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: blocked
        gates:
          - name: readiness
            checks:
              - name: passes
                run: "true"
              - name: fails with evidence
                run: "echo disk almost full; exit 3"
              - name: also fails
                file: {path: missing-artifact.txt}
        phases:
          - name: change
            steps:
              - run: "touch changed.txt"
    """)
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 10, result
    assert result["status"] == "blocked"
    assert not (tmp_path / "changed.txt").exists()
    # every failure is reported, not just the first
    text = "\n".join(result["failures"])
    assert "fails with evidence" not in text or "exit_code == 0" in text
    assert "disk almost full" in text
    assert "missing-artifact.txt" in text
    assert len(result["failures"]) == 2


def test_failure_in_third_phase_undoes_three_two_one_then_rollback(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: undo-order
        phases:
          - name: one
            budget: 1m
            steps:
              - run: "echo do1 >> log"
            undo:
              - run: "echo undo1 >> log"
          - name: two
            budget: 1m
            steps:
              - run: "echo do2 >> log"
                undo:
                  - run: "echo undo2-step >> log"
            undo:
              - run: "echo undo2 >> log"
          - name: three
            steps:
              - run: "echo do3 >> log"
              - name: breaks
                run: "echo boom >&2; exit 1"
              - run: "echo never >> log"
            undo:
              - run: "echo undo3 >> log"
          - name: four
            steps:
              - run: "echo do4 >> log"
            undo:
              - run: "echo undo4 >> log"
        rollback:
          - run: "echo rollback >> log"
    """)
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result
    assert result["status"] == "rolled_back"
    assert "boom" in result["reason"]
    assert lines(tmp_path / "log") == [
        "do1", "do2", "do3", "undo3", "undo2-step", "undo2", "undo1", "rollback",
    ]


def test_failed_verify_rolls_back_and_verifies_again(tmp_path: Path) -> None:
    (tmp_path / "version").write_text("v1\n")
    write_runbook(tmp_path, """
        name: verify-fails
        vars: {target: v3}
        phases:
          - name: deploy
            steps:
              - id: previous
                run: "cat version"
              - run: "echo {{ vars.target | shquote }} > version"
                undo:
                  - run: "echo {{ steps.previous.stdout | shquote }} > version"
        verify:
          - name: new version serves
            run: "cat version"
            expect: ['stdout == "v2"']
            after_rollback: false
          - name: some version serves
            run: "test -s version"
    """)
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result
    assert (tmp_path / "version").read_text().strip() == "v1"
    assert 'expected "v2"' in result["reason"] or "v3" in result["reason"]


def test_abort_policy_stops_without_undo(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: abort
        phases:
          - name: one
            steps:
              - run: "echo do1 >> log"
              - run: "exit 1"
                on_failure: abort
            undo:
              - run: "echo undo1 >> log"
    """)
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 13, result
    assert lines(tmp_path / "log") == ["do1"]


def test_rollback_failure_says_what_state_things_are_in(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: rollback-fails
        phases:
          - name: one
            steps: [{run: "echo do1 >> log"}]
            undo: [{run: "echo undo1 >> log"}]
          - name: two
            steps: [{run: "echo do2 >> log"}, {run: "exit 1"}]
            undo: [{name: undo two breaks, run: "echo cannot >&2; exit 2"}]
    """)
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 12, result
    assert "rollback stopped at 'undo two breaks'" in result["reason"]
    assert "not yet undone" in result["reason"]
    assert lines(tmp_path / "log") == ["do1", "do2"]


def test_retry_records_every_attempt_and_outputs_feed_templates(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: retries
        phases:
          - name: p
            steps:
              - id: flaky
                run: "echo x >> tries; test $(wc -l < tries) -ge 3 && echo ready"
                retry: {attempts: 5, interval: 10ms}
              - run: "echo got-{{ steps.flaky.stdout }} > out"
    """)
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 0, result
    assert (tmp_path / "out").read_text().strip() == "got-ready"
    code, shown = run_json("show", result["run_id"], cwd=tmp_path)
    attempts = [e for e in shown["events"] if e["type"] == "step.attempt"]
    assert len(attempts) == 2
    finished = [e for e in shown["events"] if e["type"] == "step.finished" and e["step_key"] == "phases[0].steps[0]"]
    assert finished[0]["data"]["attempts"] == 3
    # the sections summary, from the projection: the retried step counts once, as it ended
    phase = next(r for r in shown["sections"] if r["id"] == "phase:p")
    assert (phase["status"], phase["steps"], phase["kind"], phase["name"]) == ("ok", {"ok": 2}, "phase", "p")
    text = tminus("show", result["run_id"], "--no-evidence", cwd=tmp_path).stdout
    assert "\nSections:\n" in text and text.index("Sections:") < text.index("Outcome: completed")


def test_secret_never_leaks_to_output_ledger_or_reports(tmp_path: Path) -> None:
    fake = "sk-fake-5ecr3t-value-42"
    write_runbook(tmp_path, """
        name: secrets
        secrets: [API_TOKEN]
        phases:
          - name: use
            steps:
              - name: uses the token
                run: "echo token is $API_TOKEN; echo {{ env.API_TOKEN }} >&2"
              - name: fails showing it
                run: "echo bad {{ env.API_TOKEN }}; exit 1"
    """)
    env = {"API_TOKEN": fake}
    proc = tminus("run", "runbook.yaml", "--json", cwd=tmp_path, env=env)
    assert proc.returncode == 11, proc.stderr
    assert fake not in proc.stdout and fake not in proc.stderr
    run_id = json.loads(proc.stdout)["run_id"]
    for args in (("show", run_id), ("show", run_id, "--json"), ("history", "--json"), ("plan", "runbook.yaml")):
        shown = tminus(*args, cwd=tmp_path, env=env)
        assert fake not in shown.stdout + shown.stderr, args
    shown_text = tminus("show", run_id, cwd=tmp_path, env=env).stdout
    assert "***" in shown_text
    assert "  rollback " in shown_text.split("Sections:")[1]  # the summary says what the rollback undid
    raw = (tmp_path / ".tminus" / "ledger.db").read_bytes()
    for extra in tmp_path.glob(".tminus/ledger.db*"):
        raw += extra.read_bytes()
    assert fake.encode() not in raw


def test_tampered_ledger_is_detected(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: tamper
        phases:
          - name: p
            steps: [{run: "echo hello"}]
    """)
    code, _result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 0
    assert tminus("ledger", "verify", cwd=tmp_path).returncode == 0
    db = sqlite3.connect(tmp_path / ".tminus" / "ledger.db")
    tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
    events_table = next(t for t in tables if "event" in t)
    cols = [r[1] for r in db.execute(f"pragma table_info({events_table})")]
    data_col = next(c for c in cols if c in ("data", "data_json", "payload"))
    db.execute(f"update {events_table} set {data_col} = replace({data_col}, 'hello', 'HELLO')")
    db.commit()
    db.close()
    proc = tminus("ledger", "verify", cwd=tmp_path)
    assert proc.returncode == 1
    assert "TAMPERED" in proc.stderr


def test_when_skips_and_plan_shows_point_of_no_return(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: plan-me
        vars: {mode: fast}
        gates:
          - name: g
            checks: [{tcp: {port: 1, state: closed}}]
        phases:
          - name: prepare
            budget: 5m
            steps:
              - id: backup
                run: "echo backup.db"
            undo: [{run: "echo restore {{ steps.backup.stdout }}"}]
          - name: irreversible
            budget: 10m
            steps:
              - name: send the emails
                run: "echo sent"
              - name: only when slow
                when: "vars.mode == 'slow'"
                run: "echo slow > slow"
    """)
    proc = tminus("plan", "runbook.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "T+0:00" in proc.stdout and "T+0:05" in proc.stdout and "T+0:15" in proc.stdout
    assert "Point of no return" in proc.stdout and "send the emails" in proc.stdout
    assert "⟨steps.backup.stdout⟩" in proc.stdout
    code, plan = run_json("plan", "runbook.yaml", cwd=tmp_path)
    assert plan["point_of_no_return"]["step"] == "send the emails"
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 0, result
    assert not (tmp_path / "slow").exists()


def test_invalid_runbook_exits_78_with_positions(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: broken
        phases:
          - name: p
            steps:
              - nme: typo
                run: "true"
    """)
    proc = tminus("run", "runbook.yaml", cwd=tmp_path)
    assert proc.returncode == 78
    assert "runbook.yaml:5:" in proc.stderr
    assert "name" in proc.stderr
