"""The `tminus` group, and its commands that read or run a runbook; the other commands are
imported when used (LAZY_COMMANDS, cli/lazy.py), so `tminus run` loads nothing of `rehearse` or `report`."""

from __future__ import annotations

import sys
from typing import Any

import click

from tminus import __version__
from tminus.cli.common import (
    config_option,
    emit_json,
    env_options,
    fail,
    find_run,
    json_option,
    ledger_option,
    load_document,
    open_ledger_or_fail,
    operator_option,
    plan_rehearsal,
    problems,
    recorded_overrides,
    recorded_vars_only,
    resolve_operator,
)
from tminus.cli.lazy import Lazy, LazyGroup
from tminus.cli.running import (
    at_option,
    build_options,
    drive,
    operator_flags,
    report_option,
    run_options,
    with_times,
)
from tminus.cli.survivors import choose_for_survivors
from tminus.engine.exitcodes import Exit

EXIT_CODES_HELP = """\b
Exit codes: 0 completed · 1 tminus failed · 2 usage · 10 blocked by a gate ·
11 rolled back · 12 rollback failed · 13 aborted · 14 locked · 15 needs an operator ·
16 live, not finalized (resumable) · 17 kill switch late · 78 invalid runbook or tminus.toml ·
130 interrupted (resumable)."""

# The commands defined in other modules, imported when one of them runs (cli/lazy.py): name ->
# (the module whose `register(group)` adds it, the first sentence of its help for `tminus --help`).
LAZY_COMMANDS = {
    "config": Lazy("tminus.cli.config", "Show the settings every command would use here and where each came "
                   "from (flag, environment variable, tminus.toml path:line, found upward, default)."),
    "db": Lazy("tminus.cli.db", "Database commands: migrate, revert, verify, lint, backup, restore, fingerprint."),
    "docs": Lazy("tminus.cli.docs", "Render RUNBOOK as the Markdown page an operator reads on the day: what is "
                 "needed before T+0, the gates, the T+ timeline, each phase's steps with their undo and effect, "
                 "the point of no return, the rollback path, verify, the go/no-go and who approves, the monitor, "
                 "the kill switch."),
    "history": Lazy("tminus.cli.inspect", "Past runs, newest first."),
    "import": Lazy("tminus.cli.importer", "Write a tminus runbook skeleton from a hand-written Markdown (or "
                   "plain text) runbook: headings become gates, phases, the rollback and the go/no-go; checklist "
                   "and numbered items manual steps; shell blocks run steps, curl lines http checks, psql queries "
                   "sql steps."),
    "init": Lazy("tminus.cli.init", "Write a starter runbook, with comments on each section, that validates and "
                 "plans as written."),
    "kill-switch": Lazy("tminus.cli.kill_switch", "Run the runbook's kill_switch steps now, without gates, under "
                        "its lease, timed against its target: exit 0 within it, 17 done but late, 13 a step failed "
                        "(nothing undone), 14 a live run holds the lease (--force takes it)."),
    "ledger": Lazy("tminus.cli.inspect", "Ledger maintenance."),
    "monitor": Lazy("tminus.cli.watch", "Watch a live service with the runbook's monitor section only (after a "
                    "deploy done by other means): probes every interval, alert rules, actions."),
    "rehearsals": Lazy("tminus.cli.rehearsals", "Rehearsals recorded by `tminus rehearse`, newest first: verdict, "
                       "cycles ok of total, the longest RTO and the procedure hash each one proved."),
    "rehearse": Lazy("tminus.cli.rehearse", "Rehearse the rollback: for each phase (or --at PHASE) a cycle that "
                     "fingerprints the state, runs up to the phase, injects a failure, lets the rollback run and "
                     "compares the state; measures the recovery time (RTO)."),
    "releases": Lazy("tminus.cli.releases", "What is live per environment, since when, by whom and through which "
                     "run, and the releases before it (rolled back ones marked)."),
    "replay": Lazy("tminus.cli.explain", "Re-judge run RUN_ID's recorded monitor samples with its alert rules, "
                   "optionally changed."),
    "report": Lazy("tminus.cli.report", "The report of run RUN_ID (an id or a unique prefix) for a pull request, "
                   "a change ticket or CI: header and outcome with its causes, the timeline, every step with its "
                   "expectations and output, approvals, the decision, the rollback, the monitor, deadlines and the "
                   "ledger chain's verdict."),
    "show": Lazy("tminus.cli.inspect", "One run: timeline with planned vs actual durations, evidence, and why it "
                 "ended as it did."),
    "status": Lazy("tminus.cli.inspect", "Active runs and their leases; interrupted runs that can be resumed."),
    "why": Lazy("tminus.cli.explain", "Explain how run RUN_ID ended and the chain of causes, in plain sentences."),
}


