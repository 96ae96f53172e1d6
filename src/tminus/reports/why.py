"""`tminus why`: how a run ended and the chain of causes, in sentences an on-call engineer reads at 3 am.

Built from the run record and its ledger events only, never from the current runbook file: the
stored runbook text is consulted just to read a monitor rule's value out of its samples.
`explain` starts the Explanation (reports/explanation.py) with what every ending shares, and the
run's ending fills in the rest (reports/endings.py, with the causes of reports/causes.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tminus.projection import RunView, project
from tminus.reports import deadlines
from tminus.reports.causes import refused_stops
from tminus.reports.endings import ENDINGS
from tminus.reports.explanation import Cause, Explanation
from tminus.reports.records import Run, clock, decision_record, epoch, monitor_record, run_notes


def explain(run: Any, events: Iterable[Any] | RunView) -> Explanation:
    """`events`: the run's ledger events in order, or their projection."""
    view = events if isinstance(events, RunView) else project(events)
    t0 = view.t0 or epoch(run.started_at)
    x = Explanation(
        run={"id": run.id, "runbook": run.runbook_name, "environment": run.environment, "kind": run.kind,
             "operator": run.operator, "host": run.host, "started_at": run.started_at,
             "finished_at": run.finished_at, "started": clock(t0) if t0 else run.started_at,
             "reason": run.reason},
        status=run.status, exit_code=run.exit_code, t0=t0,
    )
    r = Run(view, t0)
    x.decision = decision_record(r)
    x.monitor = monitor_record(r)
    x.notes = run_notes(r) + refused_stops(r)
    x.deadlines, x.deadline_lines = deadlines.rows(view), deadlines.lines(view)
    handler = ENDINGS.get(run.status)
    if run.kind == "rehearsal":  # a record of cycles, not a run of phases
        rehearsal_ending(x, view, run)
    elif handler is None:
        x.summary = f"Run {run.id} ended as {run.status}: {run.reason or 'no reason was recorded'}."
    else:
        handler(x, r, run)
    return x


def rehearsal_ending(x: Explanation, view: RunView, run: Any) -> None:
    """A rehearsal record: its verdict, each cycle that was not ok as a cause, the report's command."""
    from tminus.reports.rehearsal import cycle_label, seconds, verdict

    r = view.rehearsal
    cycles = r.cycles if r is not None else []
    ok = [c for c in cycles if c.ok]
    rto = r.max_rto() if r is not None else None
    x.summary = (f"Rehearsal {run.id} {verdict(run)}: {len(ok)} of {len(cycles)} cycle(s) ok, "
                 f"max RTO {seconds(rto)}.")
    for c in cycles:
        where = cycle_label(c.data, c)
        if c.ok:
            x.progress.append(f"cycle {c.index + 1} ({where}, {c.fault}): ok, RTO {seconds(c.rto_s)}")
        else:
            problems = "; ".join(c.problems) or f"its run ended {c.status}"
            x.causes.append(Cause("rehearsal", f"Cycle {c.index + 1} ({where}, {c.fault}) failed: {problems}.",
                                  f"cycle {c.index + 1} failed", details=list(c.differences),
                                  data={"cycle": c.index, "run_id": c.run_id}))
    if verdict(run) == "unfinished":
        x.next_steps.append("the rehearsal did not record its end (its process died, or it still runs: "
                            "`tminus status` tells which); a rehearsal is not resumed: rehearse again")
    x.next_steps.append(f"`tminus show {run.id}` gives the rehearsal report, each cycle with its run id")


__all__ = ["Cause", "Explanation", "explain", "rehearsal_ending"]
