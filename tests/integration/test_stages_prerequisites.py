"""Stages in time and prerequisites against a real ledger (SQLite file and PostgreSQL), driven
through the Session with real `run:` checks: stage runs recorded as gate runs, each stage's window
(too early, too late, stale, failed, missing, the latest in the window deciding), require_stages
blocking before anything changes, and `requires:` read back through the reader and the projection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import write_runbook

from tminus import events as ev
from tminus.engine.policy import Decision, Policy, stop
from tminus.engine.prerequisites import Wanted, find_run
from tminus.engine.session import Options, Session
from tminus.engine.stages import FAILED, MISSING, PASSED, STALE, stage_status
from tminus.engine.stop import INTERRUPT
from tminus.ledger import open_ledger
from tminus.projection import project
from tminus.runbook.loader import load_runbook
from tminus.runbook.models import Step

H = 3600.0
STAGED = """
    name: cutover
    {extra}
    gates:
      - name: two days before
        stage: T-48h
        checks:
          - run: "test ! -e fail48 && echo ran48 >> log"
      - name: two hours before
        stage: T-2h
        checks:
          - run: "test ! -e fail2 && echo ran2 >> log"
      - name: on the day
        checks:
          - run: "echo day >> log"
    phases:
      - name: change
        steps:
          - run: "touch changed"
