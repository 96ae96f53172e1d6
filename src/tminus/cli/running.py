"""What every command that runs a runbook shares (`run`, `gate`, `resume`, `rollback`, `monitor`):
its options, turning flags into engine `Options`, and driving a session with a display to an exit code.

Below app.py and watch.py, which both register commands with these.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from tminus.cli.common import VAR_FILE_KEY, emit_json, fail, open_ledger_or_fail, problems, settings
from tminus.engine.exitcodes import Exit
from tminus.processes import default_operator


def build_options(doc: Any, environment: str | None, var_items: tuple[str, ...], operator: str | None,
                  **kw: Any) -> Any:
    """The engine's `Options` from the command's flags (-e and --operator default to tminus.toml's
    `environment` and `operator`); an unknown environment, an undeclared
    `--var` name or a value its variable cannot take is a usage error (see cli/variables.py)."""
    from tminus.engine.context import Options, resolve_environment
    from tminus.errors import TminusError

    chosen = settings(environment=environment, operator=operator)
    try:
        env = resolve_environment(doc, chosen.environment.value)
    except TminusError as exc:
        fail(f"{exc} (environment from {chosen.environment.source})" if environment is None and
             chosen.environment.value else str(exc), Exit.USAGE)
    if "overrides" not in kw:
        kw["overrides"] = _overrides(doc, env, var_items)
    return Options(environment=env, operator=chosen.operator.value or default_operator(), **kw)


def _overrides(doc: Any, environment: str, var_items: tuple[str, ...]) -> dict[str, Any]:
    from tminus.cli.variables import resolve_overrides

    ctx = click.get_current_context(silent=True)
    var_file = ctx.meta.get(VAR_FILE_KEY) if ctx is not None else None
    overrides, problems = resolve_overrides(doc, environment, var_items, var_file)
    if problems:
        for problem in problems[:-1]:
            click.echo(f"error: {problem}", err=True)
        fail(problems[-1], Exit.USAGE)
    return overrides


def at_option(fn: Any) -> Any:
    return click.option("--at", "at_text", metavar="TIME", help=(
        "The cutover time (T+0), ISO 8601 with its zone, e.g. 2026-12-05T22:00Z; overrides the runbook's `at:`."
    ))(fn)


def with_times(doc: Any, opts: Any, at_text: str | None, stage_text: str | None = None) -> Any:
    """`opts` with the cutover time (`--at`, else the runbook's `at:` rendered with the run's vars)
    and the stage of `tminus gate --stage`. Junk in a flag is a usage error naming it; an `at:` that
    renders to junk is an invalid runbook (exit 78) at its position."""
    from tminus.engine.stages import cutover_time, stages
    from tminus.errors import RunbookError
    from tminus.runbook.timing import format_offset, stage_offset

    try:
        opts.at = cutover_time(doc, opts, at_text)
    except RunbookError as exc:
        for problem in exc.problems:
            click.echo(problem.render(), err=True)
        sys.exit(int(Exit.INVALID_RUNBOOK))
    except ValueError as exc:
        hint = getattr(exc, "hint", None)
        fail(f"--at: {exc}", Exit.USAGE, hint=hint)
    if stage_text is not None:
        try:
            offset = stage_offset(stage_text)
        except ValueError as exc:
            fail(f"--stage: {exc}", Exit.USAGE, hint=getattr(exc, "hint", None))
        declared = [offset for offset, _gates in stages(doc.runbook)]
        if offset not in declared:
            named = ", ".join(format_offset(o) for o in declared) or "none (no gate has a `stage:`)"
            fail(f"--stage: the runbook has no gate of stage {format_offset(offset)}", Exit.USAGE,
                 hint=f"its stages: {named}")
        opts.stage = offset
    return opts


def run_options(fn: Any) -> Any:
    fn = click.option("--yes", "-y", is_flag=True, help="Approve every manual step and a manual go/no-go.")(fn)
    fn = click.option("--no-input", is_flag=True,
                      help="Never wait for an operator: manual steps fail at once.")(fn)
    fn = click.option("--lock-wait", default="0s", metavar="DURATION",
                      help="Wait this long for another run of the same runbook and environment.")(fn)
    fn = click.option("-v", "--verbose", is_flag=True, help="Also print each step as it starts.")(fn)
    return fn


def operator_flags(yes: bool, no_input: bool, lock_wait: str) -> dict[str, Any]:
    """The `Options` fields that `run_options` flags set (interactive only on a terminal)."""
    return {"yes": yes, "no_input": no_input, "interactive": sys.stdin.isatty() and not no_input,
            "lock_wait": parse_duration_option(lock_wait, "--lock-wait")}


def parse_duration_option(text: str, option: str) -> float:
    """A duration flag's seconds; junk is a usage error naming the flag, not a traceback."""
    from tminus.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(f"{option}: {exc}", Exit.USAGE)


