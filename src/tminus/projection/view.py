"""One fold of a run's events into a RunView, whole (`project`) or one event at a time (`apply`).

Resume, status, show, approve, why and replay all read a run through this view; a live reader
tailing the ledger calls `apply` as events arrive. Event types are compared here only (and
notify.sent in folds/notes.py): `apply` dispatches each type to its fold in projection/folds/.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tminus import events as ev
from tminus.projection import deadlines as measuring
from tminus.projection.deadlines import Measured
from tminus.projection.fact import Fact, read_fact
from tminus.projection.folds import (
    approvals,
    deadlines,
    guards,
    monitor,
    notes,
    rehearsals,
    rollback,
    runs,
    sections,
    steps,
    stops,
    watches,
)
from tminus.projection.model import (
    OK,
    Approval,
    Decision,
    Execution,
    MonitorSample,
    MonitorTransition,
    Note,
    RollbackPass,
    RunMark,
    Section,
    Stop,
)
from tminus.projection.state import ViewState
from tminus.projection.upcast import upcast


@dataclass
class RunView(ViewState):
    """Everything a run's events say, typed. Build it with `project(events)` or `RunView().apply(e)`.

    Its fields are declared in projection/state.py, where the folds write them."""

    # --- reading ---------------------------------------------------------------------------

    @property
    def finished(self) -> RunMark | None:
        """The run's end, when the last of its processes recorded one (a resume clears it)."""
        if not self.finishes or (self.resumes and self.resumes[-1].seq > self.finishes[-1].seq):
            return None
        return self.finishes[-1]

    @property
    def t0(self) -> float | None:
        return self.started.at if self.started else None

    @property
    def decision(self) -> Decision | None:
        return self.decisions[-1] if self.decisions else None

    @property
    def release(self) -> str | None:
        """What the run set out to make live (the runbook's `release:`, as run.started recorded it)."""
        value = self.started.data.get("release") if self.started else None
        return value if isinstance(value, str) else None

    def went_live(self) -> Decision | None:
        """The go decision that made the run's change live, if it was taken."""
        go = [d for d in self.decisions if d.verdict == "go"]
        return go[0] if go else None

    def undone_after_go(self) -> RollbackPass | None:
        """The rollback that reversed the run after its go (automatic, or `tminus rollback` later)."""
        go = self.went_live()
        later = [p for p in self.rollback.passes if go is not None and p.seq > go.seq]
        return later[-1] if later else None

    def watched(self, key: str) -> tuple[list[MonitorSample], list[MonitorTransition]]:
        """A `watch` step's samples and its rules' transitions, in the order recorded."""
        return ([x for x in self.watch_samples if x.key == key],
                [t for t in self.watch_transitions if t.data.get("key") == key])

    def in_flight(self) -> list[Execution]:
        """Executions that started and never ended (running now, or cut short by a crash or signal)."""
        return list(self._in_flight.values())

    def pending_approvals(self) -> dict[str | None, Approval]:
        """Step key -> its request still waiting for an answer (none once the run has ended)."""
        return dict(self._waiting)

    def sections_of(self, kind: str) -> list[Section]:
        return [s for s in self.sections if s.kind == kind]

    def passed(self, section_id: str) -> bool:
        """The last pass through the section finished ok."""
        s = self.section(section_id)
        return s is not None and s.finished_seq is not None and s.status == OK

    def executions_of(self, key: str) -> list[Execution]:
        return [e for e in self.executions if e.key == key]

    def in_section(self, *kinds: str) -> list[Execution]:
        """Executions whose step ran in a section of one of these kinds."""
        return [e for e in self.executions if e.section_kind in kinds]

    def by_end(self) -> list[Execution]:
        """Ended executions in the order their outcome was recorded."""
        return sorted((e for e in self.executions if e.ended), key=lambda e: e.finished_seq or 0)

    def outcomes(self) -> dict[str, Execution]:
        """Step key -> its last ended execution, keys in the order they first ended."""
        out: dict[str, Execution] = {}
        for e in self.by_end():
            out[e.key] = e
        return out

    def accepted_stops(self, after: int = 0) -> list[Stop]:
        """The stop requests the run acted on, recorded after seq `after`."""
        return [s for s in self.stops if s.accepted and s.seq > after]

    def stopped_by(self, stop: Stop) -> list[Execution | Section]:
        """What `stop` ended: the sections and executions it stopped, in the order they began."""
        found: list[Execution | Section] = [x for x in self.sections if x.stop is stop]
        return found + [e for e in self.executions if e.stop is stop]

    def approvals_for(self, key: str) -> list[Approval]:
        return [a for a in self.approvals if a.key == key]

    def notes_for(self, action: str) -> list[Note]:
        return [n for n in self.notes if n.action == action]

    def deadlines(self, specs: list[dict[str, Any]] | None = None, now: float | None = None) -> list[Measured]:
        """Each deadline the run set (as run.started recorded them, or `specs`) against its clock:
        started when, ended when, exceeded by how much, and the alert it raised."""
        return measuring.measure(self, specs, now)

    # --- folding ---------------------------------------------------------------------------

    def apply(self, event: Any) -> RunView:
        """Fold one event: a ledger EventRecord, an engine Event or a mapping with the same fields."""
        fact = read_fact(event, self.last_seq + 1)
        self.count += 1
        self.last_seq = max(self.last_seq, fact.seq)
        data, version, warning = upcast(fact.type, fact.data)
        if warning and not any(w.endswith(warning) for w in self.warnings):  # once per kind of surprise
            self.warnings.append(f"event {fact.seq} ({fact.type}) and later: {warning}")
        fact = Fact(fact.seq, fact.type, fact.step_key, fact.at, data, version)
        fold = _FOLDS.get(fact.type)
        if fold is not None:
            fold(self, fact)
        else:
            self.others.append(fact)
        return self

    def apply_all(self, events: Iterable[Any]) -> RunView:
        for e in events:
            self.apply(e)
        return self

    # --- an outline, for tests and tools -----------------------------------------------------

    def outline(self) -> dict[str, Any]:
        """The run in a few JSON lines: what the recorded-ledger tests compare."""
        m, rb = self.monitor, self.rollback
        return {
            "run": {"started": self.started is not None, "resumes": len(self.resumes),
                    "finished": self.finished.status if self.finished else None},
            "sections": [[s.id, s.kind, s.name, s.status] for s in self.sections],
            "executions": [[e.key, e.target, e.attempt, e.status, e.section] for e in self.executions],
            "in_flight": [e.key for e in self.in_flight()],
            "effects": [[x.key, x.attempt, x.effect] for x in self.effects],
            "approvals": [{"key": a.key, "answer": None if a.answer is None else a.answer.approved,
                           "pending": a.pending} for a in self.approvals],
            "decision": self.decision.verdict if self.decision else None,
            "monitor": {"stages": [[s.stage, s.end.outcome if s.end else None] for s in m.stages],
                        "baseline_samples": len(m.samples_of("baseline")),
                        "window_samples": len(m.samples_of("window")),
                        "transitions": [[t.rule, t.from_, t.to] for t in m.transitions],
                        "actions": [[a.rule, a.action, a.outcome] for a in m.actions],
                        "segments": len(m.window_segments), "cutover": m.cutover_at is not None},
            "rollback": {"passes": len(rb.passes), "plan": [p.key for p in rb.plan], "state": rb.state,
                         "undone": [[k, e.status] for k, e in rb.outcomes().items()]},
            "others": [f.type for f in self.others],
            "warnings": list(self.warnings),
            **self._stops_outline(),
        }

    def _stops_outline(self) -> dict[str, Any]:
        """Stops and policies, for runs that have them (older outlines stay as they were checked)."""
        if not (self.stops or self.policies):
            return {}
        return {
            "stops": [{"mode": s.mode, "by": s.by, "accepted": s.accepted, "section": s.section, "step": s.step,
                       "policy": s.policy.policy if s.policy else None,
                       "stopped": [x.id if isinstance(x, Section) else x.key for x in self.stopped_by(s)]}
                      for s in self.stops],
            "policies": [[p.policy, p.hook, p.section, p.step, p.decision] for p in self.policies],
        }


