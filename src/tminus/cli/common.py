"""Helpers shared by the commands: loading runbooks with clear errors, options, exits."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from tminus.engine.exitcodes import Exit

if TYPE_CHECKING:
    from tminus.ledger import Ledger, LedgerReader, RunRecord

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: Exit = Exit.FAILED, hint: str | None = None) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"  hint: {hint}", err=True)
    sys.exit(int(code))


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def ledger_option(fn: F) -> F:
    return click.option(
        "--ledger", "ledger_url", envvar="TMINUS_LEDGER", default=None, metavar="URL",
        help="Ledger URL (SQLAlchemy). Default: sqlite:///.tminus/ledger.db [env: TMINUS_LEDGER]",
    )(fn)


def operator_option(fn: F) -> F:
    return click.option(
        "--operator", default=None, envvar="TMINUS_OPERATOR",
        help="Who is running this (recorded in the ledger). Default: the login name [env: TMINUS_OPERATOR]",
    )(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")(fn)


VAR_FILE_KEY = "tminus.var_file"


def env_options(fn: F) -> F:
    # --var-file is kept in the click context (read by running.build_options), so the commands that
    # take these options need no parameter for it.
    fn = click.option(
        "--var-file", metavar="FILE", type=click.Path(dir_okay=False), expose_value=False,
        callback=lambda ctx, _param, value: ctx.meta.__setitem__(VAR_FILE_KEY, value),
        help="Override variables from a YAML or JSON mapping; --var wins over it.",
    )(fn)
    fn = click.option(
        "--var", "var_items", multiple=True, metavar="KEY=VALUE",
        help="Override a variable declared under vars: (repeatable). The value is text as written, "
             "unless the variable's default is a number, boolean, list or mapping.",
    )(fn)
    return click.option("-e", "--env", "environment", default=None, metavar="ENV",
                        help="Environment defined in the runbook.")(fn)


def recorded_vars_only(fn: F) -> F:
    """`resume` and `rollback` render with the overrides the run recorded when it started: a run has one
    set of variables from start to end. A --var given to them is refused saying so (exit 2), rather
    than with click's bare "no such option"."""
    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value:
            raise click.UsageError(
                f"{param.opts[0]} is not taken by `tminus {ctx.info_name}`: the run renders with the --var "
                "overrides it started with (recorded in the ledger), from start to end; to deploy other "
                "values, start a new run", ctx)
        return value

    fn = click.option("--var-file", hidden=True, expose_value=False, callback=refuse, metavar="FILE")(fn)
    return click.option("--var", hidden=True, multiple=True, expose_value=False, callback=refuse,
                        metavar="KEY=VALUE")(fn)


def load_document(path: str, text: str | None = None) -> Any:
    """Load and validate a runbook; on problems print them all and exit 78."""
    from tminus.errors import RunbookError
    from tminus.runbook.loader import load_runbook

    try:
        return load_runbook(path, text=text)
    except RunbookError as exc:
        click.echo(f"{path}: {len(exc.problems)} problem(s):", err=True)
        for p in exc.problems:
            click.echo(p.render(), err=True)
        sys.exit(int(Exit.INVALID_RUNBOOK))


def open_ledger_or_fail(url: str | None) -> Ledger:
    """For commands that write: the ledger is created and migrated if needed."""
    from tminus.errors import LedgerError
    from tminus.ledger import open_ledger

    try:
        return open_ledger(url)
    except LedgerError as exc:
        fail(str(exc))


def open_reader_or_fail(url: str | None) -> LedgerReader:
    """For commands that only read: nothing is created, migrated or written."""
    from tminus.errors import LedgerError
    from tminus.ledger import open_reader

    try:
        return open_reader(url)
    except LedgerError as exc:
        fail(str(exc))


def open_listing(url: str | None) -> tuple[LedgerReader | None, str]:
    """For commands that list runs (status, history): a ledger not created yet holds no runs, and
    is not created by looking. Returns (the reader or None, the masked URL)."""
    from tminus.errors import LedgerError, LedgerMissing
    from tminus.ledger import open_reader

    try:
        reader = open_reader(url)
    except LedgerMissing as exc:
        return None, exc.url
    except LedgerError as exc:
        fail(str(exc))
    return reader, reader.url


def find_run(ledger: LedgerReader, run_id: str) -> RunRecord:
    from tminus.errors import LedgerError

    try:
        run = ledger.get_run(run_id)
    except LedgerError as exc:  # an ambiguous prefix
        fail(str(exc), Exit.USAGE)
    if run is None:
        fail(f"no run '{run_id}' in the ledger at {ledger.url}", hint="`tminus history` lists the runs")
    return run