"""


@pytest.fixture
def ledger(url: str) -> Iterator[Any]:
    with open_ledger(url) as opened:
        yield opened


def session(tmp_path: Path, ledger: Any, *, env: str = "default", at: float | None = None,
            stage: float | None = None, name: str = "runbook.yaml") -> Session:
    doc = load_runbook(tmp_path / name)
    opts = Options(environment=env, operator="tester", no_input=True, at=at, stage=stage)
    return Session(doc, ledger, opts)


def log(tmp_path: Path) -> list[str]:
    path = tmp_path / "log"
    return path.read_text().split() if path.exists() else []


def status(ledger: Any, offset: float, cutover: float | None, now: float | None = None) -> Any:
    return stage_status(ledger, runbook="cutover", environment="default", offset=offset, cutover=cutover, now=now)


def test_a_stage_run_runs_only_its_gates_and_records_its_stage(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, STAGED.format(extra=""))
    s = session(tmp_path, ledger, stage=48 * H, at=time.time() + H)
    result = s.run(gates_only=True)
    assert (result.status, int(result.exit)) == ("completed", 0), result.reason
    assert log(tmp_path) == ["ran48"]  # not the T-2h stage, not the day's gates, no phase
    record = ledger.get_run(s.run_id)
    assert record.kind == "gate"
    started = project(ledger.events(s.run_id)).started
    assert started.data["stage"] == "T-48h" and started.data["stage_offset"] == 48 * H
    assert started.data["at"].endswith("Z")


def test_a_stage_passes_in_its_window_and_is_stale_outside_it(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, STAGED.format(extra=""))
    s = session(tmp_path, ledger, stage=2 * H)
    assert s.run(gates_only=True).status == "completed"
    now = time.time()
    inside = status(ledger, 2 * H, now + H)
    assert (inside.status, inside.run_id) == (PASSED, s.run_id)
    assert "(T-59m" in inside.message or "(T-1h" in inside.message, inside.message
    early = status(ledger, 2 * H, now + 3 * H)  # it ran three hours before the cutover: too early for T-2h
    assert (early.status, early.run_id) == (STALE, s.run_id)
    assert "before its window opened" in early.message
    late = status(ledger, 2 * H, now - 60)  # the cutover was a minute ago: it ran after it
    assert (late.status, late.run_id) == (STALE, s.run_id)
    assert "at or after the cutover" in late.message and "(T+" in late.message
    # the T-48h stage counts the same run? no: another stage has no record at all
    assert status(ledger, 48 * H, now + H).status == MISSING
    # without a cutover time, the window is the offset before the run that asks
    assert status(ledger, 2 * H, None, now=now + H).status == PASSED
    stale = status(ledger, 2 * H, None, now=now + 3 * H)
    assert stale.status == STALE and "before this run" in stale.message


def test_the_latest_stage_run_in_the_window_decides(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, STAGED.format(extra=""))
    passed = session(tmp_path, ledger, stage=2 * H)
    assert passed.run(gates_only=True).status == "completed"
    (tmp_path / "fail2").touch()
    failed = session(tmp_path, ledger, stage=2 * H)
    assert failed.run(gates_only=True).status == "blocked"
    now = time.time()
    found = status(ledger, 2 * H, now + H)
    assert (found.status, found.run_id) == (FAILED, failed.run_id)
    assert found.message.endswith(": blocked")
    (tmp_path / "fail2").unlink()
    again = session(tmp_path, ledger, stage=2 * H)
    assert again.run(gates_only=True).status == "completed"
    assert status(ledger, 2 * H, time.time() + H).run_id == again.run_id
    # a stage run after the cutover does not hide the one inside the window
    cutover = time.time() + 0.05
    time.sleep(0.1)
    late_fail = session(tmp_path, ledger, stage=2 * H)
    (tmp_path / "fail2").touch()
    assert late_fail.run(gates_only=True).status == "blocked"
    kept = status(ledger, 2 * H, cutover)
    assert (kept.status, kept.run_id) == (PASSED, again.run_id)


def test_a_stage_of_another_environment_is_missing(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, STAGED.format(extra="environments: {staging: {}, prod: {}}"))
    assert session(tmp_path, ledger, env="staging", stage=2 * H).run(gates_only=True).status == "completed"
    found = stage_status(ledger, runbook="cutover", environment="prod", offset=2 * H, cutover=None)
    assert found.status == MISSING and "cutover in prod" in found.message


def test_require_stages_blocks_with_the_stage_evidence_and_changes_nothing(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, STAGED.format(extra="require_stages: true"))
    at = time.time() + H
    first = session(tmp_path, ledger, stage=48 * H, at=at)
    assert first.run(gates_only=True).status == "completed"
    blocked = session(tmp_path, ledger, at=at)
    result = blocked.run()
    assert (result.status, int(result.exit)) == ("blocked", 10), result.reason
    assert not (tmp_path / "changed").exists()
    assert result.failures[0].startswith("stage T-2h missing")
    view = project(ledger.events(blocked.run_id))
    stages = view.section("gates").data["stages"]
    assert [(s["stage"], s["status"], s["run_id"]) for s in stages] == [
        ("T-48h", PASSED, first.run_id), ("T-2h", MISSING, None)]
    assert [n.data["status"] for n in view.notes_for("stage")] == [PASSED, MISSING]
    second = session(tmp_path, ledger, stage=2 * H, at=at)
    assert second.run(gates_only=True).status == "completed"
    done = session(tmp_path, ledger, at=at)
    assert done.run().status == "completed"
    assert (tmp_path / "changed").exists()
    stages = project(ledger.events(done.run_id)).section("gates").data["stages"]
    assert [s["run_id"] for s in stages] == [first.run_id, second.run_id]
    # the day's run ran its own gate once, and neither stage's again
    assert log(tmp_path).count("day") == 2 and log(tmp_path).count("ran48") == 1


def test_stages_are_shown_but_do_not_block_without_require_stages(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, STAGED.format(extra=""))
    s = session(tmp_path, ledger, at=time.time() + H)
    result = s.run()
    assert result.status == "completed", result.reason
    notes = project(ledger.events(s.run_id)).notes_for("stage")
    assert [(n.data["stage"], n.data["status"], n.data["required"]) for n in notes] == [
        ("T-48h", MISSING, False), ("T-2h", MISSING, False)]


def test_a_stage_run_outside_its_window_says_it_will_not_count(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, STAGED.format(extra=""))
    s = session(tmp_path, ledger, stage=2 * H, at=time.time() + 5 * H)
    assert s.run(gates_only=True).status == "completed"
    view = project(ledger.events(s.run_id))
    (note,) = view.notes_for("stage-window")
    assert "before its window opens" in (note.message or "")
    assert view.section("gates").data["counts"] is False


# --- requires ----------------------------------------------------------------------------------------

REHEARSAL = """
    name: rehearsal
    environments: {staging: {}, prod: {}}
    phases:
      - name: change
        steps:
          - run: "test ! -e broken"
