"""After-go and finalize phases (issue 11): a failure after the go does not roll back a live
cutover: the run ends not finalized (exit 16), naming what is not done, and `tminus resume` finishes
it without running a done step twice, after a kill -9 too; an after_go phase may roll back instead;
a monitor rule that fires undoes the after_go phases that ran; `tminus rollback` undoes all."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.helpers import lines, run_json, spawn, tminus, write_runbook

LIVE = """
    name: live
    phases:
      - name: switch
        steps: [{run: "echo switch >> log", undo: [{run: "echo undo-switch >> log"}]}]
    after_go:
      - name: doors
        {after_go_failure}
        steps:
          - run: "echo doors >> log"
            undo: [{run: "echo undo-doors >> log"}]
          - name: flaky doors
            run: "echo try-doors >> log; test -f doors-ok"
    {monitor}
    finalize:
      - name: retire
        steps:
          - run: "echo stop-blue >> log"
            undo: [{run: "echo undo-stop-blue >> log"}]
          - name: flaky cleanup
            run: "echo try-cleanup >> log; test -f cleanup-ok"
            undo: [{run: "echo undo-cleanup >> log"}]
          - run: "echo announce >> log"
"""

MONITOR = """monitor:
      duration: 1s
      interval: 100ms
      probes:
        - name: alive
          run: "echo probe >> probes; test ! -f broken"
      rules:
        - name: broken
          when: "exit_code != 0"
          consecutive: 2"""


def _write(tmp_path: Path, *, after_go_failure: str = "", monitor: str = "") -> None:
    write_runbook(tmp_path, LIVE.replace("{after_go_failure}", after_go_failure).replace("{monitor}", monitor))
    (tmp_path / "doors-ok").touch()


def _status(tmp_path: Path) -> str:
    code, history = run_json("history", cwd=tmp_path)
    assert code == 0
    return str(history[0]["status"])


def test_a_finalize_failure_leaves_the_cutover_live_and_resume_finishes_it(tmp_path: Path) -> None:
    _write(tmp_path)
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 16 and result["status"] == "not_finalized", result
    assert lines(tmp_path / "log") == ["switch", "doors", "try-doors", "stop-blue", "try-cleanup"]  # nothing undone
    reason = result["reason"]
    assert "nothing is rolled back" in reason
    assert "'flaky cleanup' (finalize[0].steps[1]) failed" in reason
    assert "(finalize[0].steps[2]) not run" in reason
    assert "stop-blue" not in reason and "finalize[0].steps[0])" not in reason  # done: not listed
    assert _status(tmp_path) == "not_finalized"
    why = tminus("why", result["run_id"], cwd=tmp_path)
    assert "COMPLETED, NOT FINALIZED (exit 16)" in why.stdout and "flaky cleanup" in why.stdout
    show = tminus("show", result["run_id"], cwd=tmp_path)
    assert "finalize:retire" in show.stdout and "after-go:doors" in show.stdout

    status = tminus("status", cwd=tmp_path)
    assert "not finalized: resume it" in status.stdout and f"tminus resume {result['run_id']}" in status.stdout

    (tmp_path / "cleanup-ok").touch()
    code, resumed = run_json("resume", result["run_id"], "--no-input", cwd=tmp_path)
    assert code == 0 and resumed["status"] == "completed", resumed
    assert lines(tmp_path / "log") == ["switch", "doors", "try-doors", "stop-blue", "try-cleanup",
                                       "try-cleanup", "announce"]  # only what was not done
    assert tminus("ledger", "verify", cwd=tmp_path).returncode == 0


def test_an_after_go_failure_stops_before_the_window_and_resume_watches_then_finalizes(tmp_path: Path) -> None:
    _write(tmp_path, monitor=MONITOR)
    (tmp_path / "doors-ok").unlink()
    (tmp_path / "cleanup-ok").touch()
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 16, result
    assert "the monitor window has not run" in result["reason"]
    assert "(finalize[0].steps[0]) not run" in result["reason"]
    assert not (tmp_path / "probes").exists()
    assert lines(tmp_path / "log") == ["switch", "doors", "try-doors"]
    (tmp_path / "doors-ok").touch()
    code, resumed = run_json("resume", result["run_id"], "--no-input", cwd=tmp_path)
    assert code == 0, resumed
    assert "the monitor window passed" in resumed["reason"]
    assert lines(tmp_path / "log") == ["switch", "doors", "try-doors", "try-doors", "stop-blue", "try-cleanup",
                                       "announce"]
    assert len(lines(tmp_path / "probes")) >= 5  # the window ran before finalize


def test_an_after_go_phase_with_on_failure_rollback_undoes_what_it_did(tmp_path: Path) -> None:
    _write(tmp_path, after_go_failure="on_failure: rollback")
    (tmp_path / "doors-ok").unlink()
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 11 and result["status"] == "rolled_back", result
    assert lines(tmp_path / "log") == ["switch", "doors", "try-doors", "undo-doors", "undo-switch"]


def test_a_monitor_rollback_undoes_the_after_go_phases_and_never_finalizes(tmp_path: Path) -> None:
    _write(tmp_path, monitor=MONITOR)
    (tmp_path / "broken").touch()
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 11, result
    assert lines(tmp_path / "log") == ["switch", "doors", "try-doors", "undo-doors", "undo-switch"]


def test_rollback_of_a_completed_run_undoes_finalize_after_go_and_phases(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / "cleanup-ok").touch()
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 0, result
    code, back = run_json("rollback", result["run_id"], "--reason", "orders failing", "--no-input", cwd=tmp_path)
    assert code == 11, back
    assert lines(tmp_path / "log")[-4:] == ["undo-cleanup", "undo-stop-blue", "undo-doors", "undo-switch"]


def test_rollback_of_a_run_not_finalized_undoes_the_failed_finalize_step_too(tmp_path: Path) -> None:
    _write(tmp_path)
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 16
    code, back = run_json("rollback", result["run_id"], "--reason", "give up", "--no-input", cwd=tmp_path)
    assert code == 11, back
    # the failed step may have half-acted: touched, undone; the step never run is not
    assert lines(tmp_path / "log")[-4:] == ["undo-cleanup", "undo-stop-blue", "undo-doors", "undo-switch"]


def test_killed_between_finalize_steps_resume_completes_without_running_one_twice(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / "cleanup-ok").touch()
    # step.finished: switch 1, doors 2, flaky doors 3, stop-blue 4: killed right after stop-blue
    proc = spawn("run", "runbook.yaml", "--no-input", cwd=tmp_path, env={"TMINUS_TEST_CRASH_AT": "step.finished:4"})
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert lines(tmp_path / "log") == ["switch", "doors", "try-doors", "stop-blue"]
    run_id = _run_id(tmp_path)
    code, resumed = run_json("resume", run_id, "--no-input", cwd=tmp_path)
    assert code == 0, resumed
    assert lines(tmp_path / "log") == ["switch", "doors", "try-doors", "stop-blue", "try-cleanup", "announce"]
    assert tminus("ledger", "verify", cwd=tmp_path).returncode == 0


def test_killed_inside_a_finalize_step_the_operator_chooses_under_no_input(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / "cleanup-ok").touch()
    # step.started: switch 1, doors 2, flaky doors 3, stop-blue 4, flaky cleanup 5: killed once its intent is recorded
    proc = spawn("run", "runbook.yaml", "--no-input", cwd=tmp_path, env={"TMINUS_TEST_CRASH_AT": "step.started:5"})
    assert proc.wait(timeout=60) == -signal.SIGKILL
    run_id = _run_id(tmp_path)
    refused = tminus("resume", run_id, "--no-input", cwd=tmp_path)
    assert refused.returncode == 15, refused.stderr
    assert "flaky cleanup" in refused.stderr and "finalize[0].steps[1]" in refused.stderr
    assert "--retry" in refused.stderr and "--skip" in refused.stderr
    code, resumed = run_json("resume", run_id, "--no-input", "--retry", cwd=tmp_path)
    assert code == 0, resumed
    assert lines(tmp_path / "log") == ["switch", "doors", "try-doors", "stop-blue", "try-cleanup", "announce"]


def test_killed_inside_finalize_resume_rollback_undoes_everything(tmp_path: Path) -> None:
    _write(tmp_path)
    proc = spawn("run", "runbook.yaml", "--no-input", cwd=tmp_path, env={"TMINUS_TEST_CRASH_AT": "step.started:5"})
    assert proc.wait(timeout=60) == -signal.SIGKILL
    code, back = run_json("resume", _run_id(tmp_path), "--no-input", "--rollback", "--reason", "abandon", cwd=tmp_path)
    assert code == 11, back
    # the interrupted step counts as touched: its undo runs, newest first, then after_go's and the phase's
    assert lines(tmp_path / "log")[-4:] == ["undo-cleanup", "undo-stop-blue", "undo-doors", "undo-switch"]


def test_a_manual_finalize_step_under_no_input_is_not_finalized_and_yes_finishes_it(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: announce
        phases:
          - name: switch
            steps: [{run: "echo switch >> log"}]
        finalize:
          - name: close
            steps:
              - name: status page green
                manual: "Set the status page to operational"
              - run: "echo closed >> log"
    """)
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 16, result
    assert "'status page green' (finalize[0].steps[0]) failed" in result["reason"]
    code, resumed = run_json("resume", result["run_id"], "--yes", cwd=tmp_path)
    assert code == 0, resumed
    assert lines(tmp_path / "log") == ["switch", "closed"]


