"""`tminus why` and `show`'s sections summary on runs a stop request ended, recorded by a real
in-process Session (real SQLite ledger, real `run:` steps): a policy that rolls back after a phase,
one that aborts before a step, a guard that stops a running step, an abort during the rollback and
an interrupt. The cause must be the stop (who asked, the mode, the reason, when, what it did), never
the run's reason repeated, and a stopped step must be named as stopped, not as failed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import wait_for, write_runbook
from tests.integration.test_lifecycle_policy import THREE_PHASES, AfterPhase, BeforeStep, session

from tminus.engine.policy import Policies, Policy
from tminus.ledger import open_ledger
from tminus.projection import project
from tminus.reports import sections
from tminus.reports.why import explain

SLOW = """
    name: guarded
    phases:
      - name: first
        steps:
          - run: "touch first"
            undo: [{run: "rm first"}]
      - name: long
        steps:
          - name: slow step
            run: "touch started; sleep 30"
            undo: [{run: "true"}]
"""


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("TMINUS_LEDGER_KEY", raising=False)
    with open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as opened:
        yield opened


def explained(ledger: Any, run_id: str) -> Any:
    return explain(ledger.get_run(run_id), ledger.events(run_id))


def test_a_policy_rollback_after_a_phase_is_the_cause(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, THREE_PHASES)
    s = session(tmp_path, ledger, AfterPhase(1, "rollback"))
    assert s.run().status == "rolled_back"
    x = explained(ledger, s.run_id)
    (cause,) = x.causes
    assert cause.kind == "stop"
    assert cause.text.endswith("policy 'rehearsal' asked for a rollback after phase 'two' finished: "
                               "injected failure after phase 1.")
    assert cause.text.startswith("At ") and "(T+" in cause.text
    assert cause.details == ["Phase 'two' had finished ok; no step was running."]
    assert cause.data | {"mode": "rollback", "by": "policy:rehearsal", "policy": "rehearsal",
                         "hook": "after_section", "section": "phase:two"} == cause.data
    assert x.summary.startswith(f"Run {s.run_id} rolled back because policy 'rehearsal' asked for a rollback "
                                "after phase 'two' finished (injected failure after phase 1); 2 undo/rollback")
    assert [u["status"] for u in x.undone] == ["ok", "ok"]
    d = x.to_dict()["causes"][0]
    assert d["kind"] == "stop" and d["tplus"].startswith("T+") and d["mode"] == "rollback"


def test_a_policy_abort_before_a_step_says_the_step_never_started(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, THREE_PHASES)
    s = session(tmp_path, ledger, Policies([Policy(), BeforeStep("phases[1].steps[0]", "abort")]))
    assert s.run().status == "aborted"
    x = explained(ledger, s.run_id)
    (cause,) = x.causes
    assert cause.kind == "stop" and "(stop: abort" not in cause.text + "".join(cause.details)
    assert cause.text.endswith("policy 'guard' asked for an abort before step phases[1].steps[0] (phase 'two') "
                               "started: not this step.")
    assert cause.details == ["In phase 'two', step phases[1].steps[0] never started; nothing of it ran."]
    assert x.summary == (f"Run {s.run_id} was aborted because policy 'guard' asked for an abort before step "
                         "phases[1].steps[0] (phase 'two') started (not this step); nothing was undone.")
    rows = {r.id: r for r in sections.summarize(project(ledger.events(s.run_id)))}
    assert (rows["phase:two"].status, rows["phase:two"].stopped, rows["phase:two"].stopped_by) == (
        "stopped", "abort", "policy 'guard'")
    assert rows["phase:one"].steps == {"ok": 1}


def _stop_when_started(tmp_path: Path, s: Any, mode: str, reason: str, by: str) -> threading.Thread:
    def ask() -> None:
        wait_for(lambda: (tmp_path / "started").exists())
        s.request_stop(mode, reason, by)

    thread = threading.Thread(target=ask)
    thread.start()
    return thread


def test_a_guard_that_stops_a_running_step_names_the_step_as_stopped(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, SLOW)
    s = session(tmp_path, ledger)
    thread = _stop_when_started(tmp_path, s, "rollback", "the error budget is spent", "guard")
    assert s.run().status == "rolled_back"
    thread.join()
    x = explained(ledger, s.run_id)
    (cause,) = x.causes
    assert cause.kind == "stop" and cause.text.endswith("guard asked for a rollback: the error budget is spent.")
    assert cause.details == ["Step 'slow step' (phase 'long', phases[1].steps[0]) was running: it was stopped "
                             "(recorded as failed) and counts as touched: its undo is part of the rollback."]
    assert "failed" not in x.summary.replace("recorded as failed", "")
    rows = {r.id: r for r in sections.summarize(project(ledger.events(s.run_id)))}
    assert rows["phase:long"].steps == {"stopped": 1} and rows["phase:long"].stopped == "rollback"
    assert [u["status"] for u in rows["rollback"].undone] == ["ok", "ok"]


def test_an_abort_during_the_rollback_is_a_second_cause_and_the_undo_step_is_stopped(tmp_path: Path,
                                                                                     ledger: Any) -> None:
    write_runbook(tmp_path, """
        name: abort-undo
        phases:
          - name: one
            steps:
              - run: "touch one"
                undo:
                  - name: slow undo
                    run: "touch started; sleep 30; rm one"
    """)
    s = session(tmp_path, ledger, AfterPhase(0, "rollback"))
    thread = _stop_when_started(tmp_path, s, "abort", "stop touching things", "ops")
    assert s.run().status == "rollback_failed"
    thread.join()
    x = explained(ledger, s.run_id)
    first, halted = x.causes
    assert first.kind == halted.kind == "stop"
    assert "policy 'rehearsal' asked for a rollback after phase 'one' finished" in first.text
    assert halted.text.endswith("ops asked for an abort: stop touching things.")
    assert halted.details == ["Step 'slow undo' (undo of phase 'one', phases[0].steps[0].undo[0]) was running: "
                              "it was stopped (recorded as failed); nothing is undone."]
    (undo,) = x.undone
    assert undo["status"] == "stopped"
    assert undo["text"].endswith("'slow undo' (undo of phase 'one'): stopped. An abort by ops stopped it before "
                                 "it finished: it may be half undone.")
    assert "ops asked for an abort (stop touching things) during it at 'slow undo'" in x.summary


def test_an_interrupt_request_is_the_cause_of_an_interrupted_run(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, SLOW)
    s = session(tmp_path, ledger)
    thread = _stop_when_started(tmp_path, s, "interrupt", "maintenance window closed", "ops")
    assert s.run().status == "interrupted"
    thread.join()
    x = explained(ledger, s.run_id)
    stop, running = x.causes
    assert stop.kind == "stop" and stop.text.endswith("ops asked for an interrupt: maintenance window closed.")
    assert stop.details == ["Step 'slow step' (phase 'long', phases[1].steps[0]) was running: it was cut short; "
                            "`tminus resume` decides what to do with it."]
    assert running.kind == "interrupted"
    assert x.summary.endswith("while step 'slow step' was running because ops asked for an interrupt "
                              "(maintenance window closed); nothing is lost and it can be resumed.")
