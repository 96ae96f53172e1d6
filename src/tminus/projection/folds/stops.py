"""run.stop and policy.applied: every stop request, the policy decision behind it, and what it
stopped. A stopped step or section is linked to its request even when the request lands after it."""

from __future__ import annotations

from tminus.projection.fact import Fact
from tminus.projection.model import RUNNING, Execution, PolicyUse, Section, Stop, split_section
from tminus.projection.state import ViewState
from tminus.projection.times import epoch


def policy_applied(view: ViewState, f: Fact) -> None:
    d = f.data
    section = d.get("section") if isinstance(d.get("section"), str) else None
    kind, name = (d.get("kind"), d.get("name")) if isinstance(d.get("kind"), str) else \
        split_section(section) if section else (None, None)
    view.policies.append(PolicyUse(f.seq, f.at, d.get("policy"), d.get("hook"), section, kind, name or None,
                                   d.get("step") or f.step_key, d.get("decision"), d.get("reason"), d))


def stop_requested(view: ViewState, f: Fact) -> None:
    d = f.data
    stop = Stop(f.seq, f.at, d.get("mode"), d.get("reason"), d.get("by"), epoch(d.get("requested_at")),
                bool(d.get("accepted", True)), d.get("note"), data=d)
    asked = [p for p in view.policies if f"policy:{p.policy}" == stop.by
             and not any(s.policy is p for s in view.stops)]
    if asked:  # the policy decision recorded just before its request
        stop.policy = asked[-1]
        stop.section, stop.step = asked[-1].section, asked[-1].step
    else:
        stop.section = next((s.id for s in reversed(view.sections) if s.status == RUNNING), None)
    running = [key for key, e in view._in_flight.items() if e.status == RUNNING]  # not a crash's leftovers
    if stop.step is None and running:
        stop.step = running[-1]
    view.stops.append(stop)
    if stop.accepted:
        view._acting = stop
        for thing in [x for x in view._unlinked if x.stopped == stop.mode]:
            _link(thing, stop)
            view._unlinked.remove(thing)


def was_stopped(view: ViewState, thing: Execution | Section, mode: str) -> None:
    """A step or section ended by a stop request: linked to the request (its run.stop may land after
    it, written by the thread that asked)."""
    thing.stopped = mode
    if view._acting is not None and view._acting.mode == mode:
        _link(thing, view._acting)
    else:
        view._unlinked.append(thing)


def _link(thing: Execution | Section, stop: Stop) -> None:
    thing.stop = stop
    if isinstance(thing, Execution) and stop.step is None:
        stop.step = thing.key
