"""A cycle's figures, read from its run's events through the projection (never from the engine's
memory: what the record says is what the ledger says).

Times are seconds, from the events' own clocks:
- reached_s: run.started to the end of the phase the fault follows (else to the fault);
- rto_s: the fault (the stop request, the kill, `tminus rollback` asked) to rollback.finished;
- verify_s: the fault to the first verify check that passed after the rollback (None when the
  runbook has no after_rollback checks, or none passed).
"""

from __future__ import annotations

from typing import Any

from tminus.engine.rehearsal.plan import Cycle
from tminus.projection.model import FAILED, OK
from tminus.projection.view import RunView
from tminus.runbook.document import RunbookDocument
from tminus.runbook.models import Phase, Step

VERIFY_AFTER_ROLLBACK = "verify-after-rollback"  # engine/lifecycle.py's section kind


def measure(view: RunView, doc: RunbookDocument, cycle: Cycle, *, fault_at: float | None = None,
            rollback_asked: bool = False) -> dict[str, Any]:
    """The figures of one cycle's run. `fault_at`: the fault's time when the run cannot know it (a
    kill); `rollback_asked`: the fault is the operator's `tminus rollback` (roll-forward cycles)."""
    t0 = view.t0
    if fault_at is None:
        fault_at = _asked_rollback(view) if rollback_asked else _fault(view)
    reached = _phase_end(view, cycle.at) if cycle.at is not None else fault_at
    end = view.rollback.end
    finished = view.finished
    stops = view.accepted_stops()
    return {
        "status": finished.status if finished else None,
        "exit_code": finished.exit_code if finished else None,
        "reached_s": _seconds(t0, reached),
        "fault_at": fault_at,
        "fault_by": stops[0].by if stops else None,  # policy:rehearsal when the injected fault struck first
        "rto_s": _seconds(fault_at, end.at if end is not None else None),
        "rollback_ok": None if end is None else end.ok,
        "verify_s": _seconds(fault_at, _first_verify(view, fault_at)),
        "undo_failed": [{"step": e.key, "name": e.name, "error": e.message}
                        for e in view.rollback.executions if e.status == FAILED],
        "undo_missing": undo_missing(view, doc),
        "drills": [{"step": e.key, "name": e.name, "drill_seconds": e.outputs.get("drill_seconds")}
                   for e in view.executions if e.kind == "backup" and e.outputs.get("drill_seconds") is not None],
    }


def _seconds(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(max(0.0, end - start), 3)


def _fault(view: RunView) -> float | None:
    """When the run was asked to stop: the first accepted stop request (a rehearsal policy, a monitor
    rule), else the first monitor action that rolled back."""
    stops = view.accepted_stops()
    if stops:
        return stops[0].requested_at or stops[0].at
    fired = [a for a in view.monitor.actions if a.outcome == "rollback"]
    return fired[0].at if fired else None


def _asked_rollback(view: RunView) -> float | None:
    asked = [r for r in view.resumes if r.action == "rollback"]
    return asked[-1].at if asked else None


def _phase_end(view: RunView, name: str) -> float | None:
    """When the phase ended, if it passed (a phase that failed was not reached as planned)."""
    ends = [s.finished_at for s in view.sections_of("phase") if s.name == name and s.status == OK]
    return ends[-1] if ends else None


def phase_problem(view: RunView, name: str) -> str | None:
    """Why the phase a fault follows did not pass, when it did not: the fault point was never reached
    as planned (a rehearsal's fault still strikes after a failed phase: the policy takes precedence)."""
    passes = [s for s in view.sections_of("phase") if s.name == name]
    if passes and passes[-1].status == OK:
        return None
    if not passes:
        return f"phase '{name}' never started"
    last = passes[-1]
    failed = view.outcomes().get(last.failed_step or "")
    why = "; ".join(last.failures) or (f"step {last.failed_step} failed: {failed.message}" if failed is not None
                                       else last.stopped or last.status)
    return f"phase '{name}' did not pass, the fault point was not reached: {why}"


def _first_verify(view: RunView, after: float | None) -> float | None:
    if after is None:
        return None
    passed = [e.finished_at for e in view.executions
              if e.section_kind == VERIFY_AFTER_ROLLBACK and e.status == OK and e.finished_at is not None
              and e.finished_at >= after]
    return min(passed) if passed else None


def undo_missing(view: RunView, doc: RunbookDocument) -> list[dict[str, Any]]:
    """Steps the run executed that change something and that nothing in the rollback reversed: no
    `undo`, no phase `undo`, no undo derived by their kind in the recorded plan."""
    rb = doc.runbook
    by_key: dict[str, tuple[Step, Phase]] = {s.key: (s, p) for p in (*rb.phases, *rb.live_phases) for s in p.steps}
    planned = [p.key for p in view.rollback.plan]
    out: list[dict[str, Any]] = []
    for key, execution in view.outcomes().items():
        found = by_key.get(key)
        if found is None or execution.status not in (OK, FAILED):
            continue
        step, phase = found
        effect = str(step.effect)
        if effect in ("none", "additive") or step.undo or phase.undo:
            continue
        if any(k.startswith(f"{key}.undo") for k in planned):
            continue  # its kind derived the undo (a migrate step's revert)
        why = ("irreversible: no undo in the runbook" if effect == "irreversible"
               else f"{effect}: its kind derived no undo from what it recorded")
        out.append({"step": key, "name": step.title, "why": why})
    return out


__all__ = ["measure", "phase_problem", "undo_missing"]
