"""watch.sample and watch.transition: what a `watch` step's probes saw and how its rules moved, under
the step's key (stage "watch"). A firing transition is the step's failure; step.finished says so."""

from __future__ import annotations

from tminus.projection.fact import Fact, number
from tminus.projection.model import MonitorSample, MonitorTransition
from tminus.projection.state import ViewState

STAGE = "watch"


def watch_sample(view: ViewState, f: Fact) -> None:
    d = f.data
    at = number(d.get("at"), f.at)
    if at is None:
        return
    view.watch_samples.append(MonitorSample(f.seq, at, str(d.get("probe")), STAGE, d.get("values"),
                                            d.get("error"), f.step_key, d))


def watch_transition(view: ViewState, f: Fact) -> None:
    d = f.data
    at = number(d.get("at"))
    view.watch_transitions.append(MonitorTransition(
        f.seq, at if at is not None else f.at, d.get("rule"), d.get("to"), d.get("from"), d.get("reason"),
        d.get("probe"), d.get("outcome"), STAGE, None, list(d.get("recent") or []), at is not None,
        {**d, "key": f.step_key}))
