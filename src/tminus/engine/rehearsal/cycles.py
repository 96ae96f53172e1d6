"""One cycle: fingerprint, run the runbook with one fault (a small function per fault, in FAULTS),
fingerprint again, read the figures from the ledger, judge.

Each fault function runs ordinary in-process sessions (the cycle's run carries the rehearsal's tag in
its run.started) and hands back a `Ran`: which run to measure and what only it knows (the time of a
kill, the kill switch's timing). A new fault is one function here and its name in FAULTS (and, if it
is a policy or a child process, its machinery in faults.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tminus.engine.context import Options
from tminus.engine.exitcodes import Exit
from tminus.engine.lifecycle import Section, SectionResult
from tminus.engine.policy import CONTINUE, Decision, Policy, stop
from tminus.engine.rehearsal import faults
from tminus.engine.rehearsal import state as st
from tminus.engine.rehearsal.figures import measure, phase_problem
from tminus.engine.rehearsal.plan import FAIL, KILL, KILL_SWITCH, MONITOR, ROLL_FORWARD, Cycle
from tminus.engine.session import Session
from tminus.errors import TminusError
from tminus.events import Subscriber
from tminus.ledger.interfaces import Ledger
from tminus.projection import project
from tminus.runbook.document import RunbookDocument

ROLLED_BACK = "rolled_back"


class Interrupted(TminusError):
    """The operator stopped a cycle's run (Ctrl-C, SIGTERM): the rehearsal stops too, leaving the run
    as it is (resumable, or `tminus rollback RUN_ID`)."""

    def __init__(self, run_id: str, why: str) -> None:
        super().__init__(f"run {run_id} was interrupted ({why}); it is left as it is: `tminus rollback {run_id}` "
                         "undoes it, `tminus resume` carries it on")
        self.run_id = run_id


@dataclass
class CycleContext:
    """What every cycle of one rehearsal shares."""

    doc: RunbookDocument
    ledger: Ledger
    opts: Options
    rehearsal_id: str
    sources: list[st.Source]
    point_of_no_return: dict[str, Any] | None = None
    subscribers: list[Subscriber] = field(default_factory=list)
    pause_display: Callable[[], Any] | None = None
    ledger_url: str | None = None  # for a fault that runs tminus in a child process

    def tags(self, cycle: Cycle) -> dict[str, Any]:
        return {"rehearsal": {"id": self.rehearsal_id, "cycle": cycle.index, "fault": cycle.fault, "at": cycle.at}}

    def session(self, cycle: Cycle, policy: Policy | None = None) -> Session:
        """A normal session (its own copy of the options: a session may set some of them)."""
        session = Session(self.doc, self.ledger, replace(self.opts), list(self.subscribers),
                          pause_display=self.pause_display, policy=policy)
        session.tags = self.tags(cycle)
        return session

    def roll_back(self, cycle: Cycle, run_id: str, reason: str) -> None:
        """`tminus rollback RUN` in-process: the same undo path an operator takes."""
        record = self.ledger.get_run(run_id)
        if record is None:
            raise TminusError(f"run {run_id} is not in the ledger")
        self.session(cycle).rollback(record, reason=reason)


@dataclass
class Ran:
    """What a fault function hands back."""

    run_id: str
    fault_at: float | None = None  # when the fault struck, when the run's events cannot say (a kill)
    rollback_asked: bool = False  # the fault is a rollback asked of a completed run (roll-forward)
    kill_switch: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)


# --- the faults ------------------------------------------------------------------------------------


def fail(ctx: CycleContext, cycle: Cycle) -> Ran:
    """Run up to and including the phase; FailAfter takes the rollback path as a failing step would."""
    assert cycle.phase_index is not None and cycle.at is not None
    session = ctx.session(cycle, faults.FailAfter(cycle.phase_index, cycle.at))
    session.run()
    return Ran(session.run_id)


def roll_forward(ctx: CycleContext, cycle: Cycle) -> Ran:
    """The full run to completion, then `tminus rollback` of the completed run."""
    session = ctx.session(cycle)
    result = session.run()
    if result.status != "completed":  # (one stopped part-way is rolled back by run_cycle)
        return Ran(session.run_id, problems=[f"the full run ended {result.status}, not completed: {result.reason}"])
    ctx.roll_back(cycle, session.run_id, "rehearsal: roll-forward cycle, the completed run rolled back")
    return Ran(session.run_id, rollback_asked=True)


class _Interrupt(Policy):
    """Stop (resumable) right after phase `index`, or before the first phase when `index` is None:
    the moment the kill switch is pulled."""

    name = faults.POLICY

    def __init__(self, index: int | None) -> None:
        self.index = index

    def before_section(self, section: Section) -> Decision:
        if self.index is None and section.kind == "phase":
            return stop("interrupt", "rehearsal: kill switch pulled before the first phase")
        return CONTINUE

    def after_section(self, section: Section, result: SectionResult) -> Decision:
        if self.index is not None and section.kind == "phase" and section.index == self.index:
            return stop("interrupt", "rehearsal: kill switch pulled after the last phase before the point of "
                        "no return")
        return CONTINUE


def kill_switch(ctx: CycleContext, cycle: Cycle) -> Ran:
    """Every phase before the point of no return, stop, the kill switch timed against its target,
    then the stopped run rolled back."""
    rb = ctx.doc.runbook
    ponr = ctx.point_of_no_return
    before = len(rb.phases)
    if ponr is not None and ponr.get("section") == "phases":
        before = next(i for i, p in enumerate(rb.phases) if p.name == ponr["phase"])
    session = ctx.session(cycle, _Interrupt(before - 1 if before else None))
    result = session.run()
    if result.status != "interrupted":
        return Ran(session.run_id, problems=[f"the run ended {result.status} before the kill switch: {result.reason}"])
    began = time.monotonic()
    switch = ctx.session(cycle)
    switched = switch.kill_switch(reason=f"rehearsal {ctx.rehearsal_id}", began=began)
    timed = project(ctx.ledger.events(switch.run_id)).sections_of("kill-switch")
    data = timed[-1].data if timed else {}
    figures = {"run_id": switch.run_id, "status": switched.status, "actual_s": data.get("actual"),
               "target_s": data.get("budget"), "within": data.get("within_target")}
    problems = [] if switched.status in ("completed", "completed_late") else [
        f"the kill switch ended {switched.status}: {switched.reason}"]
    ctx.roll_back(cycle, session.run_id, "rehearsal: kill switch cycle, the stopped run rolled back")
    return Ran(session.run_id, kill_switch=figures, problems=problems)


def kill(ctx: CycleContext, cycle: Cycle) -> Ran:
    """tminus SIGKILLed (a child process) right after the phase; the crashed run is rolled back, as
    `tminus rollback RUN_ID` would after a crash on the day."""
    assert cycle.phase_index is not None and cycle.at is not None
    if ctx.ledger_url is None:
        raise TminusError("--fault kill needs the ledger's URL (the child process opens it)")
    opts = ctx.opts
    k = faults.run_killed(ctx.doc.path, opts.environment, ctx.ledger_url, phase_index=cycle.phase_index,
                          phase=cycle.at, overrides=opts.overrides, operator=opts.operator, yes=opts.yes,
                          tags=ctx.tags(cycle))
    if ctx.ledger.get_run(k.run_id) is None:  # the child never recorded its run (lease held, no start)
        raise TminusError(f"the killed run never started (exit {k.returncode}): {k.reason or k.stderr_tail}")
    if not k.killed:  # it ended on its own before the fault point: measured as it ended
        return Ran(k.run_id, problems=[f"the run ended {k.status} before it could be killed after phase "
                                       f"'{cycle.at}': {k.reason}"])
    ctx.roll_back(cycle, k.run_id, f"rehearsal: tminus was killed after phase '{cycle.at}'")
    return Ran(k.run_id, fault_at=k.killed_at)


def monitor(ctx: CycleContext, cycle: Cycle) -> Ran:
    """The full run through the decision; a monitor rule forced to fire once the window begins, so its
    action (the rollback) runs as a real breach's would."""
    force = faults.ForceMonitor()
    force.check(ctx.doc.runbook)  # no monitor, no rule that rolls back: refused before the run
    session = ctx.session(cycle, force)
    session.run()
    return Ran(session.run_id)


