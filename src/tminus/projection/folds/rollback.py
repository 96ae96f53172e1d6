"""rollback.started and rollback.finished: each pass of the rollback and the plan it recorded (a
resumed rollback starts again with the same plan); its undo and rollback steps are steps' folds."""

from __future__ import annotations

from collections.abc import Mapping

from tminus.projection.fact import Fact
from tminus.projection.folds.sections import close_implicit, close_section, open_section
from tminus.projection.model import PlannedStep, RollbackEnd, RollbackPass
from tminus.projection.state import ViewState


def rollback_started(view: ViewState, f: Fact) -> None:
    d = f.data
    planned = d.get("plan") if d.get("plan") is not None else d.get("steps")
    plan = [PlannedStep(str(p.get("key")), p.get("name"), p.get("section"), dict(p))
            for p in planned or [] if isinstance(p, Mapping)]
    view.rollback.passes.append(RollbackPass(f.seq, f.at, str(d.get("reason", "")), plan, data=d))
    open_section(view, f, "rollback", implicit=True)


def rollback_finished(view: ViewState, f: Fact) -> None:
    d = f.data
    end = RollbackEnd(f.seq, f.at, bool(d.get("ok")), d.get("state"), list(d.get("undone") or []),
                      d.get("stopped") if isinstance(d.get("stopped"), str) else None, d)
    if view.rollback.passes:
        view.rollback.passes[-1].end = end
    close_implicit(view)
    close_section(view, f, "rollback", end.ok)
