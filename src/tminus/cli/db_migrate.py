"""`tminus db status|migrate|revert|verify DIR --url URL`: SQL migrations from the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from tminus.cli.common import emit_json, fail, json_option

F = TypeVar("F", bound=Callable[..., Any])


class Duration(click.ParamType):
    """`30s`, `2m`, `500ms` or plain seconds, as every other tminus option and runbook key takes them."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from tminus.durations import parse_duration

        if isinstance(value, float):  # the default, already converted
            return value
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()


def _columns(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    """`--column version=version --column applied_at=installed_on` -> the adopted table's mapping."""
    from tminus.db.migrations.adopt import Columns
    from tminus.db.migrations.errors import MigrationError

    if not values:
        return None
    mapping: dict[str, str] = {}
    for value in values:
        notion, eq, column = value.partition("=")
        if not eq or not notion.strip():
            raise click.BadParameter(f"expected NOTION=COLUMN (e.g. version=version), got {value!r}", ctx, param)
        if notion.strip() in mapping:
            raise click.BadParameter(f"{notion.strip()} is given twice", ctx, param)
        mapping[notion.strip()] = column.strip()
    try:
        return Columns.parse(mapping)
    except MigrationError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _common(fn: F) -> F:
    for option in reversed([
        click.argument("directory", type=click.Path(file_okay=False)),
        click.option("--url", required=True, envvar="TMINUS_DB_URL",
                     help="SQLAlchemy URL of the database [env: TMINUS_DB_URL]."),
        click.option("--table", default="schema_migrations", show_default=True, help="Tracking table."),
        click.option("--column", "columns", multiple=True, callback=_columns, metavar="NOTION=COLUMN",
                     help="Adopt --table, an existing migrations table of another shape: the column holding"
                          " each notion (version required; name, applied_at, checksum optional). Repeat it."),
        click.option("--lock-timeout", type=DURATION, default="5s", show_default=True,
                     help="PostgreSQL lock_timeout per statement (30s, 500ms; plain numbers are seconds)."),
        click.option("--statement-timeout", type=DURATION, default=None,
                     help="PostgreSQL statement_timeout (5m, 90s; plain numbers are seconds)."),
        click.option("--lock-retries", type=int, default=3, show_default=True,
                     help="Retries of a statement that hit lock_timeout."),
        click.option("--lock-wait", type=DURATION, default="60s", show_default=True,
                     help="How long to wait for another migrator's lock (30s, 2m; plain numbers are seconds)."),
        json_option,
    ]):
        fn = option(fn)
    return fn


def _migrator(kw: dict[str, Any], *, quiet: bool) -> Any:
    from tminus.db.migrations.migrator import Migrator

    return Migrator(
        kw["url"], kw["directory"], table=kw["table"], columns=kw["columns"], lock_timeout=kw["lock_timeout"],
        statement_timeout=kw["statement_timeout"], lock_retries=kw["lock_retries"], lock_wait=kw["lock_wait"],
        on_event=None if quiet else (lambda msg: click.echo(msg, err=True)),
    )


def _run(kw: dict[str, Any], action: Callable[[Any], Any]) -> Any:
    """Run `action(migrator)`; a migration or database error is printed and exits 1."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    from tminus.errors import TminusError

    with _migrator(kw, quiet=kw["as_json"]) as m:
        try:
            return action(m)
        except TminusError as exc:
            if kw["as_json"]:
                emit_json({"ok": False, "error": str(exc), "type": type(exc).__name__})
            fail(str(exc))
        except (SQLAlchemyError, ArgumentError, NoSuchModuleError) as exc:
            fail(f"database error: {getattr(exc, 'orig', None) or exc}", hint="check --url and that the database is up")


def _print_outcome(out: Any, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": True, **out.to_dict()})
        return
    verb, past = {"migrate": ("apply", "applied"), "revert": ("revert", "reverted"),
                  "stamp": ("stamp", "stamped (not run)")}[out.action]
    if not out.done:
        click.echo(f"nothing to {verb}; at version {out.before or '(none)'}")
        return
    for d in out.done:
        took = "" if d.duration_ms is None else f" {d.duration_ms:.0f} ms"
        resumed = f" (resuming after statement {d.resumed_from})" if d.resumed_from else ""
        proof = f"; schema {d.proof}" if d.proof else ""
        click.echo(f"{'would ' + verb if out.dry_run else past} {d.version} {Path(d.file).name}"
                   f" ({d.statements} statements){took}{resumed}{proof}")
    click.echo(f"{out.before or '(none)'} -> {out.after or '(none)'}{' (dry run: nothing changed)' * out.dry_run}")


def register(group: click.Group) -> None:
    @group.command("status")
    @_common
    def status(**kw: Any) -> None:
        """Show applied migrations (with checksum state), pending ones, half-applied ones and drift.
        Exits 1 when there is drift, a half-applied migration or an INVALID index."""
        st = _run(kw, lambda m: m.status())
        if kw["as_json"]:
            emit_json(st.to_dict())
        else:
            if st.adopted:
                mapping = ", ".join(f"{k}={v}" for k, v in st.adopted["columns"].items())
                click.echo(f"tracking table: {st.adopted['table']} (adopted: {mapping}; tminus's side table"
                           f" {st.adopted['side']})")
            click.echo(f"current version: {st.current or '(none)'}")
            for a in st.applied:
                by = f" by {a.operator}@{a.host}" if a.operator else ""
                took = f"  {a.duration_ms:.0f} ms" if a.duration_ms is not None else ""
                click.echo(f"  applied  {a.version} {a.name}  {a.applied_at or '-'}{by}{took}  [{a.state}]")
            for h in st.half_applied:
                click.echo(f"  HALF     {h.version} {h.name}  {h.done} of {h.total} statements done")
            for p in st.pending:
                click.echo(f"  pending  {p['version']} {p['name']}")
            for problem in st.problems:
                click.echo(f"problem: {problem}", err=True)
        if not st.ok:
            raise SystemExit(1)

    @group.command("migrate")
    @_common
    @click.option("--to", default=None, metavar="VERSION", help="Stop after this version (default: the latest).")
    @click.option("--dry-run", is_flag=True, help="Show what would be applied; change nothing.")
    def migrate(to: str | None, dry_run: bool, **kw: Any) -> None:
        """Apply pending migrations in version order, each with its verify script. Exits 1 on drift,
        a failed migration or verify, or when another migrator holds the lock too long."""
        _print_outcome(_run(kw, lambda m: m.migrate(to, dry_run=dry_run)), kw["as_json"])

    @group.command("revert")
    @_common
    @click.option("--to", required=True, metavar="VERSION", help="Revert every version above this (0: all).")
    @click.option("--dry-run", is_flag=True, help="Show what would be reverted; change nothing.")
    def revert(to: str, dry_run: bool, **kw: Any) -> None:
        """Run down files newest first for versions above --to, then check each migration's verify
        script now fails (its objects are gone) and the schema is back as recorded before the version
        was applied: anything left (an index, a column change, a sequence set back) fails the revert."""
        _print_outcome(_run(kw, lambda m: m.revert(to, dry_run=dry_run)), kw["as_json"])

    @group.command("stamp")
    @_common
    @click.option("--to", required=True, metavar="VERSION", help="Record every pending version up to this one.")
    @click.option("--dry-run", is_flag=True, help="Show what would be recorded; change nothing.")
    def stamp(to: str, dry_run: bool, **kw: Any) -> None:
        """Record pending versions up to --to as applied WITHOUT running them (Flyway's baseline,
        Alembic's stamp), for a schema that already has them: e.g. to move from an adopted table
        (--column) to a table of tminus's own. Checksums are the files' as they are now: verify first."""
        _print_outcome(_run(kw, lambda m: m.stamp(to, dry_run=dry_run)), kw["as_json"])

    @group.command("verify")
    @_common
    def verify(**kw: Any) -> None:
        """Check applied files are unchanged (checksums), nothing is half-applied, and every applied
        migration's verify script passes."""
        st = _run(kw, lambda m: m.verify())
        if kw["as_json"]:
            emit_json(st.to_dict())
        else:
            click.echo(f"ok: {len(st.applied)} applied migration(s) verified; current version {st.current or '(none)'}")
