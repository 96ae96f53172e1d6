"""step.started, step.attempt, step.finished, step.skipped and step.effect: the executions of steps,
keyed by (key, target, attempt), and the effects their kinds recorded before acting."""

from __future__ import annotations

from collections.abc import Mapping

from tminus.projection.fact import Fact
from tminus.projection.folds.sections import close_implicit, open_section
from tminus.projection.folds.stops import was_stopped
from tminus.projection.model import FAILED, LOCAL, RUNNING, SKIPPED, Effect, Execution, split_section
from tminus.projection.state import ViewState


def step_started(view: ViewState, f: Fact) -> None:
    e = _execution(view, f)
    e.started_seq, e.started_at = f.seq, f.at
    e.location = f.data.get("location")
    e.config = dict(f.data.get("config") or {})
    e.check, e.idempotent = bool(f.data.get("check")), bool(f.data.get("idempotent"))
    view._in_flight[e.key] = e


def step_finished(view: ViewState, f: Fact) -> None:
    e = _ending(view, f)
    d = f.data
    e.status = str(d.get("status", FAILED))
    e.finished_seq, e.finished_at, e.data = f.seq, f.at, d
    e.attempts = int(d.get("attempts", 0) or 0)
    e.duration = float(d.get("duration_ms", 0) or 0) / 1000
    e.message = d.get("message", "")
    e.verdicts, e.outputs, e.evidence = d.get("verdicts", []), d.get("outputs", {}), d.get("evidence", {})
    e.name, e.kind = d.get("name", e.name), d.get("kind", e.kind)
    stopped = e.evidence.get("stopped") if isinstance(e.evidence, Mapping) else None
    if isinstance(stopped, str):
        was_stopped(view, e, stopped)


def step_skipped(view: ViewState, f: Fact) -> None:
    e = _ending(view, f)
    e.status = SKIPPED
    e.finished_seq, e.finished_at, e.data = f.seq, f.at, f.data
    e.message = f.data.get("message", "")
    e.name = f.data.get("name", e.name)


def step_attempt(view: ViewState, f: Fact) -> None:
    e = view._in_flight.get(str(f.step_key))
    if e is not None:
        e.failed_tries.append(f.data)


def step_effect(view: ViewState, f: Fact) -> None:
    key = f.step_key
    e = view._in_flight.get(str(key)) or next((x for x in reversed(view.executions) if x.key == key), None)
    effect = Effect(f.seq, f.at, key, f.data.get("effect"), e.target if e else str(f.data.get("target") or LOCAL),
                    e.attempt if e else None, f.data)
    view.effects.append(effect)
    if e is not None:
        e.effects.append(effect)


def _execution(view: ViewState, f: Fact) -> Execution:
    """A new execution of the event's step; an undo step's opens its undo section (it has no events)."""
    key = str(f.step_key)
    target = str(f.data.get("target") or LOCAL)
    section = str(f.data.get("section") or "")
    kind, name = split_section(section)
    attempt = view._executions_of[key, target] = view._executions_of.get((key, target), 0) + 1
    e = Execution(key, target, attempt, section, kind, name, name=f.data.get("name"), kind=f.data.get("kind"))
    view.executions.append(e)
    if kind in ("undo", "rollback") and view.rollback.passes:
        view.rollback.executions.append(e)
    if kind == "undo" and not any(s.id == section and s.status == RUNNING for s in view.sections):
        close_implicit(view)
        open_section(view, f, section, implicit=True, kind=kind, name=name)
    return e


def _ending(view: ViewState, f: Fact) -> Execution:
    """The execution an outcome ends: the one in flight, or a new one when its start was not recorded."""
    e = view._in_flight.pop(str(f.step_key), None)
    return e if e is not None else _execution(view, f)
