"""The rehearsal: its record opened with the plan, each cycle run and measured (cycles.py) and
recorded as `rehearsal.cycle`, the record finished with the verdict and the exit code.

Exit codes (the worst cycle decides): 130 the operator interrupted a cycle (its run is left as it is),
12 a cycle's state was not restored (fingerprints differ, the rollback or an undo step failed), 10 a
cycle was blocked by its gates, 14 the lease was held, 1 any other failure, 0 every cycle passed. A
cycle after which the state is unknown (blocked, not rolled back) ends the rehearsal: the cycles after
it are not run (the record says so). A cycle's run that stopped part-way for another reason (a manual
step under --no-input) is rolled back by the rehearsal, and the cycle fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tminus.engine.context import Options
from tminus.engine.exitcodes import Exit
from tminus.engine.rehearsal import state as st
from tminus.engine.rehearsal.cycles import CycleContext, Interrupted, Measured, run_cycle
from tminus.engine.rehearsal.plan import Cycle, RehearsalPlan
from tminus.engine.rehearsal.record import RehearsalRecord
from tminus.engine.session import new_run_id
from tminus.errors import LockHeld, TminusError
from tminus.events import Subscriber
from tminus.ledger.interfaces import Ledger
from tminus.runbook.document import RunbookDocument
from tminus.runbook.procedure import procedure_hashes

# the exit a cycle calls for, most serious first
_SEVERITY = (Exit.INTERRUPTED, Exit.ROLLBACK_FAILED, Exit.BLOCKED, Exit.LOCKED, Exit.FAILED)


@dataclass
class Outcome:
    rehearsal_id: str
    ok: bool
    exit: Exit
    reason: str
    cycles: list[dict[str, Any]] = field(default_factory=list)  # each cycle's figures
    timing: dict[str, float] = field(default_factory=dict)  # total_s, runs_s, fingerprint_s, overhead_s

    def overhead(self) -> str:
        """The rehearsal's own cost beside the runs and the fingerprints (planning, reading the ledger back)."""
        t = self.timing
        share = t["overhead_s"] / t["total_s"] * 100 if t.get("total_s") else 0.0
        return (f"took {t['total_s']:.2f}s: runs {t['runs_s']:.2f}s, fingerprints {t['fingerprint_s']:.2f}s, "
                f"the rehearsal itself {t['overhead_s']:.2f}s ({share:.0f}%)")


def rehearse(doc: RunbookDocument, ledger: Ledger, opts: Options, plan: RehearsalPlan, *,
             subscribers: list[Subscriber] | None = None, pause_display: Callable[[], Any] | None = None,
             progress: Callable[[str], None] = lambda _text: None, ledger_url: str | None = None) -> Outcome:
    """Run every planned cycle and record them."""
    began = time.monotonic()
    found = st.sources(doc, opts)
    rid = new_run_id()
    record = RehearsalRecord(ledger, doc, run_id=rid, environment=opts.environment, operator=opts.operator)
    record.open({**plan.to_dict(), "procedure_hashes": procedure_hashes(doc, opts.environment),
                 "fingerprints": [s.describe() for s in found.found], "fingerprint_notes": found.notes})
    ctx = CycleContext(doc, ledger, opts, rid, found.found, plan.point_of_no_return, subscribers or [],
                       pause_display, ledger_url)
    for note in found.notes:
        progress(f"note: {note}")
    if not found.found:
        progress("note: nothing to fingerprint (no fingerprint step, no migrate or backup database)")
    measured: list[Measured] = []
    try:
        for cycle in plan.cycles:
            progress(f"▶ cycle {cycle.index + 1}/{len(plan.cycles)}: {_what(cycle)}")
            one = _run_one(ctx, cycle)
            record.cycle(one.figures)
            measured.append(one)
            progress(_ended(cycle, one.figures))
            if one.halt:
                left = len(plan.cycles) - cycle.index - 1
                if left:
                    progress(f"stopped: after cycle {cycle.index + 1} the state is not the one the rehearsal began "
                             f"with; {left} cycle(s) not run")
                break
    except BaseException as exc:  # the record ends whatever happens; the error goes on up
        record.finish(False, int(Exit.FAILED), f"the rehearsal stopped: {exc!r}")
        raise
    outcome = _verdict(rid, plan, measured)
    record.finish(outcome.ok, int(outcome.exit), outcome.reason)
    runs = sum(m.figures.get("run_s") or 0.0 for m in measured)
    prints = sum(m.figures.get("fingerprint_s") or 0.0 for m in measured)
    total = time.monotonic() - began
    outcome.timing = {"total_s": round(total, 3), "runs_s": round(runs, 3), "fingerprint_s": round(prints, 3),
                      "overhead_s": round(max(0.0, total - runs - prints), 3)}
    progress(outcome.overhead())
    return outcome


