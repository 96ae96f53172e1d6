"""What the fold of a run's events has gathered so far: RunView's fields, in a class of their own
below the folds (projection/folds/), so each fold can write them without importing the view that
dispatches events to it."""

from __future__ import annotations

from dataclasses import dataclass, field

from tminus.projection.fact import Fact
from tminus.projection.model import (
    Approval,
    DeadlineAlert,
    Decision,
    Effect,
    Execution,
    GuardWatch,
    MonitorSample,
    MonitorTransition,
    MonitorView,
    Note,
    Notification,
    PolicyUse,
    RehearsalView,
    RollbackView,
    RunMark,
    Section,
    Stop,
)


@dataclass
class ViewState:
    """The fields of a RunView (its reading methods and `apply` are in projection/view.py)."""

    started: RunMark | None = None  # the first run.started
    resumes: list[RunMark] = field(default_factory=list)
    finishes: list[RunMark] = field(default_factory=list)  # run.finished, one per process that ended it
    sections: list[Section] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)  # in the order they began
    effects: list[Effect] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    monitor: MonitorView = field(default_factory=MonitorView)
    guards: list[GuardWatch] = field(default_factory=list)  # phases' guards, one per phase and process
    rollback: RollbackView = field(default_factory=RollbackView)
    notes: list[Note] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    stops: list[Stop] = field(default_factory=list)  # every run.stop, accepted or not
    policies: list[PolicyUse] = field(default_factory=list)  # every policy.applied
    alerts: list[DeadlineAlert] = field(default_factory=list)  # every deadline.exceeded, answered or not
    watch_samples: list[MonitorSample] = field(default_factory=list)  # `watch` steps' samples (key: the step)
    watch_transitions: list[MonitorTransition] = field(default_factory=list)  # their rules' transitions
    rehearsal: RehearsalView | None = None  # a rehearsal's own record (a run of kind rehearsal)
    cutover_at: float | None = None  # when the first phase began (resume's reading)
    warnings: list[str] = field(default_factory=list)  # payloads read best effort (newer versions)
    others: list[Fact] = field(default_factory=list)  # events this view does not fold (newer types)
    count: int = 0  # events applied
    last_seq: int = 0
    # The folds' bookkeeping, not for readers (RunView has methods for what they may ask of it).
    # step key -> its execution that started and has not ended (insertion order kept across re-starts)
    _in_flight: dict[str, Execution] = field(default_factory=dict, repr=False)
    # (step key, target) -> its executions so far: counted as they begin, not by scanning them all at
    # every step.started (a 5,000-step run, and the deadline watch folding each event as it comes)
    _executions_of: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)
    _waiting: dict[str | None, Approval] = field(default_factory=dict, repr=False)
    _acting: Stop | None = field(default=None, repr=False)  # the accepted stop this process acts on
    _unlinked: list[Execution | Section] = field(default_factory=list, repr=False)  # stopped before run.stop landed

    def section(self, section_id: str) -> Section | None:
        """The last pass through a section."""
        found = [s for s in self.sections if s.id == section_id]
        return found[-1] if found else None


__all__ = ["ViewState"]
