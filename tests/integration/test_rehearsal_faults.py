"""The rehearsal's faults other than a failing step, with real parts: `run_killed` runs the runbook in a
real child process that SIGKILLs itself right after a phase (real SQLite and PostgreSQL ledgers, real `run:` steps
whose marker files show what ran and what was undone); `ForceMonitor` forces a monitor rule to fire
while a real HTTP backend answers healthy, in-process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import THREE_PHASES, events, lines, session, write_runbook
from tests.servers.backend import Backend

from tminus import events as ev
from tminus.engine.rehearsal.faults import FaultError, ForceMonitor, Killed, forced_reason, run_killed
from tminus.ledger import open_ledger
from tminus.ledger.records import RESUMABLE
from tminus.projection import project
from tminus.runbook.loader import load_runbook

MARKERS = ("one", "two", "three")


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("TMINUS_LEDGER_KEY", raising=False)  # the child inherits the environment
    monkeypatch.chdir(tmp_path)  # the child runs where the parent does; the steps in the runbook's folder
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(url: str) -> Iterator[Any]:
    with open_ledger(url) as opened:
        yield opened


def kill(tmp_path: Path, url: str, index: int, phase: str, **more: Any) -> Killed:
    return run_killed(tmp_path / "runbook.yaml", "default", url, phase_index=index, phase=phase,
                      operator="tester", timeout=more.pop("timeout", 30), **more)


def present(tmp_path: Path) -> list[str]:
    return [m for m in MARKERS if (tmp_path / m).exists()]


def sections(ledger: Any, run_id: str, type_: str) -> list[str]:
    return [e.data["section"] for e in events(ledger, run_id, type_)]


# --- kill -----------------------------------------------------------------------------------------

def test_kill_after_the_first_phase_leaves_it_done_the_rest_unstarted_and_the_run_resumable(
        tmp_path: Path, url: str, ledger: Any) -> None:
    write_runbook(tmp_path, THREE_PHASES)
    tags = {"rehearsal": {"id": "R1", "cycle": 0, "fault": "kill", "at": "one"}}
    began = time.time()
    killed = kill(tmp_path, url, 0, "one", tags=tags)
    assert killed.killed, killed
    assert killed.returncode == -9 and began < (killed.killed_at or 0) < time.time()
    assert killed.status == "running" and killed.status in RESUMABLE  # as after any kill -9
    assert present(tmp_path) == ["one"] and lines(tmp_path / "log") == ["one"]
    record = ledger.get_run(killed.run_id)
    assert record.status == "running" and record.kind == "run"
    # the kill came right after phase one's section.finished was in the ledger: nothing after it
    recorded = ledger.events(killed.run_id)
    assert recorded[-1].type == ev.SECTION_FINISHED and recorded[-1].data["section"] == "phase:one"
    assert datetime.fromisoformat(recorded[-1].at).timestamp() <= (killed.killed_at or 0)
    assert "phase:two" not in sections(ledger, killed.run_id, ev.SECTION_STARTED)
    (started,) = events(ledger, killed.run_id, ev.RUN_STARTED)
    assert started.data["rehearsal"] == tags["rehearsal"]
    view = project(ledger.events(killed.run_id))
    assert view.rehearsal is None  # a cycle's run is an ordinary run, tagged

    # the rehearsal rolls the crashed run back: exactly phase one is undone (two's undo would fail)
    result = session(tmp_path, ledger).rollback(ledger.get_run(killed.run_id), reason="rehearsal: kill cycle")
    assert (result.status, int(result.exit)) == ("rolled_back", 11), result.reason
    assert present(tmp_path) == [] and lines(tmp_path / "log") == ["one", "undo-one"]
    assert ledger.get_run(killed.run_id).status == "rolled_back"
    assert ledger.verify(killed.run_id) == []  # the chain is whole across the kill and the rollback


def test_kill_after_the_last_phase_on_postgresql_then_the_rollback_undoes_all_three(
        tmp_path: Path, url: str, pg_url: str) -> None:
    write_runbook(tmp_path, THREE_PHASES)
    killed = kill(tmp_path, pg_url, 2, "three")  # the child's connection dies with it, its lease stays
    assert killed.killed and killed.status == "running", killed
    assert present(tmp_path) == list(MARKERS)
    with open_ledger(pg_url) as ledger:
        assert "verify" not in sections(ledger, killed.run_id, ev.SECTION_STARTED)  # killed before verify
        result = session(tmp_path, ledger).rollback(ledger.get_run(killed.run_id), reason="rehearsal")
        assert result.status == "rolled_back", result.reason
        assert ledger.get_run(killed.run_id).status == "rolled_back"
    assert lines(tmp_path / "log") == ["one", "two", "three", "undo-three", "undo-two", "undo-one"]
    assert present(tmp_path) == []


BLOCKED = """
    name: blocked
    gates:
      - name: never
        checks:
          - run: "false"
    phases:
      - name: one
        steps:
          - run: "touch one"
