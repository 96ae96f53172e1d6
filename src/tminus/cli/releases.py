"""`tminus releases`: the release ledger, read from the runs (reports/releases.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tminus.cli.common import emit_json, json_option, ledger_option, load_document, open_listing

SCAN_LIMIT = 100_000  # runs read per listing: a ledger's whole history of one runbook, in practice


def register(cli: click.Group) -> None:
    cli.add_command(releases)


def runbook_name(runbook: str | None) -> str | None:
    """RUNBOOK is a file (its name is read) or a runbook's name."""
    if runbook is None:
        return None
    return str(load_document(runbook).runbook.name) if Path(runbook).is_file() else runbook


def read_runs(ledger: Any, name: str | None, environment: str | None) -> list[tuple[Any, Any]]:
    """Every run and kill switch of the runbook (all runbooks without a name), each with its projection."""
    from tminus.projection import project

    out = []
    for kind in ("run", "kill_switch"):
        for record in ledger.list_runs(runbook=name, environment=environment, kind=kind, limit=SCAN_LIMIT):
            out.append((record, project(ledger.events(record.id))))
    return out


@click.command()
@click.argument("runbook", required=False)
@click.option("-e", "--env", "environment", help="Only this environment.")
@ledger_option
@json_option
def releases(runbook: str | None, environment: str | None, ledger_url: str | None, as_json: bool) -> None:
    """What is live per environment, since when, by whom and through which run, and the releases
    before it (rolled back ones marked). RUNBOOK is a file or a runbook name (default: all)."""
    from tminus.projection.releases import releases as build

    name = runbook_name(runbook)
    ledger, _url = open_listing(ledger_url)
    envs = build(read_runs(ledger, name, environment)) if ledger is not None else []
    if ledger is not None:
        ledger.close()
    if as_json:
        emit_json([e.to_dict() for e in envs])
        return
    if not envs:
        click.echo("no releases recorded (a run records one when its runbook sets `release:` and it goes live)")
        return
    for env in envs:
        click.echo(f"{env.name}:")
        if env.live is None:
            click.echo("  live: nothing (every release was rolled back)")
        else:
            r = env.live
            click.echo(f"  live: {r.release} since {_t(r.to_dict()['live_since'])} by {r.operator} "
                       f"(run {r.run_id}, {r.runbook})")
            for k in r.kill_switches:
                click.echo(f"        kill switch {k['run']} by {k['operator']} at {_t(k['at'])}: {k['status']}")
        for r in env.history:
            if r is env.live:
                continue
            d = r.to_dict()
            mark = {"rolled_back": f"ROLLED BACK at {_t(d['rolled_back_at'])}",
                    "rollback_failed": "ROLLBACK FAILED"}.get(r.state, "was live")
            why = f": {r.rollback_reason}" if r.rollback_reason and r.state != "superseded" else ""
            click.echo(f"  {r.release:<16} {mark} · live {_t(d['live_since'])} by {r.operator} "
                       f"(run {r.run_id}){why}")


def _t(iso: str | None) -> str:
    return iso.replace("T", " ").replace("+00:00", "Z") if iso else "-"
