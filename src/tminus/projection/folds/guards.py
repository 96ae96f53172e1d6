"""guard.started, .sample, .transition and .finished: a phase's guard in each process that ran the
phase, the samples its probes took, its rules' transitions (a firing one says what it did) and how it
ended. The stop a firing guard asked for is a policy.applied and a run.stop (stops.py)."""

from __future__ import annotations

from tminus.projection.fact import Fact, number
from tminus.projection.model import GuardWatch, MonitorEnd, MonitorSample, MonitorTransition
from tminus.projection.state import ViewState


def guard_started(view: ViewState, f: Fact) -> None:
    d = f.data
    view.guards.append(GuardWatch(
        f.seq, f.at, _text(d.get("section")), _text(d.get("phase")), number(d.get("interval")),
        number(d.get("settle")), [str(p) for p in d.get("probes") or []],
        [r for r in d.get("rules") or [] if isinstance(r, dict)], bool(d.get("resumed")), data=d))


def guard_sample(view: ViewState, f: Fact) -> None:
    d = f.data
    at = number(d.get("at"), f.at)
    if at is None:
        return
    _watch(view, f).samples.append(MonitorSample(f.seq, at, str(d.get("probe")), "guard", d.get("values"),
                                                 d.get("error"), f.step_key, d))


def guard_transition(view: ViewState, f: Fact) -> None:
    d = f.data
    at = number(d.get("at"))
    _watch(view, f).transitions.append(MonitorTransition(
        f.seq, at if at is not None else f.at, d.get("rule"), d.get("to"), d.get("from"), d.get("reason"),
        d.get("probe"), d.get("action"), "guard", None, list(d.get("recent") or []), at is not None, d))


def guard_finished(view: ViewState, f: Fact) -> None:
    d = f.data
    samples = number(d.get("samples"))
    _watch(view, f).end = MonitorEnd(f.seq, f.at, bool(d.get("ok")), d.get("outcome"), d.get("reason"),
                                     None if samples is None else int(samples), list(d.get("fired") or []), d)


def _watch(view: ViewState, f: Fact) -> GuardWatch:
    """The open guard of the event's section; one of its own when its start was not recorded."""
    section = _text(f.data.get("section"))
    for watch in reversed(view.guards):
        if watch.section == section and watch.end is None:
            return watch
    watch = GuardWatch(f.seq, f.at, section, _text(f.data.get("phase")), announced=False)
    view.guards.append(watch)
    return watch


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