@click.group(cls=LazyGroup, lazy=LAZY_COMMANDS, epilog=EXIT_CODES_HELP,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="tminus")
@config_option
def cli() -> None:
    """Executable release and migration runbooks: gates, phases with undo, verify, go/no-go,
    automatic rollback, and a ledger of every step with its evidence."""


# --- authoring -------------------------------------------------------------------------------


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def validate(file: str, as_json: bool) -> None:
    """Check a runbook and report every problem with file:line:column and a hint."""
    from tminus.engine.context import check_default_durations
    from tminus.errors import RunbookError
    from tminus.runbook.loader import load_runbook

    try:
        doc = load_runbook(file)
        check_default_durations(doc)  # durations written as templates render with the defaults
    except RunbookError as exc:
        _annotate(exc.problems, "error", as_json)
        if as_json:
            emit_json({"valid": False, "problems": [
                {"message": p.message, "location": str(p.location) if p.location else None,
                 "path": p.path, "hint": p.hint} for p in exc.problems]})
        else:
            click.echo(f"{file}: {len(exc.problems)} problem(s):", err=True)
            for p in exc.problems:
                click.echo(p.render(), err=True)
        sys.exit(int(Exit.INVALID_RUNBOOK))
    from tminus.runbook.validate import semantic_warnings

    rb = doc.runbook
    warnings = semantic_warnings(rb, doc.source)
    _annotate(warnings, "warning", as_json)
    summary = {"valid": True, "runbook": rb.name, "gates": len(rb.gates), "phases": len(rb.phases),
               "after_go": len(rb.after_go), "finalize": len(rb.finalize),
               "steps": len(rb.all_steps()), "environments": list(rb.environments)}
    if as_json:
        emit_json({**summary, "warnings": [
            {"message": w.message, "location": str(w.location) if w.location else None,
             "path": w.path, "hint": w.hint} for w in warnings]})
    else:
        for w in warnings:
            click.echo(f"warning: {w.render()}", err=True)
        live = "".join(f", {summary[k]} {k} phases" for k in ("after_go", "finalize") if summary[k])
        click.echo(f"{file}: valid: '{rb.name}', {summary['gates']} gates, {summary['phases']} phases{live}, "
                   f"{summary['steps']} steps")


def _annotate(found: Any, kind: str, as_json: bool) -> None:
    """In a GitHub Actions job: one workflow command per problem or warning, at its position."""
    from tminus.cli import gh_annotations as annotations

    if not annotations.enabled():
        return
    out = annotations.stream(as_json)
    for p in found:
        title = f"tminus validate: {p.path}" if p.path else "tminus validate"
        message = f"{p.message}\nhint: {p.hint}" if p.hint else p.message
        print(annotations.at(kind, message, str(p.location) if p.location else None, title), file=out, flush=True)


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
def schema(output: str | None) -> None:
    """Print the JSON Schema of runbooks (for editor completion and validation)."""
    import json

    from tminus.runbook.schema import json_schema

    text = json.dumps(json_schema(), indent=2)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    else:
        click.echo(text)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@env_options
