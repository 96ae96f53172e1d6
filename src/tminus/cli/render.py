"""Human-readable rendering of plans, runs and the ledger (Rich on stdout)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tminus.cli.lines import format_event, show_stamp
from tminus.cli.survivors import surviving, survivor_line
from tminus.durations import format_duration
from tminus.processes import pid_alive

# Not a terminal (CI logs, pipes, files): never break a line. Rich would wrap at $COLUMNS or 80;
# soft wrap leaves each printed line whole, and a width no line reaches keeps table cells whole too
# (tables take only the width their cells need).
_TTY = sys.stdout.isatty()
console = Console(highlight=False, emoji=False, width=None if _TTY else 1_000_000, soft_wrap=not _TTY)


def _dur(seconds: float | None) -> str:
    return format_duration(seconds) if seconds is not None else "-"


# --- plan ----------------------------------------------------------------------------------------


def print_plan(p: Any) -> None:
    console.print(f"[bold]Plan: {escape(p.runbook)}[/bold] in [bold]{escape(p.environment)}[/bold]")
    if p.vars:
        console.print("vars: " + ", ".join(f"{k}={v}" for k, v in p.vars.items()), markup=False)
    if p.manifest["required"] or p.manifest["forbidden"]:
        console.print(f"environment manifest: requires {p.manifest['required']}, "
                      f"forbids values of {p.manifest['forbidden']}", markup=False)
    _plan_before(p)
    console.print("\n[bold]Gates[/bold] (all must pass; nothing changes before)")
    for g in p.gates:
        console.print(f"  {g['name']}", markup=False)
        for c in g["checks"]:
            _plan_step(c, "    ", undo_matters=False)
    console.print("\n[bold]Timeline[/bold]")
    ponr_key = p.point_of_no_return["key"] if p.point_of_no_return else None
    _plan_phases(p.phases, ponr_key)
    if p.end_tplus is not None:
        console.print(f"  [cyan]{p.end_tplus:>9}[/cyan]  end of phases")
    console.print("\n[bold]Verify[/bold]")
    for s in p.verify:
        _plan_step(s, "  ", undo_matters=False)
    console.print(f"\n[bold]Decision[/bold]: {p.decision['mode']}"
                  + (f" (no answer in {_dur(p.decision['timeout'])} = no-go)" if p.decision["timeout"] else "")
                  + (", approved by a second person" if p.decision.get("second_person") else ""))
    if p.after_go:
        console.print("\n[bold]After go[/bold] (the cutover is live; a failure stops the run, not finalized, "
                      "unless the phase says on_failure: rollback)")
        _plan_phases(p.after_go, ponr_key)
    if p.monitor:
        _plan_monitor(p.monitor)
    if p.finalize:
        console.print("\n[bold]Finalize[/bold] (after the monitor window; a failure stops the run, not finalized: "
                      "nothing is rolled back, `tminus resume` finishes it)")
        _plan_phases(p.finalize, ponr_key)
    if p.rollback:
        console.print("\n[bold]Rollback[/bold] (after the undo steps)")
        for s in p.rollback:
            _plan_step(s, "  ", undo_matters=False)
    if getattr(p, "kill_switch", None):
        ks = p.kill_switch
        console.print(f"\n[bold]Kill switch[/bold] (`tminus kill-switch`, at any time: no gates, target "
                      f"{_dur(ks['target'])}; a failure stops it, nothing is undone)")
        for s in ks["steps"]:
            _plan_step(s, "  ", undo_matters=False)
    _plan_deadlines(getattr(p, "deadlines", []))
    console.print()
    for loss in getattr(p, "data_loss", []):
        colour = "green" if loss["guarded"] else "yellow"
        console.print(f"[{colour}]Data safety[/{colour}]: {loss['title']} ({loss['location']})")
        console.print(f"  {loss['message']}", markup=False)
    if p.point_of_no_return:
        r = p.point_of_no_return
        # Styled words beside the runbook's own text: a Text, so neither is read as markup.
        where = {"after_go": "after_go phase", "finalize": "finalize phase"}.get(r.get("section", ""), "phase")
        console.print(Text.assemble(("Point of no return", "red"), f": {r['step']} ({r['location']}, "
                                    f"{where} {r['phase']}, {r['tplus']})"))
        console.print(f"  {r['meaning']}", markup=False)
    else:
        console.print("[green]No point of no return[/green]: every step is a check or has undo.")


def _plan_deadlines(deadlines: list[dict[str, Any]]) -> None:
    if not deadlines:
        return
    console.print("\n[bold]Deadlines[/bold] (each measured from its first start; a resume keeps the clock)")
    for d in deadlines:
        told = f"; tells {', '.join(d['notify'])}" if d["notify"] else ""
        console.print(f"  {d['what']}: {_dur(d['after'])} → {d['action']}{told}", markup=False)


def _plan_guard(g: dict[str, Any]) -> None:
    settle = f", and {_dur(g['settle'])} after the last step" if g["settle"] else ""
    console.print(f"           guard: a probe every {_dur(g['interval'])} while the steps run{settle}",
                  markup=False)
    for s in g["probes"]:
        _plan_step(s, "             probe ", undo_matters=False)
    _plan_rules(g["rules"], "             ")
    if g["notify"]:
        console.print(f"             every firing and resolution is told to: {', '.join(g['notify'])}", markup=False)


def _plan_rules(rules: list[dict[str, Any]], pad: str) -> None:
    for r in rules:
        on = f" (probe {r['probe']})" if r["probe"] else ""
        told = f"; tells {', '.join(r['notify'])}" if r["notify"] else ""
        console.print(f"{pad}rule {r['name']}{on}: {r['rule']} → {r['action']}; no data: {r['on_no_data']}, "
                      f"error: {r['on_error']}{told}", markup=False)


def _plan_before(p: Any) -> None:
    """What happens before T+0: the cutover time, the stages on the T- axis, the required runs."""
    if p.at:
        console.print(f"\n[bold]Cutover[/bold] (T+0): {escape(p.at)}")
    if p.stages:
        rule = ("a stage not passed in its window blocks the run" if p.require_stages
                else "shown by the run, not required (require_stages: true blocks on them)")
        console.print(f"\n[bold]Stages[/bold] (tminus gate --stage ...; {escape(rule)})")
        for s in p.stages:
            opens = f"  window opens {s['opens']}" if s["opens"] else f"  within {s['stage'][2:]} before the run"
            console.print(f"  [cyan]{s['stage']:>9}[/cyan]{escape(opens)}")
            for g in s["gates"]:
                console.print(f"             {g['name']}", markup=False)
                for c in g["checks"]:
                    _plan_step(c, "               ", undo_matters=False)
    if p.requires:
        console.print("\n[bold]Requires[/bold] (checked in the ledger with the gates)")
        for r in p.requires:
            console.print(f"  {r['describe']}", markup=False)
    if p.rehearsal:
        _plan_rehearsal(p.rehearsal, p.environment)


def _plan_rehearsal(r: dict[str, Any], environment: str) -> None:
    """decision.require_rehearsal: what it asks here and whether the ledger meets it now."""
    if not r["applies"]:
        where = "where it is rehearsed" if r["environment"] == environment else "not in enforced_in"
        console.print(f"\n[bold]Rehearsal[/bold]: not required in {escape(environment)} ({where})")
        return
    console.print("\n[bold]Rehearsal required[/bold] (decision.require_rehearsal, checked in the ledger "
                  "with the gates)")
    console.print(f"  {r['describe']}", markup=False)
    word = {True: "[green]met[/green]", False: "[red]not met[/red]", None: "[yellow]unknown[/yellow]"}[r["met"]]
    console.print(f"  {word}: {escape(r['message'] or '')}")


def _plan_phases(phases: list[Any], ponr_key: str | None) -> None:
    for ph in phases:
        budget = f"budget {_dur(ph.budget)}" if ph.budget is not None else "no budget"
        console.print(f"  [cyan]{ph.tplus:>9}[/cyan]  [bold]{escape(ph.name)}[/bold] ({escape(budget)})")
        if getattr(ph, "guard", None):
            _plan_guard(ph.guard)
        for s in ph.steps:
            if s.key == ponr_key:
                console.print("           [red]──── point of no return ────[/red]")
            _plan_step(s, "           ")
        for u in ph.undo:
            console.print(f"           undo: {u.summary}", markup=False)


def _plan_monitor(m: dict[str, Any]) -> None:
    baseline = f", baseline {_dur(m['baseline'])} before the first phase" if m["baseline"] else ""
    console.print(f"\n[bold]Monitor[/bold]: {_dur(m['duration'])} after the go, a probe every "
                  f"{_dur(m['interval'])}{baseline}")
    for s in m["probes"]:
        _plan_step(s, "  probe ", undo_matters=False)
    _plan_rules(m["rules"], "  ")
    if m["notify"]:
        console.print(f"  every firing and resolution is told to: {', '.join(m['notify'])}", markup=False)


def _plan_step(s: Any, pad: str, undo_matters: bool = True) -> None:
    """Undo coverage only matters in phases: gates and verify must not change anything anyway."""
    flags = []
    if not undo_matters:
        flags.append("check" if s.check else s.kind)
    else:  # where it stands relative to the point of no return, and why (plan.why)
        flags.append(("NO UNDO: " if not s.reversible else "") + (s.why or ("check" if s.check else s.kind)))
        if s.undo:
            flags.append("undo: " + "; ".join(s.undo))
    if s.when and not undo_matters:  # a phase step's `why` says it is conditional
        flags.append(f"when {s.when}")
    if s.retry:
        flags.append(f"retry x{s.retry}")
    if s.timeout:
        flags.append(f"timeout {_dur(s.timeout)}")
    console.print(f"{pad}• {s.title}: {s.summary}  [{', '.join(flags)}]", markup=False)
    for e in s.expect:
        console.print(f"{pad}    expect {e}", markup=False)


# --- approvals and status -------------------------------------------------------------------------


def pending_approvals(events: Any) -> list[str]:
    return [str(key) for key in pending_requests(events)]


def pending_requests(events: Any) -> dict[str, dict[str, Any]]:
    """Step key -> the data of its approval request, for requests not answered yet.
    `events`: the run's ledger events, or their projection."""
    from tminus.projection import RunView, project

    view = events if isinstance(events, RunView) else project(events)
    return {str(key): dict(a.data) for key, a in view.pending_approvals().items()}


