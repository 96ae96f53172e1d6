"""`tminus why` and `tminus replay`: explain a run from its ledger, re-judge its monitor samples.

Both only read the ledger. Neither looks at the runbook file as it is now: the text stored with
the run is what ran, so a later edit cannot rewrite history.
"""

from __future__ import annotations

from typing import Any

import click

from tminus.cli.common import emit_json, fail, find_run, json_option, ledger_option, open_reader_or_fail
from tminus.engine.exitcodes import Exit


def register(cli: Any) -> None:
    cli.add_command(why)
    cli.add_command(replay)


@click.command()
@click.argument("run_id")
@ledger_option
@json_option
def why(run_id: str, ledger_url: str | None, as_json: bool) -> None:
    """Explain how run RUN_ID ended and the chain of causes, in plain sentences.

    \b
    blocked          every failing gate check, with file:line of its expectation
    rolled back      what triggered it (a failed step, failed verify checks, a no-go
                     decision, a monitor rule that fired), what was undone, and
                     whether verify after the rollback confirmed the service is back
    rollback failed  where the rollback stopped and how to continue
    stopped          a stop request (a policy, a guard, the kill switch, a signal,
                     a lost lease): who asked, for what, when, and what it did to
                     the section and step that were running
    aborted, interrupted, needs operator
                     what was running or is awaited, and the command that continues
    completed        gates, phase times against budgets, verify, the decision
                     record and the monitor window

    Times are UTC clock times with T+ offsets from the start of the run. Reads the
    ledger only (RUN_ID may be a unique prefix). Exit 0 when explained, 1 when the
    run or the ledger cannot be found, 2 for an ambiguous prefix.
    """
    from tminus.reports.why import explain

    ledger = open_reader_or_fail(ledger_url)
    run = find_run(ledger, run_id)
    explanation = explain(run, ledger.events(run.id))
    ledger.close()
    if as_json:
        emit_json(explanation.to_dict())
        return
    for line in explanation.lines():
        click.echo(line)


@click.command()
@click.argument("run_id")
@click.option(
    "--set", "sets", multiple=True, metavar="RULE.FIELD=VALUE",
    help="Change one field of one rule for the replay (repeatable). Fields: threshold, when, for, consecutive, "
         "on_no_data, on_error, max_no_data, increase.{query,window,at_least}, "
         "ratio.{query,above,baseline_window,floor}, error_rate.{window,above,min_samples}. "
         "Values are YAML scalars (0.95, 3, 10m, hold); quote rule names with spaces: "
         "--set \"pool saturated.threshold=0.95\".",
)
@ledger_option
@json_option
def replay(run_id: str, sets: tuple[str, ...], ledger_url: str | None, as_json: bool) -> None:
    """Re-judge run RUN_ID's recorded monitor samples with its alert rules, optionally changed.

    Every rule of the runbook stored with the run reads the samples its probe recorded
    (baseline and window, the cutover where the run recorded it). For each rule the
    recorded transitions are shown next to the replayed ones, with the verdict each
    implies: the first firing of a rollback/abort/pause rule decides; an inconclusive
    rule pauses for the operator. A recorded run stops sampling when it rolls back, so
    a replay that does not fire says so instead of claiming the window would pass.

    Nothing is probed and nothing is written. Exit 0 when the replay ran (whether or
    not it differs), 1 when the run has no monitor rules or samples (or the ledger or
    run cannot be found), 2 for a bad --set (unknown rule or field, impossible value).
    """
    from tminus.errors import RunbookError
    from tminus.monitor.replay import NothingToReplay, ReplayError, parse_sets, replay_run
    from tminus.runbook.loader import load_runbook

    ledger = open_reader_or_fail(ledger_url)
    run = find_run(ledger, run_id)
    events = ledger.events(run.id)
    ledger.close()
    try:
        runbook = load_runbook(run.runbook_path, text=run.runbook_text).runbook
    except RunbookError as exc:
        fail(f"the runbook text stored with run {run.id} does not load any more: "
             f"{exc.problems[0].render() if exc.problems else exc}")
    rules = runbook.monitor.rules if runbook.monitor else []
    if not rules:
        fail(f"run {run.id}: its runbook has no monitor rules to replay")
    try:
        result = replay_run(runbook, events, parse_sets(sets, [r.name for r in rules]))
    except ReplayError as exc:
        fail(str(exc), Exit.USAGE, hint="--set RULE.FIELD=VALUE, e.g. --set \"pool saturated.threshold=0.95\"")
    except NothingToReplay as exc:
        fail(f"run {run.id}: {exc}")
    if as_json:
        emit_json({"run": run.id, "runbook": run.runbook_name, "environment": run.environment, **result.to_dict()})
        return
    for line in _replay_lines(run, result):
        click.echo(line)


def _replay_lines(run: Any, result: Any) -> list[str]:
    from tminus.projection.times import when

    probes = ", ".join(f"{p}: {n}" for p, n in result.probes.items())
    cut = f", cutover at {when(result.cutover_at, result.t0)}" if result.cutover_at is not None else ""
    out = [f"Replay of run {run.id} ({run.runbook_name} in {run.environment}): "
           f"{result.samples} recorded samples ({probes}){cut}."]
    changed = [f"{rule}.{name} = {value}" for rule, fields in result.overrides.items()
               for name, value in fields.items()]
    out.append("Changed: " + "; ".join(changed) if changed else "Changed: nothing (the rules as they ran).")
    for r in result.rules:
        out += ["", f"Rule '{r.name}' (action {r.action}, probe {r.probe}, {r.samples} samples)"]
        out.append(f"  as recorded: {r.rule}")
        if r.replayed_rule != r.rule:
            out.append(f"  replayed as: {r.replayed_rule}")
        for title, moves in (("recorded transitions", r.recorded), ("replayed transitions", r.replayed)):
            out.append(f"  {title}:" + ("" if moves else " none"))
            out += [f"    {when(m['at'], result.t0)} {m['from']} -> {m['to']}: {m['reason']}" for m in moves]
        out.append(f"  recorded: {r.recorded_verdict.text}")
        out.append(f"  replayed: {r.replayed_verdict.text}")
    out += ["", f"Recorded outcome: {result.recorded.text}", f"Replayed outcome: {result.replayed.text}",
            "The replay DIFFERS from the recorded run." if result.differs else
            "The replay agrees with the recorded run."]
    return out


__all__ = ["register"]
