"""section.started and section.finished, and the passes other events imply: a section is opened
and closed here only (undo, decision, monitor and rollback sections have no section.* events)."""

from __future__ import annotations

from tminus.projection.fact import Fact, number
from tminus.projection.folds.stops import was_stopped
from tminus.projection.model import FAILED, OK, RUNNING, Section, split_section
from tminus.projection.state import ViewState


def open_section(view: ViewState, f: Fact, section_id: str, *, implicit: bool = False, kind: str | None = None,
                 name: str | None = None) -> Section:
    """Start a pass, or continue the running one (a resumed run starts its section again)."""
    if not implicit:
        close_implicit(view)
    current = view.section(section_id)
    if current is not None and current.status == RUNNING:
        current.data.update(f.data)
        return current
    parsed_kind, parsed_name = split_section(section_id)
    s = Section(section_id, kind or parsed_kind, name if kind else parsed_name,
                started_seq=f.seq, started_at=f.at, implicit=implicit, data=dict(f.data))
    view.sections.append(s)
    return s


def close_section(view: ViewState, f: Fact, section_id: str, ok: bool) -> Section:
    s = view.section(section_id)
    if s is None:  # a finish without its start (an older or partial ledger)
        s = open_section(view, f, section_id)
        s.started_seq, s.started_at = None, None
    s.status = OK if ok else FAILED
    s.finished_seq, s.finished_at = f.seq, f.at
    s.data.update(f.data)
    if isinstance(f.data.get("stopped"), str):
        was_stopped(view, s, f.data["stopped"])
    return s


def close_implicit(view: ViewState) -> None:
    """Undo sections have no events of their own: they end where the next section begins. One whose
    step was cut short stays running, as a phase does: a resume continues the same pass."""
    cut_short = {e.section for e in view._in_flight.values()}
    for s in view.sections:
        if s.implicit and s.kind == "undo" and s.status == RUNNING and s.id not in cut_short:
            ran = [e for e in view.executions if e.section == s.id and e.ended]
            s.status = FAILED if any(e.status == FAILED for e in ran) else OK
            last = max(ran, key=lambda e: e.finished_seq or 0, default=None)
            if last is not None:
                s.finished_seq, s.finished_at = last.finished_seq, last.finished_at


def section_started(view: ViewState, f: Fact) -> None:
    d = f.data
    kind = d.get("kind") if isinstance(d.get("kind"), str) else None  # newer events name them
    s = open_section(view, f, str(d.get("section")), kind=kind, name=d.get("name") if kind else None)
    s.budget = number(f.data.get("budget"), s.budget)
    s.planned_start = number(f.data.get("planned_start"), s.planned_start)
    if f.data.get("cutover_at") is not None:
        s.cutover_at = float(f.data["cutover_at"])
        view.cutover_at = s.cutover_at


def section_finished(view: ViewState, f: Fact) -> None:
    s = close_section(view, f, str(f.data.get("section")), bool(f.data.get("ok")))
    s.actual = number(f.data.get("actual"), s.actual)
    s.budget = number(f.data.get("budget"), s.budget)
    s.failures = list(f.data.get("failures") or s.failures)
    if f.data.get("failed_step"):
        s.failed_step, s.failed_seq = str(f.data["failed_step"]), f.seq
