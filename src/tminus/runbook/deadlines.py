"""The deadlines a runbook sets, as plain records: a phase's `deadline`, the rollback's and the
downtime's, each with where its clock starts and stops. The engine watches them (engine/deadlines.py),
`run.started` records them and the projection measures them (projection/deadlines.py) from the events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tminus.runbook.models import Phase, Runbook

SECTION, STEP, ROLLBACK = "section", "step", "rollback"  # what a clock's mark refers to
NOTIFY, PAUSE = "notify", "pause"


@dataclass(frozen=True)
class DeadlineSpec:
    id: str  # phase:NAME | rollback | downtime
    what: str  # in words: "phase 'deploy'", "the rollback", "the downtime (from maintenance_on to ...)"
    after: float  # seconds
    action: str  # notify | pause | rollback
    notify: tuple[str, ...]
    start: tuple[str, str]  # (section | step | rollback, section id or step key)
    end: tuple[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "what": self.what, "after": self.after, "action": self.action,
                "notify": list(self.notify), "start": list(self.start), "end": list(self.end)}


# Each list of phases, in the order a run meets them: its runbook key, its section kind, its words.
PHASE_LISTS = (("phases", "phase", "phase"), ("after_go", "after-go", "after_go phase"),
               ("finalize", "finalize", "finalize phase"))


def every_phase(rb: Runbook) -> list[tuple[str, str, str, int, Phase]]:
    """(runbook key, section kind, words, index, phase) of every phase, after_go and finalize included."""
    return [(key, kind, words, i, p) for key, kind, words in PHASE_LISTS for i, p in enumerate(getattr(rb, key))]


def phase_section(phase: Phase, kind: str = "phase") -> str:
    """The section id a phase runs under (engine/lifecycle.section_id spells it the same way)."""
    return f"{kind}:{phase.name}"


def endpoint(rb: Runbook, name: str) -> tuple[str, str] | None:
    """A downtime's `from` or `to`: a phase (its id or name) or a step (its id) of any kind of phase
    (the downtime of 002 ends when an after_go phase lifts maintenance mode)."""
    phases = every_phase(rb)
    for _key, kind, _words, _i, phase in phases:
        if name in (phase.id, phase.name):
            return SECTION, phase_section(phase, kind)
    for *_, phase in phases:
        for step in phase.steps:
            if step.id == name:
                return STEP, step.key
    return None


def deadlines_of(rb: Runbook) -> list[DeadlineSpec]:
    """Every deadline of a loaded (and rendered) runbook, in the order the run meets them."""
    out: list[DeadlineSpec] = []
    down = rb.downtime
    if down is not None:
        start, end = endpoint(rb, down.from_), endpoint(rb, down.to)
        if start is not None and end is not None:
            out.append(DeadlineSpec("downtime", f"the downtime (from {down.from_} to {down.to})", down.deadline,
                                    down.action, tuple(down.notify), start, end))
    for _key, kind, words, _i, phase in every_phase(rb):
        d = phase.deadline
        if d is not None:
            sid = (SECTION, phase_section(phase, kind))
            out.append(DeadlineSpec(sid[1], f"{words} '{phase.name}'", d.after, d.action, tuple(d.notify), sid, sid))
    if rb.rollback.deadline is not None:
        mark = (ROLLBACK, "")
        out.append(DeadlineSpec("rollback", "the rollback", rb.rollback.deadline, rb.rollback.action,
                                tuple(rb.rollback.notify), mark, mark))
    return out


__all__ = ["NOTIFY", "PAUSE", "ROLLBACK", "SECTION", "STEP", "DeadlineSpec", "deadlines_of", "endpoint", "every_phase"]
