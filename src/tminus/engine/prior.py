"""What an interrupted run had already done, rebuilt from its ledger events (resume.py fills it; the
runner, its sections and the rollback read it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tminus.engine import lifecycle as lc
from tminus.engine.outcome import StepOutcome


class _SectionFlag:
    """A yes/no view of one section's recorded status: `prior.gates_passed` reads and writes
    `prior.sections["gates"]`, so what resume fills and what the runner reads are one record."""

    def __init__(self, section: str, yes: str, no: str) -> None:
        self.section, self.yes, self.no = section, yes, no

    def __get__(self, prior: Prior | None, owner: type | None = None) -> bool:
        return prior is not None and prior.sections.get(self.section) == self.yes

    def __set__(self, prior: Prior, value: bool) -> None:
        prior.sections[self.section] = self.yes if value else self.no


@dataclass
class RollbackEnded:
    """A rollback that finished (its `rollback.finished` is in the ledger) in a process that died
    before it recorded the run's end: resume ends the run as the rollback did and runs nothing."""

    ok: bool
    reason: str  # why the rollback began
    state: str = ""  # what it said when it did not end well (a failed undo step, verify after rollback)


@dataclass
class Prior:
    """What an interrupted run had already done, rebuilt from its ledger events (see resume.py)."""

    done: dict[str, StepOutcome] = field(default_factory=dict)
    # section id -> its last recorded status: ok | failed | stopped, and "running" for a rollback
    # that began and has not finished ok. A section recorded ok is not run again.
    sections: dict[str, str] = field(default_factory=dict)
    rollback_reason: str = ""
    # key of the step that started but never finished -> "retry" | "skip" | "rollback" | "wait"
    interrupted: dict[str, str] = field(default_factory=dict)
    # "wait": how its surviving process ended -> "ended" (adopt its result) | "timeout" (killed at its timeout)
    adopted: dict[str, str] = field(default_factory=dict)
    baseline_samples: list[dict[str, Any]] = field(default_factory=list)  # monitor.sample data, stage baseline
    cutover_at: float | None = None  # epoch seconds the first phase began
    window_samples: list[dict[str, Any]] = field(default_factory=list)  # monitor.sample data, stage window
    window_segments: list[list[float]] = field(default_factory=list)  # [start, last sample] per watch, epoch
    pause_answers: dict[str, float] = field(default_factory=dict)  # rule -> epoch of its last "keep watching"
    executions: dict[str, int] = field(default_factory=dict)  # step key -> executions started so far
    effects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # step key -> step.effect data
    rollback_plan: list[dict[str, Any]] | None = None  # the plan the last rollback.started recorded
    rollback_ended: RollbackEnded | None = None  # the last rollback finished, the run's end was never recorded

    gates_passed = _SectionFlag(lc.GATES, lc.OK, lc.FAILED)
    verify_passed = _SectionFlag(lc.VERIFY, lc.OK, lc.FAILED)
    decided_go = _SectionFlag(lc.DECISION, lc.OK, lc.FAILED)  # a resumed run goes on to the monitor
    baseline_done = _SectionFlag(lc.BASELINE, lc.OK, lc.FAILED)
    in_rollback = _SectionFlag(lc.ROLLBACK, lc.RUNNING, lc.OK)


__all__ = ["Prior", "RollbackEnded"]
