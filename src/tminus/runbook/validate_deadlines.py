"""Whole-runbook checks of deadlines: on phases, on the rollback, and the run's downtime."""

from __future__ import annotations

from collections.abc import Callable

from tminus.runbook.deadlines import endpoint, every_phase, phase_section
from tminus.runbook.document import PathKey
from tminus.runbook.models import Runbook
from tminus.runbook.types import is_template

Add = Callable[..., None]


def deadline_problems(rb: Runbook, add: Add, *, closest: Callable[[str, list[str]], str | None]) -> None:
    def channels(names: list[str], path: PathKey) -> None:
        for i, name in enumerate(names):
            if name not in rb.channels:
                near = closest(name, list(rb.channels))
                add(f"unknown channel '{name}'", (*path, i), near or "define it under channels:")

    def positive(seconds: float, path: PathKey) -> None:
        if not is_template(seconds) and seconds <= 0:
            add("a deadline of 0s is exceeded as soon as it starts", path, "give it a length, e.g. 30m")

    for key, _kind, _words, i, phase in every_phase(rb):
        if phase.deadline is not None:
            base: PathKey = (key, i, "deadline")
            positive(phase.deadline.after, (*base, "after"))
            channels(phase.deadline.notify, (*base, "notify"))
    back = rb.rollback
    if back.deadline is not None:
        positive(back.deadline, ("rollback", "deadline"))
    if back.action == "rollback":
        add("a rollback deadline cannot roll back again: the run is already rolling back", ("rollback", "action"),
            "use action: notify (only tell) or action: pause (ask whether to go on)")
    elif back.deadline is None and ("action" in back.model_fields_set or back.notify):
        add("'action' and 'notify' of the rollback need a 'deadline'", ("rollback",),
            "add deadline: 60m (how long the rollback may take)")
    channels(back.notify, ("rollback", "notify"))
    down = rb.downtime
    if down is None:
        return
    positive(down.deadline, ("downtime", "deadline"))
    channels(down.notify, ("downtime", "notify"))
    phases = every_phase(rb)
    names = [n for *_, p in phases for n in (p.id, p.name, *(s.id for s in p.steps)) if n]
    order = {mark: i for i, mark in enumerate(_marks(rb))}
    ends = {("section", phase_section(p, kind)): order[("step", p.steps[-1].key)] for _k, kind, _w, _i, p in phases}
    found = []
    for key, name in (("from", down.from_), ("to", down.to)):
        mark = endpoint(rb, name)
        if mark is None:
            near = closest(name, names)
            add(f"downtime {key} '{name}' is not the id of a phase or of a phase's step "
                "(phases, after_go or finalize)", ("downtime", key),
                near or f"ids: {', '.join(names) or 'none (give a phase or a step an id)'}")
        found.append(mark)
    start, end = found
    if start is not None and end is not None and order[start] > ends.get(end, order[end]):
        add(f"the downtime ends ('{down.to}') before it starts ('{down.from_}')", ("downtime", "to"),
            "'from' is the step or phase that begins the outage, 'to' one that ends it, later in the runbook")


def _marks(rb: Runbook) -> list[tuple[str, str]]:
    """Every phase and phase step in the order a run meets them (a phase before its steps)."""
    out: list[tuple[str, str]] = []
    for _key, kind, _words, _i, p in every_phase(rb):
        out.append(("section", phase_section(p, kind)))
        out += [("step", s.key) for s in p.steps]
    return out
