"""`tminus show`'s sections summary, built from the projection of recorded ledgers: each section in
lifecycle order with its status, a phase's planned start and budget against its actual time (over
budget marked), its steps' states, and for the rollback each planned step and whether it was undone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tminus.ledger.records import RunRecord
from tminus.projection import project
from tminus.reports.sections import lines, summarize

LEDGERS = Path(__file__).resolve().parents[1] / "fixtures" / "ledgers"


def recorded(name: str) -> list[dict[str, Any]]:
    return list(json.loads((LEDGERS / f"{name}.json").read_text())["events"])


def test_a_rolled_back_run_in_lifecycle_order_with_what_the_rollback_undid() -> None:
    rows = summarize(project(recorded("v1/rolled-back")))
    assert [(r.id, r.status, r.steps) for r in rows] == [
        ("gates", "ok", {"ok": 1}), ("phase:deploy", "ok", {"ok": 1}), ("verify", "failed", {"ok": 1, "failed": 1}),
        ("rollback", "ok", {"ok": 1}), ("undo:deploy", "ok", {"ok": 1}), ("verify-after-rollback", "ok", {"ok": 1})]
    rollback = rows[3]
    assert [(u["key"], u["name"], u["status"], u["section"]) for u in rollback.undone] == [
        ("phases[0].steps[0].undo[0]", "restore version", "ok", "undo:deploy"),
        ("rollback[0]", "tell the channel", "ok", "rollback")]
    text = lines(rows)
    assert text[0] == "Sections:"
    assert text[4] == "  rollback               ok           undone 2 of 2 planned step(s)"
    assert text[5:7] == ["                           ✓ restore version [phases[0].steps[0].undo[0]]",
                         "                           ✓ tell the channel [rollback[0]]"]


def test_a_phase_shows_planned_start_budget_and_actual_and_a_retry_counts_once() -> None:
    rows = {r.id: r for r in summarize(project(recorded("completed")))}
    deploy = rows["phase:deploy"]
    assert (deploy.planned_start, deploy.budget, deploy.over_budget, deploy.steps) == (0, 60.0, None, {"ok": 2})
    assert deploy.actual is not None and deploy.actual < 60
    retried = {r.id: r for r in summarize(project(recorded("v1/resumed-retry")))}
    assert retried["phase:migrate"].steps == {"ok": 2}  # attempt 1 was interrupted, attempt 2 passed
    assert retried["decision"].outcome == "go (auto)"


def test_over_budget_is_marked() -> None:
    at = datetime(2026, 11, 23, 12, tzinfo=UTC).isoformat()
    events = [{"type": "section.started", "at": at, "data": {"section": "phase:slow", "kind": "phase", "name": "slow",
                                                             "budget": 60.0, "planned_start": 120.0}},
              {"type": "section.finished", "at": at, "data": {"section": "phase:slow", "ok": True, "actual": 95.0,
                                                              "budget": 60.0}}]
    (row,) = summarize(project(events))
    assert row.over_budget == 35.0 and row.to_dict()["over_budget"] == 35.0
    assert lines([row])[1] == "  phase:slow  ok           planned T+2m00s, budget 1m00s, took 1m35s (35.0s OVER BUDGET)"


def test_an_interrupted_rollback_shows_what_is_not_undone_and_a_stop_who_asked() -> None:
    rows = {r.id: r for r in summarize(project(recorded("v1/interrupted-rollback")))}
    assert rows["rollback"].status == "running"  # killed -9: no end recorded, the run may still be running
    assert [(u["name"], u["status"]) for u in rows["rollback"].undone] == [("slow restore", "running"),
                                                                         ("tell the channel", "not run")]
    assert "· tell the channel [rollback[0]]: NOT undone (did not run)" in "\n".join(lines(list(rows.values())))
    stopped = {r.id: r for r in summarize(project(recorded("v1/interrupted-sigint")))}["phase:migrate"]
    assert (stopped.status, stopped.stopped, stopped.stopped_by, stopped.steps) == (
        "stopped", "interrupt", "SIGINT", {"interrupted": 1})


def test_the_monitor_and_the_decision_say_how_they_ended() -> None:
    rows = {r.id: r for r in summarize(project(recorded("v1/monitor-fired")))}
    assert (rows["baseline"].outcome, rows["monitor"].outcome) == ("passed, 3 samples", "rollback, 6 samples")
    assert rows["decision"].outcome == "go (auto)"


@pytest.mark.parametrize("name", ["v1/rolled-back", "completed"])
def test_show_prints_the_summary_between_the_events_and_the_outcome(name: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from tminus.cli.render import print_show
    from tminus.ledger.records import EventRecord

    fixture = json.loads((LEDGERS / f"{name}.json").read_text())
    run = RunRecord(**fixture["run"])
    events = [EventRecord(run_id=run.id, seq=e["seq"], type=e["type"], step_key=e["step_key"], at=e["at"],
                          data=e["data"], prev_hash="", hash="") for e in fixture["events"]]
    print_show(run, events, evidence=False)
    out = capsys.readouterr().out.splitlines()
    print_show(run, iter(events), evidence=False)  # as `show` streams them from the ledger: read once
    assert capsys.readouterr().out.splitlines() == out
    head = out.index("Sections:")
    assert "run " in out[head - 2] and out[head - 1] == ""  # after the last event line
    assert out[head + 1].startswith("  gates ")
    assert next(i for i, line in enumerate(out) if line.startswith("Outcome:")) > head
