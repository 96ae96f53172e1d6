"""`tminus docs`: the runbook as a Markdown page (cli/docs_page.py), written out or checked against
a committed copy (`--check`: the `docs` kind runs this in a gate)."""

from __future__ import annotations

import difflib
import shlex
from pathlib import Path

import click

from tminus.cli.common import VAR_FILE_KEY, emit_json, env_options, fail, json_option, load_document, problems
from tminus.cli.running import build_options, with_times
from tminus.engine.exitcodes import Exit

MAX_DIFF_LINES = 400  # of the diff printed as text; --json carries it whole


def register(cli: click.Group) -> None:
    cli.add_command(docs)


def normalise(page: str) -> str:
    """What --check compares: line endings and trailing whitespace do not count."""
    lines = [line.rstrip() for line in page.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def page_diff(committed: str, rendered: str, name: str) -> list[str]:
    """A unified diff from the committed page to the one the runbook renders now."""
    return list(difflib.unified_diff(normalise(committed).splitlines(), normalise(rendered).splitlines(),
                                     fromfile=f"{name} (committed)", tofile=f"{name} (rendered from the runbook)",
                                     lineterm=""))


@click.command()
@click.argument("runbook", type=click.Path(dir_okay=False))
@env_options
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the page to FILE instead of stdout.")
@click.option("--check", "check_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Compare the page with a committed FILE: exit 0 if equal, 1 with a diff if it drifted.")
@json_option
def docs(runbook: str, environment: str | None, var_items: tuple[str, ...], output: str | None,
         check_file: str | None, as_json: bool) -> None:
    """Render RUNBOOK as the Markdown page an operator reads on the day: what is needed before T+0,
    the gates, the T+ timeline, each phase's steps with their undo and effect, the point of no
    return, the rollback path, verify, the go/no-go and who approves, the monitor, the kill switch.
    The same words as `tminus plan`; secrets masked, run-time values as placeholders; the same page
    on any machine (no clock, no ledger, no process environment), so --check can hold it in CI."""
    from tminus.cli.docs_page import docs_options, render_page
    from tminus.errors import RunbookError

    if output and check_file:
        fail("give -o or --check, not both", Exit.USAGE)
    doc = load_document(runbook)
    chosen = build_options(doc, environment, var_items, None)
    opts = with_times(doc, docs_options(doc, chosen.environment, chosen.overrides), None)
    try:
        page = render_page(doc, opts)
    except RunbookError as exc:  # a templated duration that does not render to one
        problems(runbook, exc)
    if check_file is not None:
        _check(page, Path(check_file), runbook, opts.environment, var_items, as_json)
        return
    if output:
        Path(output).write_text(page, encoding="utf-8")
        if as_json:
            emit_json({"written": output, "environment": opts.environment, "lines": page.count("\n")})
        else:
            click.echo(f"wrote {output} ({page.count(chr(10))} lines, {opts.environment})", err=True)
        return
    if as_json:
        emit_json({"environment": opts.environment, "page": page})
    else:
        click.echo(page, nl=False)


def _check(page: str, file: Path, runbook: str, environment: str, var_items: tuple[str, ...],
           as_json: bool) -> None:
    ctx = click.get_current_context(silent=True)
    var_file = ctx.meta.get(VAR_FILE_KEY) if ctx is not None else None
    regenerate = " ".join(["tminus docs", shlex.quote(runbook), "-e", shlex.quote(environment),
                           *([f"--var-file {shlex.quote(var_file)}"] if var_file else []),
                           *(f"--var {shlex.quote(v)}" for v in var_items), "-o", shlex.quote(str(file))])
    if not file.is_file():
        fail(f"--check {file}: no such file" + (" (it is a directory)" if file.is_dir() else ""), Exit.USAGE,
             hint=f"write it with: {regenerate}")
    try:
        committed = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--check {file}: cannot read it as UTF-8 text: {exc}", Exit.FAILED, hint=f"regenerate with: {regenerate}")
    diff = page_diff(committed, page, str(file))
    if as_json:
        emit_json({"file": str(file), "environment": environment, "current": not diff, "diff": diff,
                   "regenerate": regenerate})
        raise SystemExit(int(Exit.FAILED) if diff else 0)
    if not diff:
        click.echo(f"{file} is current ({runbook}, {environment})")
        return
    for line in diff[:MAX_DIFF_LINES]:
        click.echo(line)
    if len(diff) > MAX_DIFF_LINES:
        click.echo(f"... ({len(diff) - MAX_DIFF_LINES} more diff lines)")
    fail(f"{file} drifted from {runbook} ({environment}): {_changed(diff)}", Exit.FAILED,
         hint=f"regenerate with: {regenerate}")


def _changed(diff: list[str]) -> str:
    removed = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
    added = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
    return f"{removed} line(s) differ in the committed page, {added} in the rendered one"
