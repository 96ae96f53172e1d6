"""The lifecycle, the stop channel and policies, driven in-process through the Session with a real
SQLite ledger and real `run:` steps. Marker files created by steps and removed by their undo (and a
log of who ran) show exactly what ran and what was undone; the undo of a phase that never ran fails
(`rm` of a missing file), so a rollback that undid too much ends rollback_failed instead of passing."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import THREE_PHASES, events, lines, session, wait_for, write_runbook

from tminus import events as ev
from tminus.engine.lifecycle import Section, SectionResult
from tminus.engine.policy import CONTINUE, Decision, Policies, Policy, stop
from tminus.engine.runner import RunResult
from tminus.ledger import open_ledger
from tminus.runbook.models import Step


class AfterPhase(Policy):
    """A rehearsal fault: stop right after phase `index` with `mode`."""

    name = "rehearsal"

    def __init__(self, index: int, mode: str) -> None:
        self.index, self.mode = index, mode

    def after_section(self, section: Section, result: SectionResult) -> Decision:
        if section.kind == "phase" and section.index == self.index:
            return stop(self.mode, f"injected failure after phase {self.index}")
        return CONTINUE


class BeforeStep(Policy):
    name = "guard"

    def __init__(self, key: str, mode: str) -> None:
        self.key, self.mode = key, mode

    def before_step(self, step: Step, section: Section) -> Decision:
        return stop(self.mode, "not this step") if step.key == self.key else CONTINUE


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("TMINUS_LEDGER_KEY", raising=False)
    with open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as opened:
        yield opened


def test_a_policy_rolls_back_after_a_phase_exactly_what_ran(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, THREE_PHASES)
    s = session(tmp_path, ledger, AfterPhase(1, "rollback"))
    result = s.run()
    assert (result.status, int(result.exit)) == ("rolled_back", 11), result.reason
    assert lines(tmp_path / "log") == ["one", "two", "undo-two", "undo-one"]
    assert not any((tmp_path / m).exists() for m in ("one", "two", "three"))
    assert "rollback requested by policy:rehearsal: injected failure after phase 1" in result.reason
    (applied,) = events(ledger, s.run_id, ev.POLICY_APPLIED)
    assert applied.data.items() >= {"policy": "rehearsal", "hook": "after_section", "section": "phase:two",
                                 "kind": "phase", "name": "two", "decision": "rollback"}.items()
    (request,) = events(ledger, s.run_id, ev.STOP_REQUESTED)
    assert request.data.items() >= {"mode": "rollback", "by": "policy:rehearsal", "accepted": True,
                                 "reason": "injected failure after phase 1"}.items()
    types = [e.type for e in ledger.events(s.run_id)]
    assert types.index(ev.POLICY_APPLIED) < types.index(ev.STOP_REQUESTED) < types.index(ev.ROLLBACK_STARTED)
    assert ledger.get_run(s.run_id).status == "rolled_back"


def test_a_policy_abort_ends_the_run_with_nothing_undone(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, THREE_PHASES)
    s = session(tmp_path, ledger, AfterPhase(1, "abort"))
    result = s.run()
    assert (result.status, int(result.exit)) == ("aborted", 13), result.reason
    assert lines(tmp_path / "log") == ["one", "two"]
    assert (tmp_path / "one").exists() and (tmp_path / "two").exists()
    assert not events(ledger, s.run_id, ev.ROLLBACK_STARTED)
    (request,) = events(ledger, s.run_id, ev.STOP_REQUESTED)
    assert request.data["mode"] == "abort"


def test_a_kill_switch_rolls_back_and_says_so(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, THREE_PHASES)
    s = session(tmp_path, ledger, AfterPhase(0, "kill_switch"))
    result = s.run()
    assert (result.status, int(result.exit)) == ("rolled_back", 11), result.reason
    assert result.reason.startswith("kill switch by policy:rehearsal")
    assert lines(tmp_path / "log") == ["one", "undo-one"]
    (started,) = events(ledger, s.run_id, ev.ROLLBACK_STARTED)
    assert "kill switch" in started.data["reason"]


def test_a_before_step_abort_keeps_the_step_from_starting(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, THREE_PHASES)
    s = session(tmp_path, ledger, Policies([Policy(), BeforeStep("phases[1].steps[0]", "abort")]))
    result = s.run()
    assert (result.status, int(result.exit)) == ("aborted", 13), result.reason
    assert lines(tmp_path / "log") == ["one"]
    started = [e.step_key for e in events(ledger, s.run_id, ev.STEP_STARTED)]
    assert started == ["phases[0].steps[0]"]
    (applied,) = events(ledger, s.run_id, ev.POLICY_APPLIED)
    assert applied.step_key == "phases[1].steps[0]"
    assert applied.data.items() >= {"policy": "guard", "hook": "before_step", "section": "phase:two",
                                 "step": "phases[1].steps[0]", "decision": "abort"}.items()


def test_a_stop_from_another_thread_kills_the_running_step_then_rolls_back(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, """
        name: guarded
        phases:
          - name: first
            steps:
              - run: "touch first; echo first >> log"
                undo: [{run: "rm first; echo undo-first >> log"}]
          - name: long
            steps:
              - run: "echo $$ > pgid; touch started; sleep 30"
                undo: [{run: "echo undo-long >> log"}]
              - run: "echo never >> log"
    """)
    s = session(tmp_path, ledger)
    asked: list[float] = []

    def guard() -> None:
        wait_for(lambda: (tmp_path / "started").exists())
        asked.append(time.monotonic())
        assert s.request_stop("rollback", "the error budget is spent", "guard")

    thread = threading.Thread(target=guard)
    thread.start()
    result = s.run()
    ended = time.monotonic()
    thread.join()
    assert (result.status, int(result.exit)) == ("rolled_back", 11), result.reason
    assert ended - asked[0] < 5  # not the 30 s of the step
    pgid = int((tmp_path / "pgid").read_text())

    def gone() -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, timeout=3)
    # the stopped step counts as touched: its undo ran, then the first phase's
    assert lines(tmp_path / "log") == ["first", "undo-long", "undo-first"]
    (stopped,) = [e for e in events(ledger, s.run_id, ev.STEP_FINISHED) if e.step_key == "phases[1].steps[0]"]
    assert stopped.data["status"] == "failed" and "stopped: rollback requested by guard" in stopped.data["message"]
    (request,) = events(ledger, s.run_id, ev.STOP_REQUESTED)
    assert request.data.items() >= {"mode": "rollback", "by": "guard", "accepted": True}.items()


def test_a_stop_during_the_rollback_starts_no_second_rollback(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, """
        name: slow-undo
        phases:
          - name: one
            steps:
              - run: "touch one; echo one >> log"
                undo:
                  - run: "test -e undoing || { touch undoing; sleep 30; }; rm one; echo undo-one >> log"
                    idempotent: true
    """)
    s = session(tmp_path, ledger, AfterPhase(0, "rollback"))
    outcomes: list[bool] = []

    def during_rollback() -> None:
        wait_for(lambda: (tmp_path / "undoing").exists())
        outcomes.append(s.request_stop("kill_switch", "pressed twice", "ops"))
        outcomes.append(s.request_stop("interrupt", "operator break", "ops"))

    thread = threading.Thread(target=during_rollback)
    thread.start()
    result = s.run()
    thread.join()
    assert outcomes == [False, True]
    assert (result.status, int(result.exit)) == ("interrupted", 130), result.reason
    assert len(events(ledger, s.run_id, ev.ROLLBACK_STARTED)) == 1
    stops = [(e.data["mode"], e.data["accepted"], e.data.get("note"))
             for e in events(ledger, s.run_id, ev.STOP_REQUESTED)]
    assert stops == [("rollback", True, None), ("kill_switch", False, "the run is already rolling back"),
                     ("interrupt", True, None)]
    # resumable: the rollback continues where it stopped, once
    again = session(tmp_path, ledger).resume(ledger.get_run(s.run_id))
    assert (again.status, int(again.exit)) == ("rolled_back", 11), again.reason
    assert lines(tmp_path / "log") == ["one", "undo-one"]


def test_an_abort_during_the_rollback_leaves_it_resumable(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, """
        name: abort-undo
        phases:
          - name: one
            steps:
              - run: "touch one; echo one >> log"
                undo:
                  - run: "test -e undoing || { touch undoing; sleep 30; }; rm one; echo undo-one >> log"
    """)
    s = session(tmp_path, ledger, AfterPhase(0, "rollback"))
    thread = threading.Thread(target=lambda: (wait_for(lambda: (tmp_path / "undoing").exists()),
                                              s.request_stop("abort", "stop touching things", "ops")))
    thread.start()
    result = s.run()
    thread.join()
    assert (result.status, int(result.exit)) == ("rollback_failed", 12), result.reason
    assert "the rollback was stopped (abort requested by ops" in result.reason
    assert (tmp_path / "one").exists()  # not undone
    (finished,) = events(ledger, s.run_id, ev.ROLLBACK_FINISHED)
    assert finished.data["ok"] is False and finished.data["stopped"] == "abort"
    again = session(tmp_path, ledger).resume(ledger.get_run(s.run_id))
    assert (again.status, int(again.exit)) == ("rolled_back", 11), again.reason
    assert not (tmp_path / "one").exists()


def _sections(ledger: Any, run_id: str, type_: str) -> list[tuple[str, str, str]]:
    return [(e.data["section"], e.data["kind"], e.data["name"]) for e in events(ledger, run_id, type_)]


def test_a_completed_run_lists_each_section_once_in_lifecycle_order(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, THREE_PHASES.replace("name: marked", "name: marked\n    gates:\n      - name: ready\n"
                                                 "        checks: [{run: 'true'}]"))
    s = session(tmp_path, ledger)
    result = s.run()
    assert result.status == "completed", result.reason
    expected = [("gates", "gates", ""), ("phase:one", "phase", "one"), ("phase:two", "phase", "two"),
                ("phase:three", "phase", "three"), ("verify", "verify", ""), ("decision", "decision", "")]
    assert _sections(ledger, s.run_id, ev.SECTION_STARTED) == expected
    assert _sections(ledger, s.run_id, ev.SECTION_FINISHED) == expected
    assert all(e.data["status"] == "ok" for e in events(ledger, s.run_id, ev.SECTION_FINISHED))
    assert not events(ledger, s.run_id, ev.POLICY_APPLIED)  # the default policy records nothing
    assert not events(ledger, s.run_id, ev.STOP_REQUESTED)


def test_a_resumed_run_does_not_rerun_a_section_that_finished_ok(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, THREE_PHASES)
    first = session(tmp_path, ledger, AfterPhase(0, "interrupt"))
    result = first.run()
    assert (result.status, int(result.exit)) == ("interrupted", 130), result.reason
    assert ledger.get_run(first.run_id).status == "interrupted"
    resumed: RunResult = session(tmp_path, ledger).resume(ledger.get_run(first.run_id))
    assert resumed.status == "completed", resumed.reason
    assert lines(tmp_path / "log") == ["one", "two", "three"]
    # the resumed attempt started at phase two: gates and phase one had finished ok
    everything = ledger.events(first.run_id)
    resumed_at = next(i for i, e in enumerate(everything) if e.type == ev.RUN_RESUMED)
    after = [e.data["section"] for e in everything[resumed_at:] if e.type == ev.SECTION_STARTED]
    assert after == ["phase:two", "phase:three", "verify", "decision"]


class Deadline(Policy):
    """A guard as a policy: a timer started with the run asks for a rollback when it expires."""

    name = "deadline"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.timer: threading.Timer | None = None

    def start(self, channel: Any) -> None:
        self.timer = threading.Timer(self.seconds, channel.request,
                                     args=("rollback", f"deadline of {self.seconds:g}s passed", "policy:deadline"))
        self.timer.start()

    def finish(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


def test_a_deadline_guard_is_a_policy_that_stops_the_running_step(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, """
        name: deadline
        phases:
          - name: slow
            steps:
              - run: "echo slow >> log; sleep 30"
                undo: [{run: "echo undo-slow >> log"}]
    """)
    s = session(tmp_path, ledger, Deadline(0.5))
    started = time.monotonic()
    result = s.run()
    assert time.monotonic() - started < 10
    assert (result.status, int(result.exit)) == ("rolled_back", 11), result.reason
    assert "deadline of 0.5s passed" in result.reason
    assert lines(tmp_path / "log") == ["slow", "undo-slow"]
    (request,) = events(ledger, s.run_id, ev.STOP_REQUESTED)
    assert request.data["by"] == "policy:deadline"
    (section,) = [e for e in events(ledger, s.run_id, ev.SECTION_FINISHED) if e.data["section"] == "phase:slow"]
    assert section.data["status"] == "stopped" and section.data["stopped"] == "rollback"
