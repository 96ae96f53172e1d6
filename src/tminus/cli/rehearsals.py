"""`tminus rehearsals`: the rehearsal records, newest first; and the rehearsal report that `tminus show
REHEARSAL_ID` and `tminus rehearse` print (reports/rehearsal.py builds it)."""

from __future__ import annotations

from typing import Any

import click

from tminus.cli.common import emit_json, fail, json_option, ledger_option, open_listing
from tminus.cli.releases import runbook_name
from tminus.engine.exitcodes import Exit

KIND = "rehearsal"  # the ledger's run kind of a rehearsal record (engine/rehearsal/record.py)


def register(cli: click.Group) -> None:
    cli.add_command(rehearsals)


def rehearsal_view(ledger: Any, record: Any) -> Any:
    """The record's RehearsalView (None when it stopped before its plan was written)."""
    from tminus.projection import project

    return project(ledger.events(record.id)).rehearsal


def print_rehearsal(ledger: Any, rehearsal_id: str, *, as_json: bool = False) -> None:
    """`tminus show REHEARSAL_ID` and the end of `tminus rehearse`: the record's report on stdout, or
    its JSON (reports/rehearsal.py to_json)."""
    from tminus.reports.rehearsal import to_json

    record = ledger.get_run(rehearsal_id)
    if record is None:
        raise LookupError(f"no rehearsal record '{rehearsal_id}' in the ledger at {ledger.url}")
    view = rehearsal_view(ledger, record)
    if as_json:
        emit_json(to_json(record, view))
        return
    print_report(record, view)


def print_report(record: Any, view: Any) -> None:
    """The rehearsal report on stdout: Rich on a terminal (the header bold, the verdict in colour),
    the same lines plain otherwise (render.console decides)."""
    from rich.text import Text

    from tminus.cli.render import console
    from tminus.reports.rehearsal import render, verdict

    lines = render(view, record)
    style = {"passed": "green", "failed": "red"}.get(verdict(record), "yellow")
    for i, line in enumerate(lines):
        if i == 0:
            console.print(Text(line, style="bold"))
        elif line.startswith("Verdict:"):
            console.print(Text(line, style=style))
        else:
            console.print(line, markup=False, soft_wrap=True)  # a long difference stays one line


@click.command()
@click.argument("runbook", required=False)
@click.option("-e", "--env", "environment", help="Only rehearsals in this environment.")
@click.option("-n", "--limit", default=20, show_default=True, help="How many rehearsals, newest first.")
@ledger_option
@json_option
def rehearsals(runbook: str | None, environment: str | None, limit: int, ledger_url: str | None,
               as_json: bool) -> None:
    """Rehearsals recorded by `tminus rehearse`, newest first: verdict, cycles ok of total, the
    longest RTO and the procedure hash each one proved. RUNBOOK is a file or a runbook name
    (default: all). `tminus show REHEARSAL_ID` gives one in full."""
    from tminus.reports.rehearsal import summary

    if limit < 1:
        fail("-n/--limit must be at least 1", Exit.USAGE)
    name = runbook_name(runbook)
    ledger, _url = open_listing(ledger_url)
    rows = []
    if ledger is not None:
        for record in ledger.list_runs(runbook=name, environment=environment, kind=KIND, limit=limit):
            rows.append(summary(record, rehearsal_view(ledger, record)))
        ledger.close()
    if as_json:
        emit_json(rows)
        return
    print_list(rows)


def print_list(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    from tminus.cli.render import console
    from tminus.reports.rehearsal import HASH_PREFIX, seconds

    if not rows:
        console.print("No rehearsals recorded (`tminus rehearse RUNBOOK -e ENV` records one).", markup=False)
        return
    t = Table()
    for col in ("rehearsal", "when", "runbook", "environment", "verdict", "cycles ok", "max RTO", "procedure"):
        t.add_column(col)
    for r in rows:
        style = {"passed": "green", "failed": "red"}.get(r["verdict"], "yellow")
        cycles = f"{r['cycles']['ok']}/{r['cycles']['total']}"
        when = (r["started_at"] or "-").replace("T", " ")[:19]
        t.add_row(Text(r["rehearsal_id"]), Text(when), Text(r["runbook"]), Text(r["environment"]),
                  Text(r["verdict"], style=style), Text(cycles), Text(seconds(r["max_rto_s"])),
                  Text((r["procedure_hash"] or "-")[:HASH_PREFIX]))
    console.print(t)


__all__ = ["print_rehearsal", "print_report", "register", "rehearsal_view"]
