"""Deadlines measured from a run's events: each one's clock starts at the first start of what it
watches (a phase, the rollback, the step or phase that begins the downtime) and stops at its end,
so a resumed run keeps the clock it had. What a deadline watches is what `run.started` recorded
(runbook/deadlines.py writes it): `start` and `end` marks, each (section, id), (step, key) or
(rollback, "").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tminus.projection.model import RUNNING, DeadlineAlert
from tminus.projection.state import ViewState

_UNFINISHED = ("interrupted", "needs_operator", "rollback_failed")  # a resume goes on: the clock too
_RESUMED = ("interrupt", "needs_operator")  # stop modes after which a resume runs the section on


@dataclass
class Measured:
    id: str
    what: str
    after: float  # the deadline, seconds
    action: str
    notify: list[str] = field(default_factory=list)
    started_at: float | None = None  # None: its clock never started
    ended_at: float | None = None  # None: still open
    alert: DeadlineAlert | None = None
    now: float = 0.0

    @property
    def actual(self) -> float | None:
        """Seconds on its clock: to its end, or to now while it is open."""
        if self.started_at is None:
            return None
        return max(0.0, (self.ended_at if self.ended_at is not None else self.now) - self.started_at)

    @property
    def exceeded_by(self) -> float | None:
        actual = self.actual
        return None if actual is None or actual <= self.after else actual - self.after

    @property
    def state(self) -> str:
        """not started | open | met | exceeded (exceeded also while still open)."""
        if self.started_at is None:
            return "not started"
        if self.exceeded_by is not None or self.alert is not None:
            return "exceeded"
        return "open" if self.ended_at is None else "met"


def measure(view: ViewState, specs: list[dict[str, Any]] | None = None, now: float | None = None) -> list[Measured]:
    if specs is None:
        recorded = view.started.data.get("deadlines") if view.started is not None else None
        specs = recorded if isinstance(recorded, list) else []
    now = time.time() if now is None else now
    run_end = _run_end(view)
    out: list[Measured] = []
    for spec in specs:
        try:
            m = Measured(str(spec["id"]), str(spec.get("what") or spec["id"]), float(spec["after"]),
                         str(spec.get("action") or "notify"), list(spec.get("notify") or []), now=now)
            start, end = _mark(spec["start"]), _mark(spec["end"])
        except (KeyError, TypeError, ValueError):
            continue  # a payload this version cannot read: left out rather than guessed
        m.started_at = _started(view, start)
        if m.started_at is not None:
            m.ended_at = _ended(view, end)
            if m.ended_at is None and run_end is not None:
                m.ended_at = max(run_end, m.started_at)  # the run ended before what ends it ran
        m.alert = next((a for a in view.alerts if a.id == m.id), None)
        out.append(m)
    return out


def _mark(value: Any) -> tuple[str, str]:
    kind, ref = value
    return str(kind), str(ref)


def _started(view: ViewState, mark: tuple[str, str]) -> float | None:
    kind, ref = mark
    if kind == "section":
        passes = [s for s in view.sections if s.id == ref and s.started_at is not None]
        return passes[0].started_at if passes else None
    if kind == "step":
        runs = [e for e in view.executions if e.key == ref and e.started_at is not None]
        return runs[0].started_at if runs else None
    if kind == "rollback":
        return view.rollback.passes[0].at if view.rollback.passes else None
    return None


def _ended(view: ViewState, mark: tuple[str, str]) -> float | None:
    kind, ref = mark
    if kind == "section":
        s = view.section(ref)
        if s is None or s.status == RUNNING or s.stopped in _RESUMED:
            return None  # running, or cut short for a resume to run it on
        return s.finished_at
    if kind == "step":
        runs = [e for e in view.executions if e.key == ref]
        last = runs[-1] if runs else None
        return last.finished_at if last is not None and last.ended else None
    if kind == "rollback":
        passes = view.rollback.passes
        return passes[-1].end.at if passes and passes[-1].end is not None else None
    return None


def _run_end(view: ViewState) -> float | None:
    """When the run ended for good (a resumable ending is not an end)."""
    if not view.finishes or (view.resumes and view.resumes[-1].seq > view.finishes[-1].seq):
        return None
    last = view.finishes[-1]
    return None if last.status in _UNFINISHED else last.at


__all__ = ["Measured", "measure"]
