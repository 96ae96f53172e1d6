"""Which cycles a rehearsal runs: one per phase before the point of no return (or the phases `--at`
names), then the monitor, kill switch and roll-forward cycles; and which phases are not rehearsed, why.

The point of no return is `tminus plan`'s (engine/plan.py): a phase from it on cannot be failed and
rolled back to where it started, so it gets no fail/kill cycle; only a roll-forward cycle (a full run,
then `tminus rollback`) covers it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tminus.engine.context import Options
from tminus.errors import TminusError
from tminus.runbook.document import RunbookDocument
from tminus.runbook.models import Phase

FAIL, KILL, MONITOR, KILL_SWITCH, ROLL_FORWARD = "fail", "kill", "monitor", "kill_switch", "roll_forward"
FAULTS = (FAIL, KILL, MONITOR)  # what `--fault` takes
ROLLBACK, ROLL_FORWARD_ONLY = "rollback", "roll_forward_only"  # how a cycle rehearses what it covers


class PlanError(TminusError):
    """The rehearsal cannot be planned as asked (an unknown `--at`, a fault the runbook cannot take)."""


@dataclass
class Cycle:
    index: int
    fault: str  # fail | kill | monitor | kill_switch | roll_forward
    at: str | None = None  # the phase the fault follows (fail and kill cycles)
    phase_index: int | None = None  # its position in `phases:`
    rehearsed_as: str = ROLLBACK
    budget: float | None = None  # the phase's budget; else the sum of the budgets the cycle runs
    covers: list[str] = field(default_factory=list)  # the phases this cycle rehearses

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RehearsalPlan:
    cycles: list[Cycle]
    not_rehearsed: list[dict[str, Any]]  # {phase, why, covered_by}
    point_of_no_return: dict[str, Any] | None
    all_phases: bool  # every phase is covered by a planned cycle
    options: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"cycles": [c.to_dict() for c in self.cycles], "not_rehearsed": self.not_rehearsed,
                "point_of_no_return": self.point_of_no_return, "all_phases": self.all_phases,
                "options": self.options}


def point_of_no_return(doc: RunbookDocument, opts: Options) -> dict[str, Any] | None:
    """`tminus plan`'s point of no return (the first step without undo), not a second copy of it."""
    from tminus.engine.plan import build_plan

    return build_plan(doc, opts).point_of_no_return


def plan_rehearsal(doc: RunbookDocument, opts: Options, *, at: list[str] | None = None, fault: str = FAIL,
                   roll_forward: bool = False) -> RehearsalPlan:
    rb = doc.runbook
    if fault not in FAULTS:
        raise PlanError(f"unknown fault '{fault}': one of {', '.join(FAULTS)}")
    ponr = point_of_no_return(doc, opts)
    # phases of `phases:` before the point of no return can be failed and rolled back
    first_lost = len(rb.phases)
    if ponr is not None and ponr.get("section") == "phases":
        first_lost = next(i for i, p in enumerate(rb.phases) if p.name == ponr["phase"])
    live = {n for p in rb.live_phases for n in (p.name, p.id) if n}
    chosen = _select(rb.phases, at or [], first_lost, ponr, live)
    cycles: list[Cycle] = []
    per_phase = KILL if fault == KILL else FAIL
    for i in chosen:
        phase = rb.phases[i]
        cycles.append(Cycle(len(cycles), per_phase, phase.name, i, budget=phase.budget, covers=[phase.name]))
    if fault == MONITOR:
        if rb.monitor is None:
            raise PlanError("--fault monitor: the runbook has no monitor section")
        if not any(r.action == "rollback" for r in rb.monitor.rules):
            raise PlanError("--fault monitor: no monitor rule has action rollback")
        cycles.append(Cycle(len(cycles), MONITOR, budget=_budget(rb.phases)))
    if rb.kill_switch is not None:
        ran = rb.phases[:first_lost]
        cycles.append(Cycle(len(cycles), KILL_SWITCH, budget=_budget(ran)))
    later = [p.name for p in rb.phases[first_lost:]] + [p.name for p in rb.live_phases]
    if roll_forward:
        cycles.append(Cycle(len(cycles), ROLL_FORWARD, rehearsed_as=ROLL_FORWARD_ONLY,
                            budget=_budget([*rb.phases, *rb.live_phases]), covers=later))
    why = _why_not(ponr, [p.name for p in rb.phases[first_lost:]])
    not_rehearsed = [{"phase": name, "why": why(name), "covered_by": ROLL_FORWARD if roll_forward else None}
                     for name in later]
    before = {rb.phases[i].name for i in range(first_lost)}
    covered = {name for c in cycles if c.fault in (FAIL, KILL) for name in c.covers}
    all_phases = before <= covered and (roll_forward or not later)
    options = {"at": list(at or []), "fault": fault, "roll_forward": roll_forward}
    return RehearsalPlan(cycles, not_rehearsed, ponr, all_phases, options)


def _select(phases: list[Phase], wanted: list[str], first_lost: int, ponr: dict[str, Any] | None,
            live: set[str]) -> list[int]:
    """Indexes of the phases to fail after: every one before the point of no return, or those named
    by `--at` (a name or an id), in runbook order."""
    if not wanted:
        return list(range(first_lost))
    found: list[int] = []
    for name in wanted:
        index = next((i for i, p in enumerate(phases) if name in (p.name, p.id)), None)
        if index is None and name in live:
            raise PlanError(f"--at {name}: phase '{name}' runs after the go decision: it cannot be failed and "
                            "rolled back on its own; rehearse it with --roll-forward")
        if index is None:
            listed = ", ".join(f"'{p.name}'" + (f" (id {p.id})" if p.id else "") for p in phases)
            raise PlanError(f"--at {name}: no such phase; the runbook's phases: {listed}")
        if index >= first_lost:
            assert ponr is not None
            raise PlanError(
                f"--at {name}: phase '{phases[index].name}' is at or after the point of no return "
                f"('{ponr['step']}' in phase '{ponr['phase']}' has no undo): it cannot be rolled back; "
                "rehearse it with --roll-forward")
        found.append(index)
    return sorted(set(found))


def _why_not(ponr: dict[str, Any] | None, lost: list[str]) -> Any:
    def why(name: str) -> str:
        # an after_go/finalize phase is live once it runs: only a full run and its rollback rehearse it
        if ponr is None or (name not in lost and ponr.get("section") != "phases"):
            return "runs after the go decision: rehearsed by the roll-forward cycle only"
        if name == ponr["phase"]:
            return f"its step '{ponr['step']}' is the point of no return (no undo)"
        return f"after the point of no return ('{ponr['step']}' in phase '{ponr['phase']}')"
    return why


def _budget(phases: list[Phase]) -> float | None:
    budgets = [p.budget for p in phases if p.budget is not None]
    return float(sum(budgets)) if budgets else None


__all__ = ["FAIL", "FAULTS", "KILL", "KILL_SWITCH", "MONITOR", "ROLLBACK", "ROLL_FORWARD", "ROLL_FORWARD_ONLY",
           "Cycle", "PlanError", "RehearsalPlan", "plan_rehearsal", "point_of_no_return"]
