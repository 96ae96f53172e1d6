"""`tminus db lint DIR`: the migration safety lint on the command line (exit 0 clean, 1 findings,
2 missing directory or unknown rule)."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

import click

from tminus.cli.common import emit_json, fail
from tminus.engine.exitcodes import Exit


def register(group: click.Group) -> None:
    group.add_command(lint)


@click.command()
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--ignore", "ignore", multiple=True, metavar="RULE", help="Skip a rule (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
def lint(directory: Path, ignore: tuple[str, ...], as_json: bool) -> None:
    """Flag risky statements in the NNNN_name.sql migrations of DIR (long locks, table rewrites,
    changes that break the running version) with the safer pattern. Down and verify files are
    skipped. Opt a statement out with a comment on the line above it or on its line:

    \b
        -- tminus-lint: ignore RULE (reason)
    """
    from tminus.db.lint import lint_directory

    try:
        findings = lint_directory(directory, ignore=ignore)
    except FileNotFoundError as exc:
        fail(str(exc), Exit.USAGE)
    except ValueError as exc:
        fail(str(exc), Exit.USAGE, hint="see `tminus db lint --help`")

    if as_json:
        emit_json({"dir": str(directory), "count": len(findings), "findings": [f.to_dict() for f in findings]})
    elif not findings:
        click.echo(f"{directory}: no risky statements found")
    else:
        for file, group in groupby(findings, key=lambda f: f.file):
            click.echo(click.style(file, bold=True))
            for f in group:
                click.echo(f"  line {f.line}: [{f.risk}] {f.rule}: {f.message}")
                click.echo(f"    safer: {f.safer}")
        files = len({f.file for f in findings})
        click.echo(f"\n{len(findings)} finding(s) in {files} file(s)")
    if findings:
        raise SystemExit(int(Exit.FAILED))