FAULTS: dict[str, Callable[[CycleContext, Cycle], Ran]] = {
    FAIL: fail, KILL: kill, MONITOR: monitor, KILL_SWITCH: kill_switch, ROLL_FORWARD: roll_forward}


# --- one cycle, measured and judged --------------------------------------------------------------


@dataclass
class Measured:
    figures: dict[str, Any]  # the rehearsal.cycle payload
    exit: Exit  # what this cycle alone would make `tminus rehearse` exit with
    halt: bool = False  # the next cycles cannot start from the state the rehearsal began with


def run_cycle(ctx: CycleContext, cycle: Cycle) -> Measured:
    base = ctx.doc.path.parent.resolve()
    before = st.take(ctx.sources, base)
    began = time.monotonic()
    ran = FAULTS[cycle.fault](ctx, cycle)
    _leave_nothing_behind(ctx, cycle, ran)
    run_s = time.monotonic() - began
    after = st.take(ctx.sources, base)
    view = project(ctx.ledger.events(ran.run_id))
    figures: dict[str, Any] = {**cycle.to_dict(), "run_id": ran.run_id}
    figures.update(measure(view, ctx.doc, cycle, fault_at=ran.fault_at, rollback_asked=ran.rollback_asked))
    expected = cycle.fault == ROLL_FORWARD and ctx.point_of_no_return is not None
    figures["budget_s"] = cycle.budget
    rto = figures["rto_s"]
    figures["within_budget"] = None if rto is None or cycle.budget is None else rto <= cycle.budget
    figures["kill_switch"] = ran.kill_switch
    figures["fingerprints"] = st.compare(ctx.sources, before, after, expected=expected)
    figures["fingerprint_s"] = round(before.seconds + after.seconds, 3)
    figures["run_s"] = round(run_s, 3)
    missed = phase_problem(view, cycle.at) if cycle.at is not None else None
    problems, code = judge(figures, [*ran.problems, *([missed] if missed else [])])
    if cycle.fault in (FAIL, KILL_SWITCH) and figures["fault_by"] != f"policy:{faults.POLICY}" and not problems:
        # it rolled back, but not because of the fault: a step failed before the fault point
        problems.append(f"the run stopped before the injected fault ({figures['fault_by'] or 'a failure'}): "
                        f"{_reason(ctx, ran.run_id)}")
        code = code if code != Exit.COMPLETED else Exit.FAILED
    figures["problems"], figures["ok"] = problems, not problems
    # later cycles would start from a state the rehearsal did not begin with (or cannot start at all)
    halt = code in (Exit.BLOCKED, Exit.LOCKED, Exit.ROLLBACK_FAILED) or figures["status"] not in (ROLLED_BACK, None)
    return Measured(figures, code, halt)


