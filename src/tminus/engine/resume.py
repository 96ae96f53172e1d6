"""Rebuild what a run had done from its ledger events, so it can continue after a crash."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tminus.engine.rollback import is_recorded_plan, recorded_steps
from tminus.engine.runner import Prior
from tminus.engine.steps import StepOutcome
from tminus.projection import RunView, project
from tminus.runbook.document import RunbookDocument
from tminus.runbook.models import Step

# A run that ended like this is not done: `tminus resume` continues it.
UNFINISHED = ("interrupted", "rollback_failed", "needs_operator")


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
    return history_from_view(project(events))


def history_from_view(view: RunView) -> History:
    monitor, rollback = view.monitor, view.rollback
    # each section's last recorded status (gates_passed, verify_passed, ... read it); sections the
    # projection inferred from other events are set through the flags below, as the runner reads them
    sections = {s.id: s.status for s in view.sections if not s.implicit and s.status != "running"}
    prior = Prior(
        done={key: StepOutcome(key, e.status, attempts=e.attempts, duration=e.duration, message=e.message,
                               verdicts=e.verdicts, outputs=e.outputs, evidence=e.evidence)
              for key, e in view.outcomes().items()},
        sections=sections,
        rollback_reason=rollback.reason,
        baseline_samples=[s.data for s in monitor.samples_of("baseline")],
        cutover_at=view.cutover_at,
        window_samples=[s.data for s in monitor.samples_of("window")],
        window_segments=[list(segment) for segment in monitor.window_segments],
        pause_answers=dict(monitor.pause_answers),
    )
    if view.decision is not None:
        prior.decided_go = view.decision.verdict == "go"
    if monitor.baseline_done:
        prior.baseline_done = True
    if rollback.started:
        prior.in_rollback = rollback.active
        # the plan a rollback recorded is the one a resumed rollback executes (older ledgers: none)
        last = [entry.spec for entry in rollback.passes[-1].plan]
        prior.rollback_plan = last if is_recorded_plan(last) else None
    for execution in view.executions:  # the next execution of a key is numbered after these
        prior.executions[execution.key] = max(prior.executions.get(execution.key, 0), execution.attempt)
    for effect in view.effects:  # what each step recorded before it acted: derived undo reads it
        if effect.key is not None:
            prior.effects.setdefault(effect.key, []).append(effect.data)
    end = view.finished
    finished = end is not None and end.status not in UNFINISHED
    return History(prior, [e.key for e in view.in_flight()], finished)
