"""What resume reads from recorded ledgers of real runs (tests/fixtures/ledgers/) when a crash cut
their tail: a rollback that finished before the run's end was recorded is honoured (issue 9, item 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tminus.engine.resume import history_from_events

LEDGERS = Path(__file__).resolve().parents[1] / "fixtures" / "ledgers"


def events(name: str) -> list[dict[str, Any]]:
    return list(json.loads((LEDGERS / name).read_text())["events"])


def without_the_end(recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a crash after `rollback.finished` and before the run's status leaves behind."""
    assert recorded[-1]["type"] == "run.finished" and recorded[-2]["type"] == "rollback.finished"
    return recorded[:-1]


@pytest.mark.parametrize("name, ok", [("v1/rolled-back.json", True), ("rolled-back.json", True),
                                      ("v1/rollback-failed.json", False), ("rollback-failed.json", False)])
def test_a_rollback_finished_before_the_crash_is_the_runs_end(name: str, ok: bool) -> None:
    ended = history_from_events(without_the_end(events(name))).prior.rollback_ended
    assert ended is not None and ended.ok is ok
    assert ended.reason
    assert ok or ended.state  # a failed rollback says why


@pytest.mark.parametrize("name", ["v1/rolled-back.json", "v1/rollback-failed.json", "v1/resumed-rollback.json",
                                  "v1/interrupted-rollback.json", "v1/completed.json"])
def test_a_recorded_end_or_an_unfinished_rollback_is_not(name: str) -> None:
    assert history_from_events(events(name)).prior.rollback_ended is None


def test_a_run_not_finalized_is_unfinished_and_resume_knows_what_is_done() -> None:
    """after_go done, a finalize step failed (issue 11): resume continues it; the done steps stay done."""
    history = history_from_events(events("v1/not-finalized.json"))
    assert history.finished is False and history.interrupted == []
    prior = history.prior
    assert prior.sections["after-go:open doors"] == "ok" and prior.sections["finalize:retire old"] == "failed"
    assert prior.decided_go and not prior.in_rollback
    done = {key: outcome.status for key, outcome in prior.done.items()}
    assert done == {"phases[0].steps[0]": "ok", "after_go[0].steps[0]": "ok", "finalize[0].steps[0]": "ok",
                    "finalize[0].steps[1]": "failed"}


def test_a_step_skipped_by_when_is_not_touched_one_skipped_by_the_operator_is() -> None:
    recorded = [e for e in events("v1/not-finalized.json") if e["type"] != "run.finished"]
    base = {"v": 1, "section": "finalize:retire old", "name": "close ticket"}
    by_when = {**recorded[-1], "seq": 900, "type": "step.skipped", "step_key": "finalize[0].steps[2]",
               "data": {**base, "message": "when: false"}}
    prior = history_from_events([*recorded, by_when]).prior
    assert prior.done["finalize[0].steps[2]"].touched is False
    by_operator = {**by_when, "data": {**base, "message": "skipped on resume by the operator", "touched": True}}
    prior = history_from_events([*recorded, by_operator]).prior
    assert prior.done["finalize[0].steps[2]"].touched is True
