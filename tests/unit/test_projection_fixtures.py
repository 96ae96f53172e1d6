"""The projection, data-driven from recorded ledgers of real runs (tests/fixtures/ledgers/).

Each fixture holds a real run's events and what the readers said about it when it was recorded
(`python tests/fixtures/ledgers/record.py` records them; `--expected` rewrites the outlines).
Folding it must give the outline checked in next to it, and every reader built on the projection
must say exactly what it said then: resume's History, `tminus why --json`, `tminus replay --json`.
The same holds when every payload carries today's version: v0 ledgers and v1 ledgers read alike.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tminus.engine.resume import history_from_events
from tminus.events import PAYLOAD_VERSION
from tminus.ledger.records import RunRecord
from tminus.monitor.replay import replay_run
from tminus.projection import RunView, project
from tminus.reports.why import explain
from tminus.runbook.loader import load_runbook

LEDGERS = Path(__file__).resolve().parents[1] / "fixtures" / "ledgers"
FIXTURES = sorted(p for p in LEDGERS.glob("*.json") if not p.name.endswith(".expected.json"))
RECORDED = [p for p in FIXTURES if json.loads(p.read_text())["readers"]]


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def tagged(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same events as this tminus writes them: every payload carries its version."""
    return [{**e, "data": {**e["data"], "v": PAYLOAD_VERSION}} for e in events]


def roundtrip(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def test_every_scenario_is_recorded() -> None:
    names = {p.stem for p in FIXTURES}
    assert {"completed", "rolled-back", "rollback-failed", "interrupted-step", "resumed-retry",
            "interrupted-rollback", "resumed-rollback", "waiting-approval", "monitor-fired",
            "legacy-v0", "future-version"} <= names
    assert all(p.with_name(p.stem + ".expected.json").exists() for p in FIXTURES)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_the_fold_gives_the_checked_outline(path: Path) -> None:
    fixture = load(path)
    expected = load(path.with_name(path.stem + ".expected.json"))
    assert project(fixture["events"]).outline() == expected


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_folding_event_by_event_as_they_arrive_gives_the_same_view(path: Path) -> None:
    events = load(path)["events"]
    live = RunView()
    half = len(events) // 2
    for e in events[:half]:
        live.apply(e)
    assert live.count == half
    for e in events[half:]:
        live.apply(e)
    assert live.outline() == project(events).outline()


FLAGS = ("gates_passed", "verify_passed", "decided_go", "baseline_done", "in_rollback")


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
@pytest.mark.parametrize("version", ["as recorded", "tagged"])
def test_resume_reads_the_same_history(path: Path, version: str) -> None:
    fixture = load(path)
    events = fixture["events"] if version == "as recorded" else tagged(fixture["events"])
    history = history_from_events(events)
    got = dataclasses.asdict(history)
    # the runner's per-section flags read Prior.sections: compare what they say, as recorded
    del got["prior"]["sections"]
    # fields added after the fixtures were recorded: what a resume acts on for effects and rollback
    executions = got["prior"].pop("executions")
    assert got["prior"].pop("effects") == {}  # these runs predate recorded effects
    assert got["prior"].pop("rollback_plan") is None  # ... and recorded rollback plans
    started = Counter(e["step_key"] for e in events if e["type"] == "step.started")
    assert executions == dict(started)  # a key's executions are its step.started events
    got["prior"].update({flag: getattr(history.prior, flag) for flag in FLAGS})
    assert roundtrip(got) == fixture["readers"]["history"]


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
@pytest.mark.parametrize("version", ["as recorded", "tagged"])
def test_why_says_what_it_said(path: Path, version: str) -> None:
    fixture = load(path)
    events = fixture["events"] if version == "as recorded" else tagged(fixture["events"])
    got = roundtrip(explain(RunRecord(**fixture["run"]), events).to_dict())
    assert got == fixture["readers"]["why"]


@pytest.mark.parametrize("path", [p for p in RECORDED if "replay" in load(p)["readers"]], ids=lambda p: p.stem)
def test_replay_says_what_it_said(path: Path) -> None:
    fixture = load(path)
    run = RunRecord(**fixture["run"])
    runbook = load_runbook(run.runbook_path, text=run.runbook_text).runbook
    for events in (fixture["events"], tagged(fixture["events"])):
        result = replay_run(runbook, events)
        got = roundtrip({"run": run.id, "runbook": run.runbook_name, "environment": run.environment,
                         **result.to_dict()})
        assert got == fixture["readers"]["replay"]