"""

FAILING = """
    name: failing
    phases:
      - name: one
        steps:
          - run: "touch one; echo one >> log"
            undo: [{run: "rm one; echo undo-one >> log"}]
          - run: "exit 3"
      - name: two
        steps:
          - run: "touch two"
"""


@pytest.mark.parametrize(("text", "index", "phase", "status", "code"), [
    (BLOCKED, 0, "one", "blocked", 10),
    (FAILING, 1, "two", "rolled_back", 11),  # phase one's step fails: the phase to kill after never comes
    (FAILING, 0, "one", "rolled_back", 11),  # the phase itself failed: its real rollback, no kill
])
def test_a_child_that_never_reaches_the_phase_returns_its_real_outcome(
        tmp_path: Path, url: str, ledger: Any, text: str, index: int, phase: str, status: str, code: int) -> None:
    write_runbook(tmp_path, text)
    began = time.monotonic()
    killed = kill(tmp_path, url, index, phase, timeout=20)
    assert time.monotonic() - began < 10  # returned at once, not at the timeout
    assert not killed.killed and killed.killed_at is None, killed
    assert (killed.returncode, killed.status) == (code, status), killed
    assert ledger.get_run(killed.run_id).status == status
    assert not (tmp_path / "one").exists() and not (tmp_path / "two").exists()
    assert killed.reason


def test_a_child_past_its_timeout_is_stopped_resumably(tmp_path: Path, url: str, ledger: Any) -> None:
    write_runbook(tmp_path, """
        name: slow
        phases:
          - name: one
            steps:
              - run: "touch started; sleep 30"
    """)
    began = time.monotonic()
    killed = kill(tmp_path, url, 0, "one", timeout=3)
    assert time.monotonic() - began < 3 + 8  # the step's 30 s were not waited for
    assert not killed.killed and killed.returncode == 130, killed
    assert "did not reach the end of phase 'one' within 3s: stopped (SIGTERM)" in killed.reason
    if killed.status is None:  # a loaded machine: the child was still starting, and started nothing
        assert ledger.get_run(killed.run_id) is None and not (tmp_path / "started").exists()
    else:  # the step was stopped, the run left resumable
        assert killed.status == "interrupted" and killed.status in RESUMABLE, killed


def test_a_phase_the_runbook_does_not_have_is_refused_before_anything_runs(tmp_path: Path, url: str,
                                                                           ledger: Any) -> None:
    write_runbook(tmp_path, THREE_PHASES)
    began = time.monotonic()
    with pytest.raises(FaultError, match=r"no phase 'two' at index 0; the phases are 0: 'one', 1: 'two'"):
        kill(tmp_path, url, 0, "two")
    for index in (3, -1, True):
        with pytest.raises(FaultError, match=f"no phase 'one' at index {index!r}"):
            kill(tmp_path, url, index, "one")
    assert time.monotonic() - began < 1  # refused in the parent: no child was started
    assert ledger.list_runs() == [] and present(tmp_path) == []


# --- monitor --------------------------------------------------------------------------------------

WATCHED = """
    name: watched
    phases:
      - name: one
        steps:
          - run: "touch one; echo one >> log"
            undo: [{{run: "rm one; echo undo-one >> log"}}]
    monitor:
      duration: {duration}
      interval: 100ms
      baseline: 300ms
      probes:
        - name: health
          http: {{url: "http://{address}/healthz"}}
      rules:
        - name: told
          when: status >= 500
          consecutive: 1
          action: notify
        - name: asked
          when: status >= 500
          consecutive: 1
          action: pause
        - name: server errors
          when: status >= 500
          consecutive: 1
          {rollback}
