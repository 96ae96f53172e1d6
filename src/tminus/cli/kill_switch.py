"""`tminus kill-switch`: the runbook's kill_switch steps, now, timed (engine/kill_switch.py)."""

from __future__ import annotations

import time
from typing import Any

import click

from tminus.cli.common import env_options, fail, json_option, ledger_option, load_document, operator_option
from tminus.cli.running import build_options, drive
from tminus.engine.exitcodes import Exit


def register(cli: click.Group) -> None:
    cli.add_command(kill_switch)


@click.command("kill-switch")
@click.argument("file", type=click.Path(dir_okay=False))
@env_options
@click.option("--reason", help="Why (recorded; with --force it is noted in the fenced run too).")
@click.option("--force", is_flag=True,
              help="Take the lease from a live run of this runbook (it is fenced and stops, resumable).")
@operator_option
@ledger_option
@json_option
@click.option("-v", "--verbose", is_flag=True, help="Also print each step as it starts.")
def kill_switch(file: str, environment: str | None, var_items: tuple[str, ...], reason: str | None, force: bool,
                operator: str | None, ledger_url: str | None, as_json: bool, verbose: bool) -> None:
    """Run the runbook's kill_switch steps now, without gates, under its lease, timed against its
    target: exit 0 within it, 17 done but late, 13 a step failed (nothing undone), 14 a live run
    holds the lease (--force takes it)."""
    began = time.monotonic()  # the operator's clock: taking the lease counts
    doc = load_document(file)
    if doc.runbook.kill_switch is None:
        fail(f"{file}: the runbook has no kill_switch section", Exit.USAGE,
             hint="add kill_switch: {target: 30s, steps: [...]} (see docs/runbook.md#kill-switch)")
    opts = build_options(doc, environment, var_items, operator, no_input=True, interactive=False)

    def action(session: Any) -> Any:
        from tminus.errors import LockHeld

        try:
            return session.kill_switch(force=force, reason=reason, began=began)
        except LockHeld as exc:
            if exc.stale:
                raise
            raise LockHeld(f"{exc}\nhint: the kill switch takes a live run's lease only with --force "
                           "(that run is fenced and stops, resumable)", holder=exc.holder) from None

    def timing(session: Any) -> dict[str, Any]:
        from tminus.projection import project

        view = project(session.ledger.events(session.run_id))
        timed = view.sections_of("kill-switch")
        started = view.started.data if view.started else {}
        return {"elapsed": timed[-1].actual if timed else None, "target": started.get("target"),
                "within_target": bool(timed and timed[-1].data.get("within_target")),
                "live_run": started.get("live_run"), "live_release": started.get("live_release"),
                "took_over": started.get("took_over")}

    drive(doc, opts, ledger_url, as_json, verbose, action, more_json=timing)