"""


def rehearse(tmp_path: Path, ledger: Any, env: str = "staging", broken: bool = False) -> str:
    write_runbook(tmp_path, REHEARSAL, name="rehearsal.yaml")
    marker = tmp_path / "broken"
    marker.touch() if broken else marker.unlink(missing_ok=True)
    s = session(tmp_path, ledger, env=env, name="rehearsal.yaml")
    s.run()
    return s.run_id


def test_find_run_names_the_satisfying_run_and_what_else_it_found(tmp_path: Path, ledger: Any) -> None:
    wanted = Wanted("rehearsal", "staging", "completed", within=7 * 24 * H)
    none = find_run(ledger, wanted, now=time.time())
    assert not none.ok and none.message == "no run of rehearsal in staging has ended (the ledger holds none)"
    good = rehearse(tmp_path, ledger)
    verdict = find_run(ledger, wanted, now=time.time())
    assert verdict.ok and verdict.satisfied_by is not None and verdict.satisfied_by.run_id == good
    evidence = verdict.evidence()
    assert evidence["run_id"] == good and evidence["satisfied_by"]["outcome"] == "completed"
    assert evidence["satisfied_by"]["ended"].endswith("Z")
    # nine days later it is too old, and the message says what was found
    old = find_run(ledger, wanted, now=time.time() + 9 * 24 * H)
    assert not old.ok and old.message == f"latest rehearsal in staging: completed 9d ago, run {good} (older than 7d)"
    # a later rollback does not undo a completed rehearsal, but is named as the latest
    bad = rehearse(tmp_path, ledger, broken=True)
    assert ledger.get_run(bad).status == "rolled_back"
    still = find_run(ledger, wanted, now=time.time())
    assert still.ok and still.satisfied_by.run_id == good and still.latest.run_id == bad
    rolled = find_run(ledger, Wanted("rehearsal", "staging", "rolled_back"), now=time.time())
    assert rolled.ok and rolled.satisfied_by.run_id == bad
    later = find_run(ledger, wanted, now=time.time() + 9 * 24 * H)
    assert later.message == (f"latest rehearsal in staging: rolled_back 9d ago, run {bad}; "
                             f"latest completed: completed 9d ago, run {good} (older than 7d)")


def test_find_run_is_per_environment_kind_and_runbook_text(tmp_path: Path, ledger: Any) -> None:
    rehearse(tmp_path, ledger, env="prod")
    other = find_run(ledger, Wanted("rehearsal", "staging"), now=time.time())
    assert not other.ok and "no run of rehearsal in staging" in other.message
    gate_run = session(tmp_path, ledger, env="staging", name="rehearsal.yaml")
    assert gate_run.run(gates_only=True).status == "completed"  # a gate-only run rehearses nothing
    assert not find_run(ledger, Wanted("rehearsal", "staging"), now=time.time()).ok
    assert find_run(ledger, Wanted("rehearsal", "staging", kinds=("gate",)), now=time.time()).ok
    good = rehearse(tmp_path, ledger)
    text_hash = ledger.get_run(good).content_hash
    assert find_run(ledger, Wanted("rehearsal", "staging", content_hash=text_hash), now=time.time()).ok
    changed = find_run(ledger, Wanted("rehearsal", "staging", content_hash="0" * 64), now=time.time())
    assert not changed.ok and changed.message.endswith("(another runbook text)")


def test_requires_is_a_gate_with_the_run_as_evidence(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, """
        name: cutover
        vars: {rehearsed_in: staging}
        requires:
          - {runbook: rehearsal, environment: "{{ vars.rehearsed_in }}", within: 7d}
          - {runbook: rehearsal, environment: prod, outcome: rolled_back}
        phases:
          - name: change
            steps:
              - run: "touch changed"
    """)
    good = rehearse(tmp_path, ledger)
    blocked = session(tmp_path, ledger)
    result = blocked.run()
    assert (result.status, int(result.exit)) == ("blocked", 10)
    assert not (tmp_path / "changed").exists()
    assert result.failures == ["requires rehearsal in prod: rolled_back: not met: "
                               "no run of rehearsal in prod has ended (the ledger holds none)"]
    view = project(ledger.events(blocked.run_id))
    met, unmet = view.section("gates").data["requires"]
    assert met["ok"] and met["run_id"] == good and met["wanted"]["environment"] == "staging"
    assert not unmet["ok"] and unmet["run_id"] is None
    assert [n.key for n in view.notes_for("requirement")] == ["requires", "requires"]
    rolled = rehearse(tmp_path, ledger, env="prod", broken=True)
    done = session(tmp_path, ledger)
    assert done.run().status == "completed"
    requires = project(ledger.events(done.run_id)).section("gates").data["requires"]
    assert [r["run_id"] for r in requires] == [good, rolled]
    assert [e.type for e in ledger.events(done.run_id)][:2] == [ev.RUN_STARTED, ev.SECTION_STARTED]


class InterruptFirstCheck(Policy):
    """Stops the stage run before its first check, as Ctrl-C would: the run stays resumable."""

    name = "interrupt"

    def before_step(self, step: Step, section: Any) -> Decision:
        return stop(INTERRUPT, "operator pressed Ctrl-C")


def test_a_resumed_stage_run_stays_that_stages_run(tmp_path: Path, ledger: Any) -> None:
    write_runbook(tmp_path, STAGED.format(extra=""))
    at = time.time() + H
    doc = load_runbook(tmp_path / "runbook.yaml")
    first = Session(doc, ledger, Options(environment="default", operator="tester", no_input=True, at=at,
                                         stage=48 * H), policy=InterruptFirstCheck())
    assert first.run(gates_only=True).status == "interrupted"
    assert log(tmp_path) == []
    again = Session(doc, ledger, Options(environment="default", operator="tester", no_input=True))
    result = again.resume(ledger.get_run(first.run_id))
    assert result.status == "completed", result.reason
    assert log(tmp_path) == ["ran48"]  # its stage's gate, not the day's nor T-2h's
    assert again.opts.stage == 48 * H and again.opts.at == pytest.approx(at, abs=1)
    assert status(ledger, 48 * H, at).run_id == first.run_id


def test_the_reader_lists_runs_by_kind_and_start(ledger: Any) -> None:
    def create(run_id: str, kind: str) -> float:
        ledger.create_run(run_id=run_id, runbook_name="rb", runbook_path="/rb.yaml", content_hash="x",
                          runbook_text="name: rb", environment="prod", operator="o", host="h", pid=1, kind=kind)
        time.sleep(0.02)
        return time.time()

    create("g1", "gate")
    between = create("r1", "run")
    create("g2", "gate")

    def ids(**kw: Any) -> list[str]:
        return [r.id for r in ledger.list_runs(runbook="rb", **kw)]

    assert ids(kind="gate") == ["g2", "g1"] and ids(kind="run") == ["r1"]
    assert ids(started_after=between) == ["g2"] and ids(started_before=between) == ["r1", "g1"]
    assert ids(kind="gate", started_before=between) == ["g1"]
    assert ids(started_after=time.time() + 1) == [] and ids(started_before=0) == []