def status_rows(ledger: Any) -> list[dict[str, Any]]:
    from tminus.engine.session import RESUMABLE

    runs = [r for status in RESUMABLE for r in ledger.list_runs(status=status, limit=100)]
    rows = []
    for run in sorted(runs, key=lambda r: r.started_at, reverse=True):
        lease = ledger.get_lease(f"{run.runbook_name}@{run.environment}")
        held = lease is not None and lease.run_id == run.id
        if run.status != "running":
            state = f"{run.status.replace('_', ' ')}: resume it"
        elif (held and not lease.is_stale()) or (
            not held and run.host == socket.gethostname() and pid_alive(run.pid)
        ):
            state = "running"
        else:
            state = "interrupted (holder gone): resume it"
        if run.kind == "rehearsal" and state != "running":  # a record, not a run: nothing to resume
            state = "rehearsal unfinished (its process is gone): rehearse again"
        here = run.host == socket.gethostname()
        rows.append({
            "run_id": run.id, "kind": run.kind, "runbook": run.runbook_name, "environment": run.environment,
            "operator": run.operator, "host": run.host, "pid": run.pid, "started_at": run.started_at,
            "state": state,
            "lease": lease.to_dict() if held else None,
            "waiting_for": pending_approvals(ledger.events(run.id)),
            # the holder is gone, its step's process group may not be (it leads its own session)
            "survivors": surviving(ledger.events(run.id)) if state != "running" and here else [],
        })
    return rows


