"""`tminus init`: write a starter runbook from one of a few commented templates.

The templates are package data (cli/templates/*.yaml), each a whole runbook that validates and
plans as written; the runbook's name is the only thing put in, as a YAML double-quoted string.
"""

from __future__ import annotations

import json
import shlex
import sys
from importlib import resources
from pathlib import Path

import click

from tminus.cli.common import fail
from tminus.engine.exitcodes import Exit

# name -> one line saying what it is for (`tminus init --list`)
TEMPLATES: dict[str, str] = {
    "web-release": "Deploy a web service release: health gates, deploy with undo, readiness, verify, "
                   "monitor with a rollback rule.",
    "db-migration": "Apply SQL migrations: backup with a restore drill, lint gate, migrate with automatic "
                    "revert, a manual go/no-go.",
    "blue-green": "Start the idle slot, preview it through nginx, switch with proof, monitor, retire the old "
                  "slot; a kill switch.",
}
DEFAULT = "web-release"
PLACEHOLDER = "__TMINUS_NAME__"
MAX_NAME = 200


def template_text(name: str) -> str:
    return (resources.files("tminus.cli") / "templates" / f"{name}.yaml").read_text(encoding="utf-8")


def check_name(name: str) -> str | None:
    """Why NAME cannot be a runbook's name, or None. One line of printable text: it is shown in
    every log line, lease and report; quotes, `#`, `:` and `{{ }}` are fine (written quoted)."""
    if not name.strip():
        return "is empty"
    if len(name) > MAX_NAME:
        return f"is {len(name)} characters long; at most {MAX_NAME}"
    bad = next((c for c in name if not c.isprintable()), None)
    if bad is not None:
        return f"holds the control character {bad!r}; a runbook's name is one line of printable text"
    return None


def render(template: str, name: str, filename: str = "runbook.yaml") -> str:
    # JSON's string syntax is a YAML double-quoted scalar: quotes and backslashes escaped, the rest
    # (`{{ }}`, `#`, `: `) literal, never read as a template, a comment or a mapping.
    text = template_text(template).replace(PLACEHOLDER, json.dumps(name, ensure_ascii=False), 1)
    if filename == "runbook.yaml" or not filename.isprintable():  # a comment holds one line
        return text
    # the commands the comments suggest name the file as written (quoted for a shell)
    quoted = shlex.quote(filename)
    return "".join(line.replace("runbook.yaml", quoted) if line.lstrip().startswith("#") else line
                   for line in text.splitlines(keepends=True))


def _choose(template: str | None) -> str:
    if template is not None:
        return template
    if sys.stdin.isatty() and sys.stdout.isatty():
        for key, text in TEMPLATES.items():
            click.echo(f"  {key:<13} {text}")
        return str(click.prompt("Template", type=click.Choice(list(TEMPLATES)), default=DEFAULT))
    click.echo(f"tminus: no --template and no terminal to ask on: using {DEFAULT} "
               f"(`tminus init --list` shows the others)", err=True)
    return DEFAULT


@click.command()
@click.option("-t", "--template", type=click.Choice(list(TEMPLATES)), default=None,
              help=f"The starting point. Without it: asked on a terminal, else {DEFAULT}.")
@click.option("-o", "--output", default="runbook.yaml", show_default=True, type=click.Path(dir_okay=False),
              help="Where to write it; '-' for stdout.")
@click.option("--name", default=None, metavar="NAME",
              help="The runbook's name (ledger, leases, reports). Default: the file's name without .yaml, "
                   "or the template's name for runbook.yaml.")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.option("--list", "list_only", is_flag=True, help="List the templates and exit.")
def init(template: str | None, output: str, name: str | None, force: bool, list_only: bool) -> None:
    """Write a starter runbook, with comments on each section, that validates and plans as written."""
    if list_only:
        for key, text in TEMPLATES.items():
            click.echo(f"{key:<13} {text}")
        return
    target = None if output == "-" else Path(output)
    if target is not None and target.exists() and not force:
        fail(f"{output} exists; not overwritten", Exit.USAGE, hint="choose another file with -o, or --force")
    if name is not None and (why := check_name(name)) is not None:
        fail(f"--name {why}", Exit.USAGE, hint="e.g. --name 'orders-api 2.4 release'")
    chosen = _choose(template)
    if name is None:
        stem = target.stem if target is not None else ""
        name = chosen if stem in ("", "runbook") or check_name(stem) else stem
    text = render(chosen, name, output if target is not None else "runbook.yaml")
    if target is None:
        click.echo(text, nl=False)
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w" if force else "x", encoding="utf-8") as fh:  # "x": never a file made meanwhile
            fh.write(text)
    except FileExistsError:
        fail(f"{output} exists; not overwritten", Exit.USAGE, hint="choose another file with -o, or --force")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    click.echo(f"wrote {output} ({chosen}, runbook '{name}'); next: tminus validate {output} && "
               f"tminus plan {output}", err=True)


def register(cli: click.Group) -> None:
    cli.add_command(init)
