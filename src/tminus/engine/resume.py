"""Rebuild what a run had done from its ledger events, so it can continue after a crash."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tminus.engine.outcome import SKIPPED, StepOutcome
from tminus.engine.prior import Prior, RollbackEnded
from tminus.engine.rollback import is_recorded_plan, recorded_steps
from tminus.engine.steps import StepRunner
from tminus.errors import ResumeRefused
from tminus.projection import RunView, project
from tminus.runbook.document import RunbookDocument
from tminus.runbook.models import Step

# A run that ended like this is not done: `tminus resume` continues it.
UNFINISHED = ("interrupted", "rollback_failed", "needs_operator", "not_finalized")


@dataclass
class History:
    prior: Prior
    interrupted: list[str] = field(default_factory=list)  # keys started but never finished
    finished: bool = False

    def steps_by_key(self, doc: RunbookDocument) -> dict[str, Step]:
        """The runbook's steps, and those of the recorded rollback plan (derived `...undo[auto]`
        steps, and undo steps as they were when the rollback began): what resume resolves keys to."""
        return {**doc.step_by_key(), **recorded_steps(self.prior.rollback_plan)}

    def choose(self, doc: RunbookDocument, choice: str | None, reason: str | None,
               adopted: Mapping[str, str] | None = None, lost: Iterable[str] = (),
               ran_to_end: Iterable[str] = ()) -> dict[str, str]:
        """What resume does with each step a crash interrupted: one whose surviving process resume
        waited for is `adopted` ("wait": judged from what it left); a check or an idempotent step is
        retried; any other may have half-acted, so the operator's `choice` (retry, skip with a
        reason, rollback) is required. Sets `prior.interrupted`; a rollback puts the run on the undo path.
        `lost`: keys whose survivor ended without an exit status (killed); `ran_to_end`: keys whose
        process ended after the crash with one (`--wait` adopts it): both said when refusing."""
        steps = self.steps_by_key(doc)  # derived undo steps of a recorded rollback too
        adopted = adopted or {}
        lost, ran_to_end = set(lost), set(ran_to_end)
        decisions: dict[str, str] = {}
        for key in self.interrupted:
            step = steps.get(key)
            if step is None:
                continue
            if key in adopted:
                decisions[key] = "wait"
            elif StepRunner.is_rerunnable(step):
                decisions[key] = "retry"
            elif choice is None:
                why = ("its surviving process ended without recording an exit status (it was killed), so "
                       "nothing tells whether it completed" if key in lost else
                       "it may have half-acted")
                wait = ("--wait (its process ran to its end after tminus stopped: adopt its result), "
                        if key in ran_to_end else "")
                back = ("--rollback (go on with the rollback: this undo step runs again)" if self.prior.in_rollback
                        else "--rollback (undo what was done)")
                raise ResumeRefused(
                    f"step '{step.title}' ({key}) was interrupted while it ran and is neither a check nor "
                    f"idempotent: {why}.\nChoose: {wait}--retry (run it again), "
                    f"--skip --reason '...' (it completed; go on), or {back}"
                )
            else:
                decisions[key] = choice
                if choice == "skip" and not reason:
                    raise ResumeRefused("--skip needs --reason: say why the step may be taken as done")
        self.prior.interrupted = decisions
        self.prior.adopted = {key: how for key, how in adopted.items() if key in decisions}
        if choice == "rollback":  # with or without an interrupted step: inside the monitor window too
            self.roll_back("the operator chose to roll back on resume" + (f": {reason}" if reason else ""))
        return decisions

    def roll_back(self, reason: str) -> None:
        """Put the run on the undo path (`resume --rollback`, `tminus rollback`), at any point of it:
        every step a crash interrupted counts as touched (it may have half-acted); a rollback in
        progress keeps its reason and its recorded plan."""
        for key in self.interrupted:
            self.prior.interrupted.setdefault(key, "rollback")
        if not self.prior.in_rollback:
            self.prior.in_rollback = True
            self.prior.rollback_reason = reason


def history_from_events(events: Iterable[Any]) -> History:
    """`events` are ledger EventRecords (type, step_key, data) in order."""
    return history_from_view(project(events))


def _ended_unrecorded(view: RunView) -> RollbackEnded | None:
    """The last rollback finished, and no process recorded the run's end after it (a crash between
    `rollback.finished` and the run's status): the rollback's end is the run's."""
    last = view.rollback.passes[-1]
    end = last.end
    if end is None or any(finish.seq > end.seq for finish in view.finishes):
        return None
    return RollbackEnded(end.ok, last.reason, end.state or "")


def history_from_view(view: RunView) -> History:
    monitor, rollback = view.monitor, view.rollback
    # each section's last recorded status (gates_passed, verify_passed, ... read it); sections the
    # projection inferred from other events are set through the flags below, as the runner reads them
    sections = {s.id: s.status for s in view.sections if not s.implicit and s.status != "running"}
    prior = Prior(
        done={key: StepOutcome(key, e.status, attempts=e.attempts, duration=e.duration, message=e.message,
                               verdicts=e.verdicts, outputs=e.outputs, evidence=e.evidence,
                               touched=e.status == SKIPPED and bool(e.data.get("touched")))
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
        prior.rollback_ended = _ended_unrecorded(view)
    for execution in view.executions:  # the next execution of a key is numbered after these
        prior.executions[execution.key] = max(prior.executions.get(execution.key, 0), execution.attempt)
    for effect in view.effects:  # what each step recorded before it acted: derived undo reads it
        if effect.key is not None:
            prior.effects.setdefault(effect.key, []).append(effect.data)
    end = view.finished
    finished = end is not None and end.status not in UNFINISHED
    return History(prior, [e.key for e in view.in_flight()], finished)