def report_option(fn: Any) -> Any:
    """`--report FILE` of run, resume and rollback (the format from FILE's extension)."""
    return click.option("--report", "report_to", metavar="FILE", type=click.Path(dir_okay=False),
                        callback=_check_report_name, help=(
                            "When the run ends, write its report to FILE: .md, .html, .xml (JUnit) or .json. "
                            "A report that cannot be written is said on stderr; the exit code stays the run's."))(fn)


def _check_report_name(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """An extension that names no format is a usage error before anything runs."""
    if value is not None:
        from tminus.cli.report_files import choose_format

        choose_format(None, value, "--report")
    return value


def drive(doc: Any, opts: Any, ledger_url: str | None, as_json: bool, verbose: bool,
          action: Callable[[Any], Any], more_json: Callable[[Any], dict[str, Any]] | None = None,
          report_to: str | None = None, report_format: str | None = None) -> None:
    """Run `action(session)` under a display, print the outcome and exit with the run's code.
    `report_to`: write the run's report there when it ends (`report_format`, else from the file's
    extension); `--json` carries each step's result, from the same report."""
    from tminus.cli import gh_annotations as annotations
    from tminus.cli.display import make_display
    from tminus.engine.session import Session
    from tminus.errors import LedgerError, LockHeld, ResumeRefused, RunbookError

    ledger = open_ledger_or_fail(ledger_url)
    if verbose:  # which ledger, and why that one: the folder a run starts in can decide it
        click.echo(f"ledger {ledger.url} ({settings(ledger_url=ledger_url).ledger.source})", err=True)
    display = make_display(verbose=verbose)
    subscribers: list[Any] = [display]
    if annotations.enabled():  # in a GitHub Actions job: failed steps annotated at their line
        subscribers.append(annotations.RunAnnotations(doc, annotations.stream(as_json)))
    try:
        session = Session(doc, ledger, opts, subscribers, pause_display=display.pause)
    except RunbookError as exc:  # a templated duration that does not render to one
        display.close()
        problems(doc.path, exc)

    try:
        result = action(session)
    except LockHeld as exc:
        display.close()
        fail(str(exc), Exit.LOCKED)
    except ResumeRefused as exc:
        display.close()
        fail(str(exc), Exit.NEEDS_OPERATOR)
    except LedgerError as exc:
        display.close()
        fail(str(exc))
    finally:
        display.close()
    report = _report_of_run(ledger, session.run_id, full=report_to is not None) if as_json or report_to else None
    if report_to is not None:
        _write_report(report, report_to, report_format)
    if as_json:
        from tminus.cli.report_files import step_results

        emit_json({"run_id": session.run_id, "status": result.status, "exit_code": int(result.exit),
                   "reason": result.reason, "failures": result.failures, "ledger": ledger.url,
                   "steps": step_results(report) if report is not None else None,
                   **(more_json(session) if more_json is not None else {})})
    else:
        click.echo(f"\n{result.status.upper().replace('_', ' ')}: {result.reason}", err=True)
        click.echo(f"run {session.run_id} · ledger {ledger.url} · details: tminus show {session.run_id}",
                   err=True)
    ledger.close()
    sys.exit(int(result.exit))


def _report_of_run(ledger: Any, run_id: str, *, full: bool) -> Any:
    """The run's report from its own ledger events: `full` (for a report file) adds the chain's
    verdict and the point of no return. A failure here is said on stderr and never changes the
    run's exit code."""
    try:
        record = ledger.get_run(run_id)
        if full:
            from tminus.cli.report_files import build

            return build(ledger, record)
        from tminus.projection import project
        from tminus.reports.run_report import report_of

        return report_of(record, project(ledger.events(run_id)))
    except Exception as exc:  # the run is over: its exit code is what counts
        click.echo(f"error: cannot build the report of run {run_id}: {type(exc).__name__}: {exc}", err=True)
        return None


def _write_report(report: Any, path: str, fmt: str | None) -> None:
    from tminus.cli.report_files import choose_format, render_text, write_atomically

    if report is None:
        return
    chosen = choose_format(fmt, path)
    try:
        write_atomically(path, render_text(report, chosen))
    except Exception as exc:  # a report not written does not undo what the run did
        click.echo(f"error: the run ended, but its {chosen} report could not be written to {path}: "
                   f"{type(exc).__name__}: {exc}", err=True)
        return
    click.echo(f"wrote the {chosen} report of run {report.run_id} to {path}", err=True)