def project(events: Iterable[Any]) -> RunView:
    """Fold a run's events, in order, into one view."""
    return RunView().apply_all(events)


# event type -> its fold; a type not named here is kept in RunView.others
_FOLDS: dict[str, Callable[[ViewState, Fact], None]] = {
    ev.RUN_STARTED: runs.run_started,
    ev.RUN_RESUMED: runs.run_resumed,
    ev.RUN_FINISHED: runs.run_finished,
    ev.SECTION_STARTED: sections.section_started,
    ev.SECTION_FINISHED: sections.section_finished,
    ev.STEP_STARTED: steps.step_started,
    ev.STEP_ATTEMPT: steps.step_attempt,
    ev.STEP_FINISHED: steps.step_finished,
    ev.STEP_SKIPPED: steps.step_skipped,
    ev.STEP_EFFECT: steps.step_effect,
    ev.APPROVAL_REQUESTED: approvals.approval_requested,
    ev.APPROVAL_GIVEN: approvals.approval_given,
    ev.DECISION: approvals.decision,
    ev.MONITOR_STARTED: monitor.monitor_started,
    ev.MONITOR_SAMPLE: monitor.monitor_sample,
    ev.MONITOR_TRANSITION: monitor.monitor_transition,
    ev.MONITOR_ACTION: monitor.monitor_action,
    ev.MONITOR_FINISHED: monitor.monitor_finished,
    ev.GUARD_STARTED: guards.guard_started,
    ev.GUARD_SAMPLE: guards.guard_sample,
    ev.GUARD_TRANSITION: guards.guard_transition,
    ev.GUARD_FINISHED: guards.guard_finished,
    ev.ROLLBACK_STARTED: rollback.rollback_started,
    ev.ROLLBACK_FINISHED: rollback.rollback_finished,
    ev.NOTE: notes.note,
    ev.NOTIFY_SENT: notes.notified,
    ev.NOTIFY_FAILED: notes.notified,
    ev.STOP_REQUESTED: stops.stop_requested,
    ev.POLICY_APPLIED: stops.policy_applied,
    ev.DEADLINE_EXCEEDED: deadlines.exceeded,
    ev.DEADLINE_ANSWERED: deadlines.answered,
    ev.WATCH_SAMPLE: watches.watch_sample,
    ev.WATCH_TRANSITION: watches.watch_transition,
    ev.REHEARSAL_STARTED: rehearsals.rehearsal_started,
    ev.REHEARSAL_CYCLE: rehearsals.rehearsal_cycle,
}


__all__ = ["RunView", "project"]
