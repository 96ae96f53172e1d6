"""`tminus import`: a hand-written Markdown runbook -> a tminus runbook skeleton (tminus/importer/).

The output is validated with the loader before it is written, and written whole (a temporary file
renamed), so an invalid or half-written runbook never lands on disk.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from tminus.cli.common import emit_json, json_option
from tminus.engine.exitcodes import Exit

MAX_INPUT = 512 * 1024  # a long hand-written runbook is ~50 KB; the runbook file limit is 512 KiB too


def register(cli: click.Group) -> None:
    cli.add_command(import_markdown)


def _usage(message: str, hint: str) -> None:
    click.echo(f"error: {message}\n    hint: {hint}", err=True)
    sys.exit(int(Exit.USAGE))


def _read(path: Path) -> str:
    try:
        with path.open("rb") as fh:  # never more than the limit: the file may be /dev/zero
            raw = fh.read(MAX_INPUT + 1)
    except FileNotFoundError:
        _usage(f"{path}: no such file", "give the path of a Markdown runbook, e.g. tminus import RUNBOOK.md")
    except IsADirectoryError:
        _usage(f"{path}: is a folder", "give the path of one Markdown file")
    except OSError as exc:
        _usage(f"{path}: cannot read it: {exc.strerror or exc}", "check the path and its permissions")
    if len(raw) > MAX_INPUT:
        _usage(f"{path}: more than {MAX_INPUT // 1024} KiB: not a hand-written runbook",
               "import the part that is the runbook (split the file)")
    if b"\x00" in raw:
        _usage(f"{path}: a binary file (it contains NUL bytes), not Markdown text", "give a Markdown or text file")
    text = raw.decode("utf-8", errors="replace")  # a stray Latin-1 byte must not lose the whole file
    if not text.strip("\ufeff \t\r\n"):
        _usage(f"{path}: empty: nothing to import", "give a Markdown runbook with headings, checklists or code")
    return text


@click.command("import")
@click.argument("runbook", type=click.Path(dir_okay=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Where to write the YAML (default: RUNBOOK with the suffix .yaml; '-' for stdout).")
@click.option("--name", default=None, help="The runbook's name (default: from the first heading, or the file name).")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@json_option
def import_markdown(runbook: Path, output: Path | None, name: str | None, force: bool, as_json: bool) -> None:
    """Write a tminus runbook skeleton from a hand-written Markdown (or plain text) runbook: headings
    become gates, phases, the rollback and the go/no-go; checklist and numbered items manual steps;
    shell blocks run steps, curl lines http checks, psql queries sql steps. Every guess is a YAML
    comment naming its Markdown line, and a first gate that always fails keeps the skeleton from
    running until someone has reviewed it. Exit 0 written, 2 usage, 78 the output would not validate."""
    from tminus.errors import RunbookError
    from tminus.importer import convert
    from tminus.importer.writer import RoundTripError
    from tminus.runbook.loader import load_runbook

    text = _read(runbook)
    to_stdout = output is not None and str(output) == "-"
    target = output if output is not None else runbook.with_suffix(".yaml")
    if not to_stdout:
        if target.exists() and target.resolve() == runbook.resolve():
            _usage(f"{target}: is the Markdown file itself", "write the runbook elsewhere with -o FILE")
        if target.exists() and not force:
            _usage(f"{target}: exists", "pass --force to overwrite it, or -o FILE to write elsewhere")
        if target.is_dir():
            _usage(f"{target}: is a folder", "give -o a file path")
        if not target.parent.is_dir():
            _usage(f"{target.parent}: no such folder", "create it first, or give -o a path in a folder that exists")
    elif as_json:
        _usage("--json and -o - both want stdout", "write the runbook to a file with -o FILE to get the JSON summary")
    if name is not None and not name.strip():
        _usage("--name is empty", "give the runbook a name, e.g. --name orders-cutover")
    try:
        imported = convert(text, source=runbook.name, name=name.strip() if name else None)
        load_runbook(target if not to_stdout else Path("imported.yaml"), text=imported.text)
    except (RunbookError, RoundTripError) as exc:
        problems = exc.problems if isinstance(exc, RunbookError) else []
        click.echo(f"error: a bug in tminus import: the runbook made from {runbook} does not validate; "
                   "nothing was written", err=True)
        for problem in problems[:20]:
            click.echo(problem.render(), err=True)
        if not problems:
            click.echo(f"    {exc}", err=True)
        sys.exit(int(Exit.INVALID_RUNBOOK))
    summary = {"written": "-" if to_stdout else str(target), **imported.summary}
    if to_stdout:
        click.echo(imported.text, nl=False)
    else:
        _write(target, imported.text)
    if as_json:
        emit_json(summary)
        return
    steps = summary["steps"]
    kinds = ", ".join(f"{v} {k}" for k, v in steps.items() if k != "total")
    click.echo(f"{'stdout' if to_stdout else target}: '{summary['name']}': {summary['gates']} gates "
               f"(1 review gate), {summary['phases']} phases, {summary['after_go']} after_go phases, "
               f"{summary['rollback_steps']} rollback steps, decision {summary['decision']}; "
               f"{steps['total']} steps ({kinds}); {summary['guesses']} guesses marked '# guessed from line N'",
               err=to_stdout)
    for miss in summary["unmapped"]:
        click.echo(f"  not imported: line {miss['line']} '{miss['section']}': {miss['why']}", err=to_stdout)
    if summary["truncated"]:
        click.echo("  truncated: the text was too long; the import stopped early", err=to_stdout)
    click.echo("next: review every guessed step, delete the gate 'review the imported runbook', "
               f"then tminus validate {'FILE' if to_stdout else target}", err=to_stdout)


def _write(target: Path, text: str) -> None:
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=".tminus-import-", suffix=".yaml", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["register"]
