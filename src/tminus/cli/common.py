"""Helpers shared by the commands: loading runbooks with clear errors, options, exits."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from tminus.engine.exitcodes import Exit

if TYPE_CHECKING:
    from tminus.cli.settings import Setting, Settings
    from tminus.engine.context import Options
    from tminus.ledger import Ledger, LedgerReader, RunRecord
    from tminus.runbook.document import RunbookDocument

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
        help="Ledger URL (SQLAlchemy). Default: `ledger` in tminus.toml, else the nearest .tminus/ledger.db "
             "upward, else .tminus/ledger.db here [env: TMINUS_LEDGER]",
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
        problems(path, exc)


def problems(path: Any, exc: Any) -> NoReturn:
    """Print a RunbookError's problems, each with its position, and exit 78 (in a GitHub Actions
    job also as `::error` commands, on stderr: stdout may be promised to --json)."""
    from tminus.cli import gh_annotations as gha

    click.echo(f"{path}: {len(exc.problems)} problem(s):", err=True)
    for p in exc.problems:
        click.echo(p.render(), err=True)
        if gha.enabled():
            click.echo(gha.at("error", p.message, str(p.location) if p.location else str(path),
                              f"tminus: {p.path}" if p.path else "tminus"), err=True)
    sys.exit(int(Exit.INVALID_RUNBOOK))


CONFIG_KEY = "tminus.config"  # ctx.meta: the global --config value and whether it came from TMINUS_CONFIG


def config_option(fn: F) -> F:
    """The group's global `--config PATH` [env: TMINUS_CONFIG], kept in ctx.meta for every command."""
    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        from click.core import ParameterSource

        source = ctx.get_parameter_source(param.name or "")
        ctx.meta[CONFIG_KEY] = (value, source == ParameterSource.ENVIRONMENT)

    return click.option(
        "--config", "config_path", envvar="TMINUS_CONFIG", metavar="PATH", expose_value=False,
        type=click.Path(dir_okay=False), callback=remember, is_eager=True,
        help="Project settings file. Default: the nearest tminus.toml upward from the working "
             "directory [env: TMINUS_CONFIG]",
    )(fn)


def settings(ledger_url: str | None = None, environment: str | None = None,
             operator: str | None = None) -> Settings:
    """Every setting resolved: flag > environment variable > tminus.toml > default. A bad
    tminus.toml exits 78 with its file:line."""
    from click.core import ParameterSource

    from tminus.cli.settings import ConfigError, resolve

    ctx = click.get_current_context(silent=True)
    config_flag, config_from_env = ctx.meta.get(CONFIG_KEY, (None, False)) if ctx else (None, False)

    def from_env(name: str) -> bool:
        return ctx is not None and ctx.get_parameter_source(name) == ParameterSource.ENVIRONMENT

    try:
        return resolve(cwd=Path.cwd(), environ=os.environ, config_flag=config_flag,
                       config_from_env=config_from_env, ledger=ledger_url, ledger_from_env=from_env("ledger_url"),
                       environment=environment, operator=operator, operator_from_env=from_env("operator"))
    except ConfigError as exc:
        fail(str(exc), Exit.INVALID_RUNBOOK, hint=exc.hint)


def resolve_operator(operator: str | None) -> str:
    value = settings(operator=operator).operator.value
    assert value is not None  # the default is the login name
    return value


def _sqlite_file(url: str) -> Path | None:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix):].partition("?")[0]
    return None if not path or path == ":memory:" or path.startswith("file:") else Path(path)


def open_ledger_or_fail(url: str | None, *, create: bool = True) -> Ledger:
    """For commands that write: the ledger is created and migrated if needed (and the command says
    where, since the folder it was started in decides it when nothing else does). `create=False`:
    for commands that act on something already recorded (resume, rollback, approve, unlock), a
    missing ledger is an error, as for a reader, and nothing is created."""
    from tminus.errors import LedgerError, LedgerMissing
    from tminus.ledger import open_ledger, open_reader

    resolved = settings(ledger_url=url).ledger
    assert resolved.value is not None
    if not create:
        try:
            open_reader(resolved.value).close()
        except LedgerMissing as exc:
            fail(_missing(resolved, exc))
        except LedgerError:
            pass  # e.g. an older schema: opening to write below migrates it, or says why not
    file = _sqlite_file(resolved.value)
    if file is not None and not file.exists():
        why = ("no tminus.toml and no .tminus/ledger.db found upward"
               if resolved.source.startswith("default") else f"ledger from {resolved.source}")
        click.echo(f"tminus: creating the ledger {file.resolve()} ({why}; `tminus config` shows the settings)",
                   err=True)
    try:
        return open_ledger(resolved.value)
    except LedgerError as exc:
        fail(str(exc))


def _missing(resolved: Setting, exc: Exception) -> str:
    return (f"{exc}\n  ledger setting from: {resolved.source}. Runs are recorded where `tminus run` was "
            "started: give the project one ledger with `ledger = ...` in a tminus.toml at its root "
            "(`tminus config` shows where tminus looks)")


def open_reader_or_fail(url: str | None) -> LedgerReader:
    """For commands that only read: nothing is created, migrated or written."""
    from tminus.errors import LedgerError, LedgerMissing
    from tminus.ledger import open_reader

    resolved = settings(ledger_url=url).ledger
    try:
        return open_reader(resolved.value)
    except LedgerMissing as exc:
        fail(_missing(resolved, exc))
    except LedgerError as exc:
        fail(str(exc))


def open_listing(url: str | None) -> tuple[LedgerReader | None, str]:
    """For commands that list runs (status, history): a ledger not created yet holds no runs (an
    empty list, exit 0, and a note on stderr), and is not created by looking. Returns (the reader
    or None, the masked URL)."""
    from tminus.errors import LedgerError, LedgerMissing
    from tminus.ledger import open_reader

    resolved = settings(ledger_url=url).ledger
    try:
        reader = open_reader(resolved.value)
    except LedgerMissing as exc:
        click.echo(f"note: {_missing(resolved, exc)}", err=True)
        return None, exc.url
    except LedgerError as exc:
        fail(str(exc))
    return reader, reader.url


def plan_rehearsal(doc: RunbookDocument, opts: Options, url: str | None) -> dict[str, Any]:
    """`tminus plan`: whether decision.require_rehearsal is met in the ledger now. The plan needs no
    ledger: one not created yet (or unreadable) leaves it not checked, and is not created by looking."""
    from tminus.engine.plan import rehearsal_status
    from tminus.errors import LedgerError, LedgerMissing
    from tminus.ledger import open_reader

    resolved = settings(ledger_url=url).ledger
    try:
        reader = open_reader(resolved.value)
    except LedgerMissing as exc:
        return rehearsal_status(doc, opts, None, f"no ledger at {exc.url}")
    except LedgerError as exc:
        return rehearsal_status(doc, opts, None, str(exc))
    with reader:
        return rehearsal_status(doc, opts, reader)


def recorded_overrides(ledger: LedgerReader, run_id: str) -> dict[str, Any]:
    """The --var values the run started with, so resume, rollback and a report's plan render the
    same commands."""
    from tminus.projection import project

    started = project(ledger.events(run_id)).started
    return dict(started.overrides) if started else {}


def find_run(ledger: LedgerReader, run_id: str) -> RunRecord:
    from tminus.errors import LedgerError

    try:
        run = ledger.get_run(run_id)
    except LedgerError as exc:  # an ambiguous prefix
        fail(str(exc), Exit.USAGE)
    if run is None:
        fail(f"no run '{run_id}' in the ledger at {ledger.url}", hint="`tminus history` lists the runs")
    return run
