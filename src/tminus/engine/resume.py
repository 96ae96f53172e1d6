"""Rebuild what a run had done from its ledger events, so it can continue after a crash."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tminus import events as ev
from tminus.engine.rollback import is_recorded_plan, recorded_steps
from tminus.engine.runner import Prior
from tminus.engine.steps import SKIPPED, StepOutcome
from tminus.runbook.document import RunbookDocument
from tminus.runbook.models import Step


@dataclass
class History:
    prior: Prior
    interrupted: list[str] = field(default_factory=list)  # keys started but never finished
    finished: bool = False

    def steps_by_key(self, doc: RunbookDocument) -> dict[str, Step]:
        """The runbook's steps, and those of the recorded rollback plan (derived `...undo[auto]`
        steps, and undo steps as they were when the rollback began): what resume resolves keys to."""
        return {**doc.step_by_key(), **recorded_steps(self.prior.rollback_plan)}


def history_from_events(events: Iterable[Any]) -> History:
    """`events` are ledger EventRecords (type, step_key, data) in order."""
    prior = Prior()
    started: dict[str, Any] = {}
    finished = False
    for e in events:
        data = e.data or {}
        if e.type == ev.STEP_STARTED:
            started[e.step_key] = e
            prior.executions[e.step_key] = int(data.get("execution") or prior.executions.get(e.step_key, 0) + 1)
        elif e.type == ev.STEP_EFFECT:
            prior.effects.setdefault(e.step_key, []).append(data)
        elif e.type == ev.STEP_FINISHED:
            started.pop(e.step_key, None)
            prior.done[e.step_key] = StepOutcome(
                e.step_key,
                data.get("status", "failed"),
                attempts=data.get("attempts", 0),
                duration=data.get("duration_ms", 0) / 1000,
                message=data.get("message", ""),
                verdicts=data.get("verdicts", []),
                outputs=data.get("outputs", {}),
                evidence=data.get("evidence", {}),
            )
        elif e.type == ev.STEP_SKIPPED:
            started.pop(e.step_key, None)
            prior.done[e.step_key] = StepOutcome(e.step_key, SKIPPED, message=data.get("message", ""))
        elif e.type == ev.SECTION_FINISHED and data.get("section") == "gates":
            prior.gates_passed = bool(data.get("ok"))
        elif e.type == ev.SECTION_FINISHED and data.get("section") == "verify":
            prior.verify_passed = bool(data.get("ok"))
        elif e.type == ev.SECTION_STARTED and data.get("cutover_at") is not None:
            prior.cutover_at = float(data["cutover_at"])
        elif e.type == ev.DECISION:
            prior.decided_go = data.get("verdict") == "go"
        elif e.type == ev.MONITOR_SAMPLE and data.get("stage") == "baseline":
            prior.baseline_samples.append(data)
        elif e.type == ev.MONITOR_STARTED and data.get("stage") == "window":
            started_at = _epoch(e.at)
            prior.window_segments.append([started_at, started_at])
            if prior.cutover_at is None and data.get("cutover_at") is not None:
                prior.cutover_at = float(data["cutover_at"])  # a watch-only run has no phases
        elif e.type == ev.MONITOR_SAMPLE and data.get("stage") == "window":
            prior.window_samples.append(data)
            if prior.window_segments:
                prior.window_segments[-1][1] = float(data["at"])
        elif e.type == ev.MONITOR_ACTION and data.get("outcome") == "continue":
            prior.pause_answers[str(data.get("rule"))] = _epoch(e.at)
        elif e.type == ev.MONITOR_FINISHED and data.get("stage") == "baseline" and data.get("ok"):
            prior.baseline_done = True
        elif e.type == ev.ROLLBACK_STARTED:
            prior.in_rollback = True
            prior.rollback_reason = data.get("reason", "")
            prior.rollback_plan = data["steps"] if is_recorded_plan(data.get("steps")) else None
        elif e.type == ev.ROLLBACK_FINISHED and data.get("ok"):
            prior.in_rollback = False
        elif e.type == ev.RUN_FINISHED:
            finished = data.get("status") not in ("interrupted", "rollback_failed", "needs_operator")
        elif e.type == ev.RUN_RESUMED:
            finished = False
    return History(prior, list(started), finished)


def _epoch(at: str) -> float:
    return datetime.fromisoformat(at).timestamp()