def print_status(rows: list[dict[str, Any]], url: str) -> None:
    if not rows:
        console.print(f"No active runs (ledger {url}).", markup=False)
        return
    t = Table(title=Text(f"Active runs · {url}"))
    for col in ("run", "runbook@env", "operator@host (pid)", "since", "state", "waiting for"):
        t.add_column(col)
    for r in rows:
        t.add_row(*_cells(r["run_id"], f"{r['runbook']}@{r['environment']}",
                          f"{r['operator']}@{r['host']} ({r['pid']})", r["started_at"][:19], r["state"],
                          ", ".join(r["waiting_for"]) or "-"))
    console.print(t)
    for r in rows:
        if r["state"] != "running" and r.get("kind") != "rehearsal":
            console.print(f"  tminus resume {r['run_id']}", markup=False)
            for s in r["survivors"]:
                console.print(survivor_line(s), markup=False)


def print_history(runs: list[Any]) -> None:
    if not runs:
        console.print("No runs yet.")
        return
    t = Table()
    for col in ("run", "kind", "runbook@env", "operator", "started", "took", "status", "exit"):
        t.add_column(col)
    for r in runs:
        t.add_row(*_cells(r.id, r.kind, f"{r.runbook_name}@{r.environment}", r.operator, r.started_at[:19],
                          _dur(_elapsed(r.started_at, r.finished_at)), r.status,
                          "" if r.exit_code is None else str(r.exit_code)))
    console.print(t)