def _reason(ctx: CycleContext, run_id: str) -> str:
    record = ctx.ledger.get_run(run_id)
    return (record.reason or "") if record is not None else ""


LEFT = ("interrupted", "needs_operator", "not_finalized")  # a run stopped part-way, its changes in place


def _leave_nothing_behind(ctx: CycleContext, cycle: Cycle, ran: Ran) -> None:
    """A cycle's run that stopped part-way (a manual step under --no-input, a go/no-go nobody answered)
    left its changes in place: roll it back, so the environment is as the rehearsal found it and the
    next cycle starts from there. The cycle fails all the same, saying so."""
    record = ctx.ledger.get_run(ran.run_id)
    if record is None or record.status not in LEFT:
        return
    signalled = [s for s in project(ctx.ledger.events(ran.run_id)).accepted_stops() if s.source == "signal"]
    if signalled:  # the operator's stop is obeyed, not undone behind their back
        raise Interrupted(ran.run_id, signalled[0].by or "a signal")
    ran.problems.append(f"the cycle's run stopped {record.status} ({record.reason}); the rehearsal rolled it back")
    ctx.roll_back(cycle, ran.run_id, f"rehearsal: the cycle's run stopped {record.status}")


def judge(figures: dict[str, Any], found: list[str]) -> tuple[list[str], Exit]:
    """A cycle is ok when its run was rolled back, the rollback passed, no undo failed and the state
    is back (or differs only as expected after a point of no return). The exit it calls for:
    12 state not restored, 10 blocked by its gates, 1 anything else."""
    problems = list(found)
    code = Exit.FAILED if found else Exit.COMPLETED
    status = figures.get("status")
    if status == "blocked":
        return [*problems, "blocked by its gates: nothing ran"], Exit.BLOCKED
    if status != ROLLED_BACK:
        if not found:  # (a fault that said why already: not twice)
            problems.append(f"the cycle's run ended {status or 'without an end'}, not rolled back")
        code = Exit.ROLLBACK_FAILED if status == "rollback_failed" else Exit.FAILED
    elif figures.get("rollback_ok") is False:
        problems.append("the rollback failed")
        code = Exit.ROLLBACK_FAILED
    for undo in figures.get("undo_failed") or []:
        problems.append(f"undo step '{undo['name'] or undo['step']}' failed: {undo['error']}")
        code = Exit.ROLLBACK_FAILED
    prints = figures.get("fingerprints") or {}
    if prints.get("equal") is False and not prints.get("expected"):
        diffs = prints.get("differences") or []
        problems.append(f"state not restored: {len(diffs)} difference(s): " + "; ".join(diffs[:5])
                        + (" ..." if len(diffs) > 5 else ""))
        code = Exit.ROLLBACK_FAILED
    if prints.get("errors"):
        problems += [f"fingerprint: {e}" for e in prints["errors"]]
        code = code if code != Exit.COMPLETED else Exit.FAILED
    return problems, code


__all__ = ["FAULTS", "CycleContext", "Interrupted", "Measured", "Ran", "judge",
           "run_cycle"]