def test_a_step_skipped_by_when_is_not_undone_nor_its_phase(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: conditional
        vars: {blue: false}
        phases:
          - name: switch
            steps: [{run: "echo switch >> log", undo: [{run: "echo undo-switch >> log"}]}]
          - name: blue phase
            steps: [{when: "vars.blue", run: "echo blue-phase >> log"}]
            undo: [{run: "echo undo-blue-phase-of-phases >> log"}]
        after_go:
          - name: blue only
            steps:
              - when: "vars.blue"
                run: "echo blue >> log"
                undo: [{run: "echo undo-blue >> log"}]
            undo: [{run: "echo undo-blue-phase >> log"}]
          - name: fails
            on_failure: rollback
            steps: [{run: "exit 1"}]
    """)
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 11, result
    assert lines(tmp_path / "log") == ["switch", "undo-switch"]


def test_validate_counts_the_phases_after_the_go(tmp_path: Path) -> None:
    _write(tmp_path)
    proc = tminus("validate", "runbook.yaml", cwd=tmp_path)
    assert proc.returncode == 0 and "1 phases, 1 after_go phases, 1 finalize phases, 10 steps" in proc.stdout
    code, summary = run_json("validate", "runbook.yaml", cwd=tmp_path)
    assert code == 0 and (summary["phases"], summary["after_go"], summary["finalize"]) == (1, 1, 1)


def test_plan_shows_the_phases_after_the_go_and_why_each_step_stands_where_it_does(tmp_path: Path) -> None:
    _write(tmp_path, monitor=MONITOR)
    proc = tminus("plan", "runbook.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.index("Decision") < out.index("After go") < out.index("Monitor") < out.index("Finalize")
    assert "reversed by its undo" in out and "NO UNDO: irreversible: run without undo" in out
    assert "Point of no return: flaky doors" in out and "after_go phase doors" in out
    code, plan = run_json("plan", "runbook.yaml", cwd=tmp_path)
    assert code == 0 and plan["point_of_no_return"]["section"] == "after_go"
    assert [s["why"] for s in plan["finalize"][0]["steps"]][1] == "reversed by its undo"


def _run_id(tmp_path: Path) -> str:
    _code, history = run_json("history", cwd=tmp_path)
    return str(history[0]["id"])
