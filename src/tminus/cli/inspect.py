"""Read commands: status, history, show, ledger verify. Each has --json."""

from __future__ import annotations

import sys
from typing import Any

import click

from tminus.cli.common import (
    emit_json,
    fail,
    find_run,
    json_option,
    ledger_option,
    open_listing,
    open_reader_or_fail,
)
from tminus.engine.exitcodes import Exit


def register(cli: click.Group) -> None:
    cli.add_command(status)
    cli.add_command(history)
    cli.add_command(show)
    cli.add_command(ledger)


@click.command()
@ledger_option
@json_option
def status(ledger_url: str | None, as_json: bool) -> None:
    """Active runs and their leases; interrupted runs that can be resumed."""
    from tminus.cli.render import print_status, status_rows

    ledger, url = open_listing(ledger_url)
    rows = status_rows(ledger) if ledger is not None else []
    if as_json:
        emit_json(rows)
    else:
        print_status(rows, url)


@click.command()
@click.option("--runbook", help="Only runs of this runbook (by name).")
@click.option("-e", "--env", "environment", help="Only runs in this environment.")
@click.option("-n", "--limit", default=20, show_default=True, help="How many runs, newest first.")
@ledger_option
@json_option
def history(runbook: str | None, environment: str | None, limit: int, ledger_url: str | None,
            as_json: bool) -> None:
    """Past runs, newest first."""
    from tminus.cli.render import print_history

    ledger, _url = open_listing(ledger_url)
    runs = ledger.list_runs(runbook=runbook, environment=environment, limit=limit) if ledger is not None else []
    if as_json:
        emit_json([_run_dict(r) for r in runs])
    else:
        print_history(runs)


@click.command()
@click.argument("run_id")
@click.option("--evidence/--no-evidence", default=True, help="Show each step's evidence.")
@ledger_option
@json_option
def show(run_id: str, evidence: bool, ledger_url: str | None, as_json: bool) -> None:
    """One run: timeline with planned vs actual durations, evidence, and why it ended as it did."""
    from tminus.cli.render import print_show

    ledger = open_reader_or_fail(ledger_url)
    run = find_run(ledger, run_id)
    if run.kind == "rehearsal":  # its report, not a run's timeline: each cycle names its own run
        from tminus.cli.rehearsals import print_rehearsal

        print_rehearsal(ledger, run.id, as_json=as_json)
        if not as_json:
            click.echo("\nEach cycle is a run of its own: `tminus show RUN_ID` (its run id above).")
        return
    if as_json:  # the whole run is the output: read at once
        from tminus.projection import project
        from tminus.reports import deadlines
        from tminus.reports.sections import summarize

        events = ledger.events(run.id)
        view = project(events)
        rows = [r.to_dict() for r in summarize(view)]
        emit_json({"run": _run_dict(run), "events": [e.to_dict() for e in events], "sections": rows,
                   "deadlines": deadlines.rows(view),
                   "answers": [_answer_dict(a) for a in ledger.approvals(run.id)]})
    else:
        print_show(run, ledger.iter_events(run.id), evidence=evidence)  # streamed: flat in the run's size
        for a in ledger.approvals(run.id):  # every answer is kept; those the run did not take, said so
            if a.request_seq is None:
                what = "nothing was asked" if a.for_seq is None else f"request #{a.for_seq}"
                click.echo(f"answer {a.id} not taken: {'go' if a.approved else 'no-go'} for {a.step_key} by {a.by} "
                           f"({a.identity or 'no identity'}) at {a.at}, given for {what}")


def _answer_dict(a: Any) -> dict[str, Any]:
    """An approval row as `show --json` lists it: `taken_by` is the seq of the request it answered."""
    return {"id": a.id, "step_key": a.step_key, "approved": a.approved, "by": a.by, "identity": a.identity,
            "at": a.at, "reason": a.reason, "given_for": a.for_seq, "lead": a.lead, "taken_by": a.request_seq}


@click.group()
def ledger() -> None:
    """Ledger maintenance."""


@ledger.command("verify")
@click.argument("run_id", required=False)
@click.option("--head", "expected", metavar="COUNT:HASH",
              help="A head an earlier verify printed: it must still be in the ledger-wide chain.")
@ledger_option
@json_option
def ledger_verify(run_id: str | None, expected: str | None, ledger_url: str | None, as_json: bool) -> None:
    """Recompute the hash chains; exit 1 if anything was changed or removed."""
    from tminus.errors import LedgerError
    from tminus.ledger import LedgerHead

    try:
        recorded = None if expected is None else LedgerHead.parse(expected)
    except ValueError as exc:
        fail(str(exc), Exit.USAGE)
    store = open_reader_or_fail(ledger_url)
    if run_id:
        run_id = find_run(store, run_id).id
    try:
        problems = store.verify(run_id, head=recorded)
        head = store.ledger_head()
    except LedgerError as exc:  # e.g. a keyed ledger without TMINUS_LEDGER_KEY
        fail(str(exc))
    if as_json:
        emit_json({"intact": not problems, "problems": problems, "ledger": store.url, "head": str(head)})
    elif problems:
        for p in problems:
            click.echo(f"TAMPERED: {p}", err=True)
    else:
        click.echo(f"ledger {store.url}: intact")
        click.echo(f"head {head} (keep it elsewhere; `tminus ledger verify --head {head}` later detects "
                   "the deletion of anything recorded up to now)")
    if problems:
        sys.exit(int(Exit.FAILED))


def _run_dict(run: object) -> dict[str, object]:
    d = run.to_dict()  # type: ignore[attr-defined]
    d.pop("runbook_text", None)
    return d


__all__ = ["fail", "register"]
