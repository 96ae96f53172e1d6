"""`tminus rehearse`: run the runbook for real in a non-production environment, fail it on purpose
after each phase, let the rollback run, prove the state is back and measure the recovery time
(engine/rehearsal/). Prints a line per cycle, then the report; `--json` prints the record."""

from __future__ import annotations

import sys
from typing import Any

import click

from tminus.cli.common import (
    emit_json,
    env_options,
    fail,
    json_option,
    ledger_option,
    load_document,
    open_ledger_or_fail,
    operator_option,
    problems,
    settings,
)
from tminus.cli.rehearsals import print_report
from tminus.cli.running import build_options, operator_flags
from tminus.engine.exitcodes import Exit
from tminus.reports.rehearsal import to_json


def register(cli: click.Group) -> None:
    cli.add_command(rehearse)


@click.command("rehearse")
@click.argument("file", type=click.Path(dir_okay=False))
@env_options
@click.option("--at", "at_phases", multiple=True, metavar="PHASE",
              help="Fail after this phase only (name or id; repeatable). Default: every phase before the "
                   "point of no return.")
@click.option("--fault", type=click.Choice(["fail", "kill", "monitor"]), default="fail", show_default=True,
              help="fail: the rollback path after the phase; kill: SIGKILL of tminus after the phase, then "
                   "the crashed run rolled back; monitor: adds a cycle where a monitor rule is forced to fire.")
@click.option("--roll-forward", is_flag=True,
              help="Also the full run to completion, then `tminus rollback` of it (phases after the point of "
                   "no return are rehearsed this way only).")
@click.option("--yes", "-y", is_flag=True, help="Approve every manual step and a manual go/no-go.")
@click.option("--no-input", is_flag=True, help="Never wait for an operator: manual steps fail at once.")
@operator_option
@ledger_option
@json_option
@click.option("-v", "--verbose", is_flag=True, help="Also print every run's event lines.")
def rehearse(file: str, environment: str | None, var_items: tuple[str, ...], at_phases: tuple[str, ...],
             fault: str, roll_forward: bool, yes: bool, no_input: bool, operator: str | None,
             ledger_url: str | None, as_json: bool, verbose: bool) -> None:
    """Rehearse the rollback: for each phase (or --at PHASE) a cycle that fingerprints the state, runs
    up to the phase, injects a failure, lets the rollback run and compares the state; measures the
    recovery time (RTO). Refused in an environment where decision.require_rehearsal applies.

    \b
    Exit codes: 0 every cycle passed · 1 a cycle failed otherwise · 2 usage, or an environment that
    requires rehearsals · 10 a cycle was blocked by its gates · 12 a cycle's state was not restored
    (fingerprints differ, the rollback or an undo step failed) · 14 lease held · 78 invalid runbook ·
    130 interrupted (the cycle's run is left as it is)."""
    from tminus.engine.rehearsal.plan import PlanError, plan_rehearsal
    from tminus.engine.rehearsal.rehearse import rehearse as run_rehearsal
    from tminus.errors import LedgerError, RunbookError

    doc = load_document(file)
    opts = build_options(doc, environment, var_items, operator, **operator_flags(yes, no_input, "0s"))
    required = doc.runbook.decision.require_rehearsal
    if required is not None and required.applies_to(opts.environment):
        fail(f"rehearse in {required.environment}, not {opts.environment}: decision.require_rehearsal makes "
             f"{opts.environment} require a rehearsal; nothing was run", Exit.USAGE,
             hint=f"tminus rehearse {file} -e {required.environment}")
    try:
        plan = plan_rehearsal(doc, opts, at=list(at_phases), fault=fault, roll_forward=roll_forward)
    except RunbookError as exc:
        problems(doc.path, exc)
    except PlanError as exc:
        fail(str(exc), Exit.USAGE)
    if not plan.cycles:
        fail("nothing to rehearse: no phase comes before the point of no return", Exit.USAGE,
             hint="--roll-forward rehearses the full run and its rollback")
    if fault == "monitor":
        from tminus.engine.rehearsal.faults import FaultError, ForceMonitor

        try:
            ForceMonitor().check(doc.runbook)
        except FaultError as exc:
            fail(str(exc), Exit.USAGE)
    ledger = open_ledger_or_fail(ledger_url)
    display: Any = None
    if verbose:
        from tminus.cli.display import make_display

        display = make_display(verbose=True)

    def progress(text: str) -> None:
        click.echo(text, err=True)

    try:
        outcome = run_rehearsal(doc, ledger, opts, plan, subscribers=[display] if display else [],
                                pause_display=display.pause if display else None, progress=progress,
                                ledger_url=settings(ledger_url=ledger_url).ledger.value)  # as given: unmasked
    except LedgerError as exc:
        fail(str(exc))
    finally:
        if display is not None:
            display.close()
    from tminus.projection import project

    view = project(ledger.events(outcome.rehearsal_id)).rehearsal
    record = ledger.get_run(outcome.rehearsal_id)
    if as_json:
        emit_json({**to_json(record, view), "ledger": ledger.url, "timing": outcome.timing})
    else:
        print_report(record, view)
        click.echo(f"rehearsal {outcome.rehearsal_id} · ledger {ledger.url}", err=True)
    ledger.close()
    sys.exit(int(outcome.exit))
