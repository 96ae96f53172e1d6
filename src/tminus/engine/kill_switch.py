"""The kill switch: the runbook's `kill_switch.steps`, run at any time by `tminus kill-switch` (or a
rehearsal), without gates, under the runbook's lease, timed against `kill_switch.target`.

It is the emergency path, so the lease does not stand in its way for long:
- a lease left by a run that ended (or was never recorded) is reclaimed, as for any run;
- a lease whose holder is gone (dead process, no heartbeat: *stale*) is broken and taken over;
- a lease held by a live run (one that may be hung, or mid-cutover) refuses it (exit 14) unless the
  operator says `--force`: then the lease is broken on the record (a note in the holder's run) and
  taken; the ledger's fencing refuses every later write of the fenced run, which stops, resumable,
  as after `tminus unlock` (within a heartbeat: a step it is running may still finish).

A failing step stops it: nothing is undone (reverting a kill switch would restore the broken path),
the run ends `aborted` (exit 13). Every step passing within the target: `completed` (exit 0); passing
later than the target: `completed_late` (exit 17). The clock starts when the command does, so taking
over a lease counts. The section's `section.finished` records `actual` (seconds) and `budget` (the
target); `run.started` records the release that was live and its run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tminus.engine import lifecycle as lc
from tminus.engine.lifecycle import Next, Section, SectionResult
from tminus.engine.run_state import RunState
from tminus.ledger.interfaces import Ledger
from tminus.ledger.records import RESUMABLE, LeaseRecord
from tminus.projection.releases import Release

LATE = "completed_late"


@dataclass
class TakeOver:
    """The lease the kill switch broke to run: whose, and why."""

    holder: LeaseRecord
    why: str  # stale: why the holder is gone; forced: the operator's word

    def to_dict(self) -> dict[str, Any]:
        return {"holder": self.holder.to_dict(), "why": self.why}


def take_over(ledger: Ledger, key: str, *, force: bool, by: str, reason: str) -> TakeOver | None:
    """Before acquiring the lease: break it when its holder is an unended run that is gone (stale),
    or a live one and `force`. Otherwise leave it: the acquisition reclaims an ended run's lease and
    refuses a live holder (LockHeld, exit 14)."""
    holder = ledger.get_lease(key)
    if holder is None:
        return None
    run = ledger.get_run(holder.run_id)
    if run is None or run.status not in RESUMABLE:
        return None  # an ended or unrecorded run's lease: the acquisition reclaims it
    stale = holder.stale_reason()
    if stale is None and not force:
        return None
    why = f"its holder is gone ({stale})" if stale is not None else f"forced by {by}: {reason}"
    if ledger.break_lease(key, by=by, reason=f"kill switch: {why}") is None:
        return None  # released meanwhile
    return TakeOver(holder, why)


@dataclass
class Timing:
    """What the section measured, for the runner to end the run with (late: exit 17)."""

    actual: float | None = None
    within: bool = True


def section(state: RunState, began: float) -> tuple[Section, Timing]:
    ks = state.rb.kill_switch
    assert ks is not None
    timing = Timing()
    return Section(lc.KILL_SWITCH, run=lambda s: _run(state, s, began, timing),
                   starting=lambda: {"target": ks.target, "steps": [s.key for s in ks.steps]}), timing


def _run(state: RunState, section: Section, began: float, timing: Timing) -> SectionResult:
    ks = state.rb.kill_switch
    assert ks is not None
    for step in ks.steps:
        outcome = state.run_step(step, section.id)
        if not outcome.ok and step.failure_policy != "continue":
            took = time.monotonic() - began
            return SectionResult(Next.ABORT, ok=False, data=_timing(took, ks.target, step.key), reason=(
                f"kill switch step '{step.title}' failed after {took:.2f}s:\n{outcome.message}\n"
                "(a kill switch undoes nothing: the steps before it stay done)"))
    took = time.monotonic() - began
    within = took <= ks.target
    timing.actual, timing.within = took, within
    return SectionResult(Next.COMPLETE, data=_timing(took, ks.target), reason=(
        f"kill switch done in {took:.2f}s, " + (f"within its target of {ks.target:g}s" if within else
                                                 f"MISSED its target of {ks.target:g}s")))


def _timing(took: float, target: float, failed: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"actual": round(took, 3), "budget": target, "within_target": took <= target}
    if failed is not None:
        data["failed_step"] = failed
    return data




def live_of(ledger: Ledger, runbook: str, environment: str) -> Release | None:
    """The release live in `environment` (the release ledger's current run), named in run.started.
    Newest run first, stopping at the first that went live and stayed: the emergency path does not
    fold the whole history (`tminus releases` does)."""
    from tminus.projection import project
    from tminus.projection.releases import LIVE, releases

    for record in ledger.list_runs(runbook=runbook, environment=environment, kind="run", limit=100_000):
        found = releases([(record, project(ledger.events(record.id)))])
        if found and found[0].live is not None and found[0].live.state == LIVE:
            return found[0].live
    return None

__all__ = ["LATE", "TakeOver", "Timing", "live_of", "section", "take_over"]