"""


@pytest.fixture
def backend() -> Iterator[Backend]:
    served = Backend("v2").start()  # healthy throughout: any firing is the forced one
    try:
        yield served
    finally:
        served.stop()


def test_a_forced_rule_rolls_the_run_back_and_the_record_says_it_was_forced(
        tmp_path: Path, ledger: Any, backend: Backend) -> None:
    write_runbook(tmp_path, WATCHED.format(duration="20s", address=backend.address, rollback="action: rollback"))
    began = time.monotonic()
    s = session(tmp_path, ledger, ForceMonitor())  # the first rule whose action is rollback
    result = s.run()
    assert time.monotonic() - began < 10  # at the window's first tick, not its 20 s
    assert (result.status, int(result.exit)) == ("rolled_back", 11), result.reason
    assert forced_reason("server errors") in result.reason
    assert lines(tmp_path / "log") == ["one", "undo-one"] and present(tmp_path) == []
    view = project(ledger.events(s.run_id))
    (moved,) = view.monitor.transitions
    assert (moved.rule, moved.from_, moved.to, moved.action) == ("server errors", "ok", "firing", "rollback")
    assert moved.reason == forced_reason("server errors") and moved.data["forced"] is True
    assert moved.sample is not None and moved.sample["values"]["status"] == 200  # a healthy sample
    (action,) = view.monitor.actions
    assert (action.rule, action.outcome) == ("server errors", "rollback")
    assert view.rollback.passes  # the undo path ran, as in production
    # the baseline was probed and left alone; the forced firing came in the window, after a sample
    baseline, window = (stage for stage in view.monitor.stages)
    assert (baseline.stage, baseline.end and baseline.end.outcome) == ("baseline", "passed")
    assert window.stage == "window" and window.end is not None and window.end.outcome == "rollback"
    window_samples = [x for x in view.monitor.samples if x.stage == "window"]
    assert window_samples and window_samples[0].at <= (moved.at or 0)
    assert not events(ledger, s.run_id, ev.POLICY_APPLIED)  # not a stop: the monitor acted itself


@pytest.mark.parametrize(("rule", "status", "outcome"), [("told", "completed", "notified"),
                                                         ("asked", "needs_operator", "no answer")])
def test_a_forced_rule_does_what_its_action_says(tmp_path: Path, ledger: Any, backend: Backend, rule: str,
                                                 status: str, outcome: str) -> None:
    write_runbook(tmp_path, WATCHED.format(duration="1s", address=backend.address, rollback="action: rollback"))
    s = session(tmp_path, ledger, ForceMonitor(rule))
    result = s.run()
    assert result.status == status, result.reason
    assert present(tmp_path) == ["one"] and lines(tmp_path / "log") == ["one"]  # nothing undone
    view = project(ledger.events(s.run_id))
    assert [(t.rule, t.to, t.reason) for t in view.monitor.transitions] == [(rule, "firing",
                                                                              forced_reason(rule))]
    assert [(a.rule, a.outcome) for a in view.monitor.actions] == [(rule, outcome)]
    assert not view.rollback.passes


def test_no_rule_to_force_is_a_clear_error(tmp_path: Path, backend: Backend) -> None:
    write_runbook(tmp_path, WATCHED.format(duration="1s", address=backend.address, rollback="action: abort"))
    runbook = load_runbook(tmp_path / "runbook.yaml").runbook
    with pytest.raises(FaultError, match=r"the runbook 'watched' has no monitor rule whose action is rollback to "
                                         r"force \(its rules: 'told' \(notify\), 'asked' \(pause\), 'server errors' "
                                         r"\(abort\)\); name the rule to force"):
        ForceMonitor().check(runbook)
    with pytest.raises(FaultError, match="no monitor rule whose action is rollback"):
        ForceMonitor().forced_rules(runbook.monitor.rules if runbook.monitor else [])
    with pytest.raises(FaultError, match="has no monitor rule named 'nope'; its rules: 'told' "):
        ForceMonitor("nope").check(runbook)
    assert ForceMonitor("server errors").check(runbook).action == "abort"  # named: any action
    write_runbook(tmp_path, THREE_PHASES)
    with pytest.raises(FaultError, match="the runbook 'marked' has no monitor section"):
        ForceMonitor().check(load_runbook(tmp_path / "runbook.yaml").runbook)