@operator_option
@at_option
@ledger_option
@json_option
def plan(file: str, environment: str | None, var_items: tuple[str, ...], operator: str | None,
         at_text: str | None, ledger_url: str | None, as_json: bool) -> None:
    """Show the stages before T+0 and the T+ timeline, every step rendered (secrets masked), undo
    coverage and the point of no return. Runs nothing; reads the ledger (if there is one) only to say
    whether decision.require_rehearsal is met."""
    from tminus.cli.render import print_plan
    from tminus.engine.plan import build_plan
    from tminus.errors import RunbookError

    doc = load_document(file)
    opts = with_times(doc, build_options(doc, environment, var_items, operator), at_text)
    try:
        p = build_plan(doc, opts)
    except RunbookError as exc:  # a templated duration that does not render to one
        problems(file, exc)
    if p.rehearsal is not None and p.rehearsal["applies"]:
        p.rehearsal.update(plan_rehearsal(doc, opts, ledger_url))
    if as_json:
        emit_json(p.to_dict())
    else:
        print_plan(p)


# --- running ---------------------------------------------------------------------------------


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@env_options
@click.option("--stage", "stage_text", metavar="T-DURATION",
              help="Run only the gates of this stage (e.g. T-48h) and record them for the day's run.")
@at_option
@operator_option
@ledger_option
@json_option
@click.option("--yes", "-y", is_flag=True, help="Approve every manual check (e.g. a T-48h sign-off) in advance.")
@click.option("--no-input", is_flag=True, help="Never wait for an operator: manual checks fail at once.")
@click.option("-v", "--verbose", is_flag=True, help="Also print each check as it starts.")
@click.option("--junit", "junit_to", metavar="FILE", type=click.Path(dir_okay=False),
              help="When the gates end, write the run's JUnit XML report to FILE (for CI). A report that "
                   "cannot be written is said on stderr; the exit code stays the gates'.")
def gate(file: str, environment: str | None, var_items: tuple[str, ...], stage_text: str | None,
         at_text: str | None, operator: str | None, ledger_url: str | None, as_json: bool, yes: bool,
         no_input: bool, verbose: bool, junit_to: str | None) -> None:
    """Run the gates only (read-only, re-runnable at any time). Exit 0 if all pass, 10 if blocked.

    Without --stage: the gates without a `stage:`, and `requires:`, as `tminus run` checks them.
    With --stage T-48h: only that stage's gates, recorded as that stage's run. A `manual` check asks
    on a terminal, or is answered with --yes or `tminus approve`; without a terminal it fails."""
    doc = load_document(file)
    flags = {"yes": yes, "no_input": no_input or not sys.stdin.isatty(),
             "interactive": sys.stdin.isatty() and not no_input}
    opts = with_times(doc, build_options(doc, environment, var_items, operator, **flags), at_text, stage_text)
    drive(doc, opts, ledger_url, as_json, verbose, lambda s: s.run(gates_only=True), report_to=junit_to,
          report_format="junit")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@env_options
@run_options
@at_option
@operator_option
@ledger_option
@json_option
@report_option
def run(file: str, environment: str | None, var_items: tuple[str, ...], yes: bool, no_input: bool,
        lock_wait: str, verbose: bool, at_text: str | None, operator: str | None, ledger_url: str | None,
        as_json: bool, report_to: str | None) -> None:
    """Run a runbook: gates (with `requires:` and the stages), phases, verify, decision; roll back on failure."""
    doc = load_document(file)
    opts = with_times(doc, build_options(doc, environment, var_items, operator,
                                         **operator_flags(yes, no_input, lock_wait)), at_text)
    drive(doc, opts, ledger_url, as_json, verbose, lambda s: s.run(), report_to=report_to)


def _same_with_vars_files(path: str, text: str, recorded: str) -> bool:
    """A runbook with vars files: its identity covers their text too (RunbookDocument.content_hash)."""
    from tminus.errors import RunbookError
    from tminus.runbook.loader import load_runbook

    try:
        doc = load_runbook(path, text=text)
    except RunbookError:
        return False
    return bool(doc.vars_files) and doc.content_hash == recorded


@cli.command()
@click.argument("run_id")
@click.option("--retry", "choice", flag_value="retry",
              help="Run the interrupted step again (a process of it still running is killed first).")
@click.option("--wait", "choice", flag_value="wait",
              help="Wait for a process of the interrupted step that still runs, then adopt its result.")
