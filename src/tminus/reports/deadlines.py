"""Each deadline of a run against its budget, in words: planned vs actual, exceeded by how much, and
what came of the alert (`tminus show` and `tminus why`). Measured by the projection from the events."""

from __future__ import annotations

from typing import Any

from tminus.durations import format_duration
from tminus.projection import RunView
from tminus.projection.deadlines import Measured


def rows(view: RunView, now: float | None = None) -> list[dict[str, Any]]:
    """One record per deadline the run set, for --json."""
    return [_row(m) for m in view.deadlines(now=now)]


def lines(view: RunView, now: float | None = None) -> list[str]:
    return [_line(m) for m in view.deadlines(now=now)]


def _row(m: Measured) -> dict[str, Any]:
    a = m.alert
    return {"id": m.id, "what": m.what, "deadline": m.after, "action": m.action, "state": m.state,
            "actual": None if m.actual is None else round(m.actual, 3),
            "exceeded_by": None if m.exceeded_by is None else round(m.exceeded_by, 3),
            "alerted": a is not None, "outcome": a.outcome if a else None, "answered_by": a.by if a else None}


def _line(m: Measured) -> str:
    head = f"{m.what}: deadline {format_duration(m.after)} ({m.action})"
    if m.actual is None:
        return f"{head}: not started"
    took = "so far" if m.ended_at is None else "took"
    text = f"{head}, {took} {format_duration(m.actual)}"
    if m.exceeded_by is not None:
        text += f": EXCEEDED by {format_duration(m.exceeded_by)}"
    elif m.alert is None:
        text += ": met" if m.ended_at is not None else ": within it so far"
    a = m.alert
    if a is not None:
        what = {"told": "the alert was told", "continue": "the operator chose to go on",
                "rollback": "it rolled the run back", "abort": "the operator stopped the rollback",
                "needs_operator": "it waits for an operator (--no-input)",
                "went on": "nobody could answer; the rollback went on"}.get(a.outcome or "", "no answer yet")
        who = f" ({a.by}, {a.how})" if a.by else ""
        text += f"; {what}{who}"
    return text


__all__ = ["lines", "rows"]
