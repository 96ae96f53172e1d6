"""`tminus resume` facing a step whose process outlived the killed tminus: say so, and let the
operator choose (a terminal), or wait for it (`--no-input`: a second copy never runs beside it)."""

from __future__ import annotations

from typing import Any

import click

CHOICES = {"wait": "wait for it to end and adopt its result",
           "retry": "kill it, then run the step again",
           "skip": "take the step as done and leave it running (needs a reason)",
           "rollback": "kill it, then roll back"}


def choose_for_survivors(ledger: Any, run_id: str, doc: Any, choice: str | None, reason: str | None,
                         interactive: bool) -> tuple[str | None, str | None]:
    """The operator's (choice, reason) once any surviving process group was shown."""
    from tminus.engine.survivors import survivors_of
    from tminus.kinds.transport import LocalTransport

    if choice is not None:
        return choice, reason
    survivors, _ended = survivors_of(doc, ledger.events(run_id), LocalTransport())
    if not survivors:
        return choice, reason  # one that ran to its end unwatched: `--wait` adopts it (the refusal says so)
    for survivor in survivors.values():
        click.echo(survivor.describe(), err=True)
    if not interactive:
        click.echo("resuming with --wait: waiting for it to end, then adopting its result (a second copy "
                   "never runs beside it); --retry kills it first", err=True)
        return "wait", reason
    for name, what in CHOICES.items():
        click.echo(f"  {name:<8} {what}", err=True)
    choice = click.prompt("what now", type=click.Choice(list(CHOICES)), default="wait", err=True)
    if choice == "skip" and not reason:
        reason = click.prompt("why may the step be taken as done", err=True)
    return choice, reason


def surviving(events: Any) -> list[dict[str, Any]]:
    """Process groups of a run's in-flight executions that still run on this host (after a crash of
    tminus: `status` and `show` say so; `resume` waits for them or kills them). `events`: the run's
    events, or their projection already folded (a RunView)."""
    from tminus.kinds import registry
    from tminus.kinds.base import Execution
    from tminus.kinds.transport import LocalTransport
    from tminus.projection import RunView, project

    transport = LocalTransport()
    found = []
    view = events if isinstance(events, RunView) else project(events)
    for e in view.in_flight():
        try:
            find = registry.get(e.kind).survivor if e.kind else None
        except KeyError:
            continue
        if find is None:
            continue
        survivor = find(Execution(e.key, e.target, [x.data for x in e.effects]), transport)
        if survivor is not None:
            found.append({"step": e.key, "alive": True, **survivor.to_dict()})
    return found


def survivor_line(s: dict[str, Any]) -> str:
    return (f"  step {s['step']}: its process group {s['pgid']} (pid {s['pid']}) is still running "
            f"{s['command']!r}; `tminus resume` waits for it (or --retry kills it)")