def _cells(*values: str) -> list[Text]:
    """Table cells as plain text: a runbook or operator name with brackets is not Rich markup."""
    return [Text(v) for v in values]


def _elapsed(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    a = datetime.fromisoformat(start)
    b = datetime.fromisoformat(end)
    if a.tzinfo is None:
        a = a.replace(tzinfo=UTC)
    if b.tzinfo is None:
        b = b.replace(tzinfo=UTC)
    return (b - a).total_seconds()


# --- show -------------------------------------------------------------------------------------------


def print_show(run: Any, events: Iterable[Any], *, evidence: bool = True) -> None:
    """The header, every event's line, the sections summary (from the projection), the outcome.
    One pass over `events` (streamed from the ledger): each is printed and folded, none kept."""
    from tminus.projection import RunView
    from tminus.reports import deadlines, sections

    console.print(Text.assemble((f"Run {run.id}", "bold"), f": {run.runbook_name} in {run.environment} · {run.kind}"))
    console.print(f"operator {run.operator}@{run.host} (pid {run.pid}) · runbook {run.runbook_path} "
                  f"(sha256 {run.content_hash[:12]})", markup=False)
    took = _elapsed(run.started_at, run.finished_at)
    console.print(f"started {run.started_at} · finished {run.finished_at or '-'} · took {_dur(took)}",
                  markup=False)
    view = RunView()
    t0: datetime | None = None
    for e in events:
        if t0 is None:
            t0 = datetime.fromisoformat(e.at)
            console.print()
        offset = (datetime.fromisoformat(e.at) - t0).total_seconds()
        line = format_event(e, show_stamp(offset), evidence=evidence)  # monitor samples only with evidence
        if line:
            console.print(line, markup=False)
        view.apply(e)
    if t0 is None:
        return
    summary = sections.lines(sections.summarize(view))
    if summary:
        console.print()
        for line in summary:
            console.print(line, markup=False)
    limits = deadlines.lines(view)
    if limits:
        console.print("\nDeadlines:")
        for line in limits:
            console.print(f"  {line}", markup=False)
    style = "green" if run.status == "completed" else "red"
    console.print(f"\n[{style}]Outcome: {run.status}[/{style}] (exit {run.exit_code})")
    if run.reason:
        console.print(f"Why: {run.reason}", markup=False)
    from tminus.ledger.records import RESUMABLE

    if run.status in RESUMABLE and run.host == socket.gethostname():
        for s in surviving(view):
            console.print(survivor_line(s), markup=False)
