"""A run's sections in a few lines, from its projection: each section in lifecycle order with its
status, a phase's planned start and budget against its actual time, how many of its steps ended ok,
failed, were skipped or stopped, and for the rollback what was undone. `tminus show` prints it after
the event lines; `show --json` gives the same rows as `sections`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tminus.durations import format_duration
from tminus.projection import RUNNING, Execution, RunView
from tminus.projection.times import tplus
from tminus.reports.stops import asker, mode_words

STEP_STATES = ("ok", "failed", "stopped", "skipped", "interrupted", "running")


@dataclass
class SectionRow:
    id: str
    kind: str
    name: str | None
    status: str  # ok | failed | stopped | running | interrupted (the run ended while it ran)
    stopped: str | None = None  # the stop mode that ended it
    stopped_by: str | None = None  # who asked, as words
    planned_start: float | None = None  # seconds after the first phase's planned start
    budget: float | None = None
    actual: float | None = None
    steps: dict[str, int] = field(default_factory=dict)  # step state -> how many (each key's last execution)
    failed_step: str | None = None
    undone: list[dict[str, Any]] = field(default_factory=list)  # the rollback: each planned step and its state
    outcome: str | None = None  # the decision's verdict, the monitor's outcome, in a few words

    @property
    def over_budget(self) -> float | None:
        """Seconds over its budget, when it took longer."""
        if self.actual is None or self.budget is None or self.actual <= self.budget:
            return None
        return self.actual - self.budget

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "status": self.status,
                "stopped": self.stopped, "stopped_by": self.stopped_by, "planned_start": self.planned_start,
                "budget": self.budget, "actual": self.actual, "over_budget": self.over_budget,
                "steps": self.steps, "failed_step": self.failed_step, "undone": self.undone,
                "outcome": self.outcome}


def summarize(view: RunView) -> list[SectionRow]:
    """One row per pass through a section, in the order they began (the lifecycle's order)."""
    passes = _executions_by_pass(view)
    rows = []
    for i, s in enumerate(view.sections):
        status = s.status
        if s.stopped:
            status = "stopped"
        elif status == RUNNING and view.finished is not None:
            status = "interrupted"
        row = SectionRow(s.id, s.kind, s.name, status, s.stopped, asker(s.stop) if s.stop else None,
                         s.planned_start, s.budget, s.actual, _count(passes.get(i, [])), s.failed_step)
        if s.kind == "rollback":
            row.undone = _undone(view)
        row.outcome = _outcome(view, s.kind, s.name)
        rows.append(row)
    return rows


def lines(rows: list[SectionRow]) -> list[str]:
    """`  phase:deploy   ok   planned T+10s, budget 1m00s, took 42s; 2 ok`, rollback steps under it."""
    if not rows:
        return []
    width = max(len(r.id) for r in rows)
    out = ["Sections:"]
    for r in rows:
        stopped = ""
        if r.stopped:
            stopped = f"stopped by {mode_words(r.stopped)}" + (f" ({r.stopped_by})" if r.stopped_by else "")
        done = sum(1 for u in r.undone if u["status"] in ("ok", "skipped"))
        undone = f"undone {done} of {len(r.undone)} planned step(s)" if r.undone else ""
        parts = [p for p in (r.outcome, _timing(r), _steps(r), undone, stopped) if p]
        out.append(f"  {r.id:<{width}}  {r.status:<11}  {'; '.join(parts)}".rstrip())
        if r.undone:
            out += [f"  {'':<{width}}    {_MARK.get(u['status'], '?')} {u['name'] or u['key']} [{u['key']}]"
                    + ("" if u["status"] in ("ok", "skipped") else f": {_NOT_DONE.get(u['status'], u['status'])}")
                    for u in r.undone]
    return out


_MARK = {"ok": "✓", "failed": "✗", "skipped": "-", "stopped": "■", "interrupted": "…", "running": "…",
         "not run": "·"}
_NOT_DONE = {"not run": "NOT undone (did not run)", "failed": "FAILED", "stopped": "stopped before it finished",
             "interrupted": "cut short", "running": "still running"}


def _outcome(view: RunView, kind: str, name: str | None) -> str | None:
    """The go/no-go's verdict and who gave it; how the monitor's baseline or window ended; a phase's guard."""
    d = view.decision
    if kind == "decision" and d is not None:
        return f"{d.verdict} ({d.mode}" + (f", by {d.by}" if d.by else "") + ")"
    if kind in ("monitor", "baseline"):
        stage = "baseline" if kind == "baseline" or name == "baseline" else "window"
        ends = [x.end for x in view.monitor.stages if x.stage == stage and x.end is not None]
        if ends:
            return f"{ends[-1].outcome}, {ends[-1].samples} samples"
    if kind == "phase":
        return _guarded(view, f"phase:{name}")
    return None


def _guarded(view: RunView, section: str) -> str | None:
    """A phase's guard in a few words: `guard fired (bind stable: rollback), 7 samples`."""
    watches = [g for g in view.guards if g.section == section]
    if not watches:
        return None
    samples = sum(len(g.samples) for g in watches)
    fired = [f"{t.rule}: {t.data.get('outcome') or t.action}" for g in watches for t in g.firings]
    last = watches[-1].end
    how = "fired" if fired and last is not None and not last.ok else (last.outcome if last else "watching")
    return f"guard {how}" + (f" ({', '.join(fired)})" if fired else "") + f", {samples} samples"


def _timing(r: SectionRow) -> str:
    """A phase's plan against what happened: planned T+0:00, budget 1m00s, took 1m05s (5s OVER)."""
    parts = []
    if r.planned_start is not None:
        parts.append(f"planned {tplus(r.planned_start)}")  # to the second: phases are often short
    if r.budget is not None:
        parts.append(f"budget {format_duration(r.budget)}")
    if r.actual is not None:
        over = r.over_budget
        parts.append(f"took {format_duration(r.actual)}" + (f" ({format_duration(over)} OVER BUDGET)" if over else ""))
    return ", ".join(parts)


def _steps(r: SectionRow) -> str:
    if r.undone:
        return ""  # the rollback's own steps are in its list of what was undone
    counted = ", ".join(f"{n} {state}" for state, n in r.steps.items())
    if r.failed_step:
        counted += f" (failed: {r.failed_step})"
    return counted


def _count(executions: list[Execution]) -> dict[str, int]:
    last: dict[str, Execution] = {}
    for e in executions:
        last[e.key] = e
    counts = {state: 0 for state in STEP_STATES}
    for e in last.values():
        counts[_state(e)] = counts.get(_state(e), 0) + 1
    return {state: n for state, n in counts.items() if n}


def _state(e: Execution) -> str:
    return "stopped" if e.stopped and e.status != "interrupted" else e.status


def _executions_by_pass(view: RunView) -> dict[int, list[Execution]]:
    """Each execution on the last pass through its section that began before it."""
    out: dict[int, list[Execution]] = {}
    for e in view.executions:
        begun = e.started_seq if e.started_seq is not None else e.finished_seq or 0
        section = "gates" if e.section_kind == "gate" else e.section  # every gate runs in the gates section
        found = [i for i, s in enumerate(view.sections)
                 if s.id == section and (s.started_seq is None or s.started_seq <= begun)]
        if found:
            out.setdefault(found[-1], []).append(e)
    return out


def _undone(view: RunView) -> list[dict[str, Any]]:
    """Each step of the recorded undo plan (then any the plan did not list) and how it ended."""
    rb = view.rollback
    ran = {e.key: e for e in rb.executions}
    keys = list(dict.fromkeys([p.key for p in rb.plan] + list(ran)))
    names = {p.key: p.name for p in rb.plan}
    out = []
    for key in keys:
        e = ran.get(key)
        state = "not run" if e is None else _state(e)
        out.append({"key": key, "name": (e.name if e else None) or names.get(key), "status": state,
                    "section": e.section if e else next((p.section for p in rb.plan if p.key == key), None)})
    return out


__all__ = ["SectionRow", "lines", "summarize"]