def _run_one(ctx: CycleContext, cycle: Cycle) -> Measured:
    """One cycle; a cycle that cannot start or finish (the lease, a refused rollback) is a failed cycle."""
    try:
        return run_cycle(ctx, cycle)
    except Interrupted as exc:
        return Measured({**_failed(cycle, str(exc)), "run_id": exc.run_id}, Exit.INTERRUPTED, halt=True)
    except LockHeld as exc:
        return Measured(_failed(cycle, f"lease held: {exc}"), Exit.LOCKED, halt=True)
    except TminusError as exc:
        return Measured(_failed(cycle, str(exc)), Exit.FAILED, halt=True)


def _failed(cycle: Cycle, problem: str) -> dict[str, Any]:
    return {**cycle.to_dict(), "run_id": None, "status": None, "ok": False, "problems": [problem],
            "budget_s": cycle.budget, "fingerprints": None, "kill_switch": None}


def _verdict(rid: str, plan: RehearsalPlan, measured: list[Measured]) -> Outcome:
    figures = [m.figures for m in measured]
    bad = [m for m in measured if not m.figures.get("ok")]
    skipped = len(plan.cycles) - len(measured)
    if not bad and not skipped:
        rtos = [f["rto_s"] for f in figures if f.get("rto_s") is not None]
        most = f", longest RTO {max(rtos):.2f}s" if rtos else ""
        return Outcome(rid, True, Exit.COMPLETED, f"{len(figures)} cycle(s) passed{most}", figures)
    codes = [m.exit for m in bad]
    code = next((c for c in _SEVERITY if c in codes), Exit.FAILED)
    first = bad[0].figures if bad else {}
    why = "; ".join(first.get("problems") or []) or "cycles not run"
    reason = (f"{len(bad)} of {len(plan.cycles)} cycle(s) failed" + (f", {skipped} not run" if skipped else "")
              + (f"; cycle {first.get('index', 0) + 1} ({_what_of(first)}): {why}" if bad else ""))
    return Outcome(rid, False, code, reason, figures)


def _what(cycle: Cycle) -> str:
    return _what_of(cycle.to_dict())


def _what_of(figures: dict[str, Any]) -> str:
    fault, at = figures.get("fault"), figures.get("at")
    if at:
        return f"{fault} after phase '{at}'"
    return {"roll_forward": "roll forward, then roll back", "kill_switch": "kill switch, then roll back",
            "monitor": "monitor rule forced to fire"}.get(str(fault), str(fault))


def _ended(cycle: Cycle, f: dict[str, Any]) -> str:
    mark = "✓" if f.get("ok") else "✗"
    rto = f.get("rto_s")
    prints = f.get("fingerprints") or {}
    state = {True: "state restored", False: "state differs", None: "nothing fingerprinted"}[prints.get("equal")]
    if prints.get("equal") is False and prints.get("expected"):
        state = "state differs (expected after the point of no return)"
    took = f"RTO {rto:.2f}s" if rto is not None else "no RTO"
    return f"{mark} cycle {cycle.index + 1}: {f.get('status')}, {took}, {state}"


__all__ = ["Outcome", "rehearse"]