@click.option("--skip", "choice", flag_value="skip", help="Take the interrupted step as done (needs --reason).")
@click.option("--rollback", "choice", flag_value="rollback",
              help="Roll back instead of going on (at any point, inside the monitor window too).")
@click.option("--reason", help="Why (recorded): required with --skip and --allow-changed.")
@click.option("--allow-changed", is_flag=True, help="Resume although the runbook file changed (needs --reason).")
@recorded_vars_only
@run_options
@operator_option
@ledger_option
@json_option
@report_option
def resume(run_id: str, choice: str | None, reason: str | None, allow_changed: bool, yes: bool,
           no_input: bool, lock_wait: str, verbose: bool, operator: str | None, ledger_url: str | None,
           as_json: bool, report_to: str | None) -> None:
    """Continue an interrupted run: completed steps are not run again."""
    from pathlib import Path

    from tminus.runbook.document import content_hash

    ledger = open_ledger_or_fail(ledger_url, create=False)
    record = find_run(ledger, run_id)
    _refuse_by_kind(record, "resumed")
    path = Path(record.runbook_path)
    # read as the loader reads it (bytes, UTF-8); the hash normalises a BOM and CRLF line endings
    text = path.read_bytes().decode("utf-8-sig", errors="replace") if path.exists() else record.runbook_text
    if content_hash(text) != record.content_hash and not _same_with_vars_files(str(path), text, record.content_hash):
        if not allow_changed:
            fail(f"the runbook {path} (or a vars file it reads) changed since run {record.id} started "
                 "(content hash differs)",
                 Exit.NEEDS_OPERATOR,
                 hint="review the change; resume anyway with --allow-changed --reason '...'")
        if not reason:
            fail("--allow-changed needs --reason", Exit.USAGE)
    doc = load_document(str(path), text=text)
    opts = build_options(doc, record.environment, (), operator, overrides=recorded_overrides(ledger, record.id),
                         **operator_flags(yes, no_input, lock_wait))
    choice, reason = choose_for_survivors(ledger, record.id, doc, choice, reason, opts.interactive)
    ledger.close()
    drive(doc, opts, ledger_url, as_json, verbose,
           lambda s: s.resume(find_run(s.ledger, record.id), choice=choice, reason=reason), report_to=report_to)


def _refuse_by_kind(record: Any, what: str) -> None:
    """A kill switch or a rehearsal record is refused before its runbook is even loaded (exit 15);
    the session refuses them too, for callers that are not this command."""
    from tminus.engine.session import refuse_to_reverse
    from tminus.errors import ResumeRefused

    try:
        refuse_to_reverse(record, what)
    except ResumeRefused as exc:
        fail(str(exc), Exit.NEEDS_OPERATOR)


@cli.command()
@click.argument("run_id")
@click.option("--reason", required=True, help="Why the run is rolled back (recorded).")
@recorded_vars_only
@run_options
@operator_option
@ledger_option
@json_option
@report_option
def rollback(run_id: str, reason: str, yes: bool, no_input: bool, lock_wait: str, verbose: bool,
             operator: str | None, ledger_url: str | None, as_json: bool, report_to: str | None) -> None:
    """Undo a completed run, or one that stopped before it ended: its undo steps newest first, the
    rollback steps, then verify."""

    ledger = open_ledger_or_fail(ledger_url, create=False)
    record = find_run(ledger, run_id)
    _refuse_by_kind(record, "rolled back")
    doc = load_document(record.runbook_path, text=record.runbook_text)
    opts = build_options(doc, record.environment, (), operator, overrides=recorded_overrides(ledger, record.id),
                         **operator_flags(yes, no_input, lock_wait))
    ledger.close()
    drive(doc, opts, ledger_url, as_json, verbose,
           lambda s: s.rollback(find_run(s.ledger, record.id), reason=reason), report_to=report_to)


