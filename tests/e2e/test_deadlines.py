"""Deadlines on a phase, on the rollback and on the downtime, with real `tminus` processes and real
`sleep` steps: each action (notify, pause, rollback), --no-input, a webhook told on loopback, and a
crash between two steps that must not restart the clock."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import lines, run_json, spawn, tminus, wait_for, wait_for_approval_request, write_runbook


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on 127.0.0.1 (a free port) that keeps every JSON body."""
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


def _events(tmp_path: Path, run_id: str, type_: str) -> list[dict[str, Any]]:
    _code, shown = run_json("show", run_id, cwd=tmp_path)
    return [e for e in shown["events"] if e["type"] == type_]


def _last_run(tmp_path: Path) -> str:
    return str(run_json("history", cwd=tmp_path)[1][0]["id"])


def _deadline(tmp_path: Path, run_id: str, deadline_id: str) -> dict[str, Any]:
    _code, shown = run_json("show", run_id, cwd=tmp_path)
    return next(d for d in shown["deadlines"] if d["id"] == deadline_id)


def test_notify_tells_the_channel_and_the_run_goes_on(tmp_path: Path, webhook: Any) -> None:
    url, got = webhook
    write_runbook(tmp_path, f"""
        name: dl
        channels: {{ops: {{url: "{url}"}}}}
        phases:
          - name: slow
            deadline: {{after: 1s, notify: [ops]}}
            steps:
              - run: "sleep 2"
              - run: "echo after >> log"
    """)
    proc = tminus("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "deadline exceeded: phase 'slow'" in proc.stderr
    run_id = _last_run(tmp_path)
    (alert,) = _events(tmp_path, run_id, "deadline.exceeded")
    assert alert["data"]["action"] == "notify" and 1.0 <= alert["data"]["elapsed"] < 1.9
    assert [e["data"]["outcome"] for e in _events(tmp_path, run_id, "deadline.answered")] == ["told"]
    assert lines(tmp_path / "log") == ["after"]
    wait_for(lambda: bool(got), timeout=5)
    assert "phase 'slow'" in got[0]["text"]
    row = _deadline(tmp_path, run_id, "phase:slow")
    assert row["state"] == "exceeded" and row["deadline"] == 1.0 and 0.9 < row["exceeded_by"] < 2.0
    why = tminus("why", run_id, cwd=tmp_path).stdout
    assert "phase 'slow': deadline 1.0s (notify), took" in why and "EXCEEDED by" in why


def test_a_deadline_met_says_so_and_raises_nothing(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: dl
        phases:
          - name: quick
            deadline: {after: 20s, action: rollback}
            steps: [{run: "true"}]
    """)
    assert tminus("run", "runbook.yaml", "--no-input", cwd=tmp_path).returncode == 0
    run_id = _last_run(tmp_path)
    assert _events(tmp_path, run_id, "deadline.exceeded") == []
    row = _deadline(tmp_path, run_id, "phase:quick")
    assert row["state"] == "met" and row["exceeded_by"] is None and row["actual"] < 20
    assert "phase 'quick': deadline 20.0s (rollback), took" in tminus("show", run_id, cwd=tmp_path).stdout


def test_rollback_action_stops_the_step_and_rolls_back(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: dl
        phases:
          - name: slow
            deadline: {after: 1s, action: rollback}
            steps:
              - run: "echo start >> log; sleep 20; echo end >> log"
                undo: [{run: "echo undo >> log"}]
              - run: "echo never >> log"
    """)
    started = time.monotonic()
    proc = tminus("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert proc.returncode == 11, proc.stderr
    assert time.monotonic() - started < 15  # the sleep was stopped, not waited for
    assert lines(tmp_path / "log") == ["start", "undo"]
    run_id = _last_run(tmp_path)
    (stop,) = _events(tmp_path, run_id, "run.stop")
    assert stop["data"]["mode"] == "rollback" and stop["data"]["by"] == "policy:deadlines"
    assert _deadline(tmp_path, run_id, "phase:slow")["outcome"] == "rollback"


PAUSE = """
    name: dl
    phases:
      - name: slow
        deadline: {after: 1s, action: pause}
        steps:
          - run: "sleep 2"
            undo: [{run: "echo undo >> log"}]
          - run: "echo next >> log"
"""


def test_pause_under_no_input_needs_an_operator_and_resume_asks_again(tmp_path: Path) -> None:
    write_runbook(tmp_path, PAUSE)
    proc = tminus("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert proc.returncode == 15, proc.stderr
    assert "--no-input means nobody can answer" in proc.stderr
    assert lines(tmp_path / "log") == []  # the next step did not start
    run_id = _last_run(tmp_path)
    why = tminus("why", run_id, cwd=tmp_path).stdout
    assert "because a paused deadline got no answer" in why and "tminus resume" in why
    assert _deadline(tmp_path, run_id, "phase:slow")["state"] == "exceeded"
    again = tminus("resume", run_id, "--no-input", cwd=tmp_path)
    assert again.returncode == 15, again.stderr  # still nobody to answer: asked again, not forgotten
    done = tminus("resume", run_id, "--yes", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert lines(tmp_path / "log") == ["next"]
    assert len(_events(tmp_path, run_id, "deadline.exceeded")) == 1  # raised once, across three processes
    outcomes = [e["data"]["outcome"] for e in _events(tmp_path, run_id, "deadline.answered")]
    assert outcomes == ["needs_operator", "needs_operator", "continue"]


def test_pause_answered_no_go_from_another_terminal_rolls_back(tmp_path: Path) -> None:
    write_runbook(tmp_path, PAUSE)
    proc = spawn("run", "runbook.yaml", cwd=tmp_path)
    run_id = wait_for_approval_request(tmp_path, "deadline:phase:slow")
    answer = tminus("approve", run_id, "--step", "deadline:phase:slow", "--no-go", "--reason", "too slow",
                    cwd=tmp_path)
    assert answer.returncode == 0, answer.stderr
    assert proc.wait(timeout=30) == 11
    assert lines(tmp_path / "log") == ["undo"]
    row = _deadline(tmp_path, run_id, "phase:slow")
    assert row["outcome"] == "rollback" and row["answered_by"] == "tester"


def test_the_rollback_deadline_tells_and_cannot_roll_back_again(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: dl
        phases:
          - name: broken
            steps: [{run: "false"}]
        rollback:
          steps: [{run: "sleep 2; echo rolled >> log"}]
          deadline: 1s
          action: pause
    """)
    proc = tminus("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert proc.returncode == 11, proc.stderr  # nobody can answer a pause: the undo goes on
    assert lines(tmp_path / "log") == ["rolled"]
    run_id = _last_run(tmp_path)
    row = _deadline(tmp_path, run_id, "rollback")
    assert row["state"] == "exceeded" and row["deadline"] == 1.0
    bad = tmp_path / "bad"
    bad.mkdir()
    write_runbook(bad, """
        name: dl
        phases: [{name: p, steps: [{run: "true"}]}]
        rollback: {steps: [{run: "true"}], deadline: 1h, action: rollback}
    """)
    refused = tminus("validate", "runbook.yaml", cwd=bad)
    assert refused.returncode == 78
    assert "runbook.yaml:3:" in refused.stderr and "cannot roll back again" in refused.stderr


def test_downtime_from_one_step_to_another(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: dl
        downtime: {from: maintenance_on, to: maintenance_off, deadline: 1s}
        phases:
          - name: before
            steps: [{run: "sleep 1"}]
          - name: window
            steps:
              - {id: maintenance_on, run: "true"}
              - run: "sleep 1.5"
              - {id: maintenance_off, run: "true"}
    """)
    proc = tminus("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_id = _last_run(tmp_path)
    row = _deadline(tmp_path, run_id, "downtime")
    # measured from maintenance_on's start, not the run's: the first phase's second is not in it
    assert row["state"] == "exceeded" and 1.4 < row["actual"] < 2.4, row
    assert [e["data"]["deadline"] for e in _events(tmp_path, run_id, "deadline.exceeded")] == ["downtime"]


def test_a_crash_does_not_restart_the_clock(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: dl
        phases:
          - name: slow
            deadline: {after: 4s, action: rollback}
            steps:
              - {run: "sleep 1", idempotent: true}
              - run: "echo second >> log; sleep 30"
                idempotent: true
                undo: [{run: "echo undo >> log"}]
    """)
    crashed = tminus("run", "runbook.yaml", "--no-input", cwd=tmp_path,
                     env={"TMINUS_TEST_CRASH_AT": "step.finished:1"})
    assert crashed.returncode == -9
    time.sleep(1.5)  # the clock runs while nobody watches
    run_id = _last_run(tmp_path)
    resumed = tminus("resume", run_id, "--no-input", cwd=tmp_path)
    assert resumed.returncode == 11, resumed.stderr
    _code, shown = run_json("show", run_id, cwd=tmp_path)
    at = {e["type"]: e["at"] for e in reversed(shown["events"])}  # the first of each type
    def t(name: str) -> float:
        from datetime import datetime
        return datetime.fromisoformat(at[name]).timestamp()
    from_start = t("deadline.exceeded") - t("section.started")
    # raised 4s after the phase first started; a clock restarted by the resume would say 4s after it
    resumed_at = t("run.resumed") - t("section.started")
    assert 4.0 <= from_start < 4.0 + resumed_at, from_start
    # and raised at once: at the deadline, or as soon as the resumed run was back if that was later
    # (on a busy machine the crashed run's exit and the resume's start-up can take longer than 4 s)
    assert from_start < max(4.0, resumed_at) + 1.5, (from_start, resumed_at)
    assert lines(tmp_path / "log") == ["second", "undo"]


def test_templated_durations_from_var_and_var_file(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: dl
        vars: {limit: 1h, seconds: 1}
        phases:
          - name: slow
            deadline: {after: "{{ vars.limit }}", action: rollback}
            steps:
              - run: "sleep 2; echo done >> log"
                timeout: "{{ vars.seconds * 10 }}s"
                undo: [{run: "echo undo >> log"}]
    """)
    (tmp_path / "vars.yaml").write_text("limit: 1s\n")
    proc = tminus("run", "runbook.yaml", "--no-input", "--var-file", "vars.yaml", cwd=tmp_path)
    assert proc.returncode == 11, proc.stderr  # the file's 1s, not the default hour
    assert lines(tmp_path / "log") == ["undo"]
    (tmp_path / "log").unlink()
    proc = tminus("run", "runbook.yaml", "--no-input", "--var", "limit=20s", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # timeout 10s, deadline 20s: both hold
    assert lines(tmp_path / "log") == ["done"]
    plan = tminus("plan", "runbook.yaml", "--var", "limit=90m", cwd=tmp_path)
    assert "phase 'slow': 1h30m → rollback" in plan.stdout
    bad = tminus("run", "runbook.yaml", "--no-input", "--var", "limit=soon", cwd=tmp_path)
    assert bad.returncode == 78
    assert "runbook.yaml:5:16: after is '{{ vars.limit }}', which renders to 'soon'" in bad.stderr
    assert run_json("history", cwd=tmp_path)[1][0]["status"] == "completed"  # nothing recorded for it


def test_no_go_to_a_paused_rollback_stops_it_where_it_is_and_resume_finishes_it(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: dl
        phases:
          - name: broken
            steps: [{run: "false"}]
        rollback:
          steps:
            - run: "sleep 2; echo first >> log"
            - run: "echo second >> log"
          deadline: 1s
          action: pause
    """)
    proc = spawn("run", "runbook.yaml", cwd=tmp_path)
    run_id = wait_for_approval_request(tmp_path, "deadline:rollback")
    assert tminus("approve", run_id, "--step", "deadline:rollback", "--no-go", cwd=tmp_path).returncode == 0
    assert proc.wait(timeout=30) == 12  # stopped where it was: resumable
    assert lines(tmp_path / "log") == ["first"]
    assert _deadline(tmp_path, run_id, "rollback")["outcome"] == "abort"
    done = tminus("resume", run_id, "--no-input", cwd=tmp_path)
    assert done.returncode == 11, done.stderr  # the answer stands: not asked again
    assert lines(tmp_path / "log") == ["first", "second"]
    assert len(_events(tmp_path, run_id, "deadline.exceeded")) == 1


def test_a_pause_left_by_a_phase_that_fails_is_not_asked_on_the_undo_path(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: dl
        phases:
          - name: slow
            deadline: {after: 1s, action: pause}
            steps:
              - run: "sleep 2; false"
                undo: [{run: "echo undo >> log"}]
    """)
    proc = tminus("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert proc.returncode == 11, proc.stderr  # the failure rolls back; no operator is needed for that
    assert lines(tmp_path / "log") == ["undo"]
    run_id = _last_run(tmp_path)
    (answer,) = _events(tmp_path, run_id, "deadline.answered")
    assert answer["data"]["outcome"] == "told" and "rolling back" in answer["data"]["reason"]


def test_downtime_ends_in_an_after_go_phase_and_a_finalize_phase_has_its_deadline(tmp_path: Path) -> None:
    """002: the outage lasts from maintenance on (a phase) to maintenance off (after the go)."""
    write_runbook(tmp_path, """
        name: dl
        downtime: {from: maintenance_on, to: maintenance_off, deadline: 30s}
        phases:
          - name: before
            steps: [{run: "sleep 0.5"}]
          - name: window
            steps:
              - {id: maintenance_on, run: "true"}
              - run: "sleep 0.5"
        after_go:
          - name: open up
            steps:
              - run: "sleep 0.5"
              - {id: maintenance_off, run: "true"}
        finalize:
          - name: retire
            deadline: 1s
            steps: [{run: "sleep 1.5"}]
    """)
    proc = tminus("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_id = _last_run(tmp_path)
    down = _deadline(tmp_path, run_id, "downtime")
    # from maintenance_on's start to maintenance_off's end: the window's and the after_go's sleeps
    assert down["state"] == "met" and 0.9 < down["actual"] < 5, down
    retire = _deadline(tmp_path, run_id, "finalize:retire")
    assert retire["state"] == "exceeded" and retire["actual"] >= 1.4, retire
    assert [e["data"]["deadline"] for e in _events(tmp_path, run_id, "deadline.exceeded")] == ["finalize:retire"]
    plan = run_json("plan", "runbook.yaml", cwd=tmp_path)[1]
    assert {d["id"] for d in plan["deadlines"]} == {"downtime", "finalize:retire"}


def test_a_downtime_naming_an_unknown_id_lists_every_kind_of_phase(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: dl
        downtime: {from: maintenance_on, to: maintenance_of, deadline: 4h}
        phases:
          - name: window
            steps: [{id: maintenance_on, run: "true"}]
        after_go:
          - name: open up
            steps: [{id: maintenance_off, run: "true"}]
    """)
    proc = tminus("validate", "runbook.yaml", cwd=tmp_path)
    assert proc.returncode == 78
    assert "downtime to 'maintenance_of' is not the id of a phase" in proc.stderr
    assert "maintenance_off" in proc.stderr  # the near miss, found in after_go
