"""`tminus report RUN_ID`: one run as a Markdown, HTML, JUnit or JSON report, from the ledger only."""

from __future__ import annotations

import click

from tminus.cli.common import fail, find_run, ledger_option, open_reader_or_fail
from tminus.cli.report_files import build, choose_format, render_text, write_atomically
from tminus.engine.exitcodes import Exit
from tminus.reports.formats import FORMATS


def register(cli: click.Group) -> None:
    cli.add_command(report)


@click.command()
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="md (default), html (one self-contained page), junit (XML for CI) or json. "
                   "Default: from -o's extension (.md, .html, .xml, .json), else md.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write the report to FILE (atomically: a temporary file, then a rename) instead of stdout.")
@ledger_option
def report(run_id: str, fmt: str | None, output: str | None, ledger_url: str | None) -> None:
    """The report of run RUN_ID (an id or a unique prefix) for a pull request, a change ticket or CI:
    header and outcome with its causes, the timeline, every step with its expectations and output,
    approvals, the decision, the rollback, the monitor, deadlines and the ledger chain's verdict.
    Secrets were masked before they were recorded. Reads the ledger only.

    \b
    Exit codes: 0 written · 1 no such run, or the ledger cannot be read · 2 usage (a format or an
    extension that names none, a rehearsal record)."""
    chosen = choose_format(fmt, output)
    reader = open_reader_or_fail(ledger_url)
    try:
        record = find_run(reader, run_id)
        if record.kind == "rehearsal":
            fail(f"run {record.id} is a rehearsal record (a set of cycles, each a run of its own): "
                 "it has no report of its own", Exit.USAGE,
                 hint=f"`tminus show {record.id}` prints the rehearsal report; `tminus report CYCLE_RUN_ID` "
                      "reports one cycle's run")
        text = render_text(build(reader, record), chosen)
    finally:
        reader.close()
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        write_atomically(output, text)
    except OSError as exc:
        fail(f"cannot write the report to {output}: {exc.strerror or exc}")
    click.echo(f"wrote the {chosen} report of run {record.id} to {output}", err=True)