@cli.command()
@click.argument("run_id")
@click.option("--step", "step_key", help="The step waiting for approval (default: the only one waiting).")
@click.option("--no-go", "refuse", is_flag=True, help="Refuse instead of approving.")
@click.option("--reason", help="Why (recorded).")
@operator_option
@ledger_option
def approve(run_id: str, step_key: str | None, refuse: bool, reason: str | None, operator: str | None,
            ledger_url: str | None) -> None:
    """Approve (or refuse with --no-go) what a run waits for: a manual step, a go/no-go, a restore
    that would discard writes made since its backup."""
    from tminus.cli.render import pending_approvals, pending_requests

    ledger = open_ledger_or_fail(ledger_url, create=False)
    record = find_run(ledger, run_id)
    from tminus.projection import project

    view = project(ledger.events(record.id))
    pending = pending_approvals(view)
    if step_key is None:
        if len(pending) != 1:
            waiting = ", ".join(pending) or "nothing"
            fail(f"run {record.id} is waiting for {waiting}", Exit.USAGE,
                 hint="name the step with --step KEY" if pending else None)
        step_key = pending[0]
    elif step_key not in pending:
        fail(f"run {record.id} is not waiting for an approval of '{step_key}' "
             f"(waiting: {', '.join(pending) or 'nothing'})", Exit.USAGE)
    from tminus.ledger.records import local_identity

    who = resolve_operator(operator)  # a claim: anyone can type any name
    me = local_identity()  # who this is, as the OS says: a second person is another one of these
    asked = pending_requests(view).get(step_key, {})
    if asked.get("second_person") and (asked.get("identity") == me or asked.get("operator") == who):
        starter = asked.get("identity") or asked.get("operator")
        why = (f"{me} runs run {record.id}, and --operator {who} does not make another person of it"
               if asked.get("identity") == me else f"{who} started run {record.id}")
        from tminus.errors import LedgerError
        from tminus.events import NOTE, Event

        noted = "noted in the run"
        try:  # on the record, like the run's own refusals; unfenced, like `unlock`'s note
            ledger.append(Event(NOTE, record.id, {"action": "self-approval-refused", "by": who, "identity": me,
                                                  "message": f"{why}: its {step_key} needs a second person"},
                                step_key=step_key))
        except LedgerError as exc:  # e.g. a keyed ledger and no TMINUS_LEDGER_KEY here
            noted = f"not noted: {exc}"
        fail(f"{why}; its {step_key} needs a second person (refused, {noted})", Exit.FAILED,
             hint=f"someone other than {starter} runs this command, logged in as themselves")
    request = {str(k): a for k, a in view.pending_approvals().items()}[step_key]
    what = f"{step_key} (request #{request.seq}: {request.prompt or 'no prompt'})"
    import socket

    given = ledger.record_approval(record.id, step_key, approved=not refuse, by=who, host=socket.gethostname(),
                                   reason=reason, identity=me, for_seq=request.seq)
    if not given.lead:  # recorded, but another answer to this request came first
        fail(f"answered nothing: {what} of run {record.id} was answered first; yours is recorded "
             f"(approval {given.id}) and is not taken", Exit.FAILED, hint=f"see: tminus show {record.id}")
    click.echo(f"{'refused' if refuse else 'approved'} {what} of run {record.id} as {who} ({me})")


@cli.command()
@click.argument("runbook")
@click.option("-e", "--env", "environment", required=True, help="Environment of the lease.")
@click.option("--reason", required=True, help="Why the lease is broken (recorded in the holder's run).")
@operator_option
@ledger_option
def unlock(runbook: str, environment: str, reason: str, operator: str | None, ledger_url: str | None) -> None:
    """Break the lease of RUNBOOK (a file or a runbook name) in an environment."""
    from pathlib import Path

    name = load_document(runbook).runbook.name if Path(runbook).is_file() else runbook
    ledger = open_ledger_or_fail(ledger_url, create=False)
    key = f"{name}@{environment}"
    broken = ledger.break_lease(key, by=resolve_operator(operator), reason=reason)
    if broken is None:
        fail(f"no lease on {key}")
    click.echo(f"broke the lease on {key} held by run {broken.run_id} ({broken.operator}@{broken.host}, "
               f"pid {broken.pid}); `tminus resume {broken.run_id}` continues that run")
