"""`tminus db backup | restore | fingerprint`."""

from __future__ import annotations

import click

from tminus.cli.common import emit_json, fail, json_option


def register(group: click.Group) -> None:
    group.add_command(backup_cmd)
    group.add_command(restore_cmd)
    group.add_command(fingerprint_cmd)


@click.command("backup")
@click.option("--url", required=True, help="Database URL (postgresql+psycopg://... or sqlite:///...).")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False), help="Where backups go.")
@click.option("--keep", type=click.IntRange(min=1), help="Keep this many backups (never the newest verified).")
@click.option("--drill", is_flag=True, help="Restore into a scratch database and compare fingerprints.")
@click.option("--label", default=None, help="Name part of the file (default: $TMINUS_ENVIRONMENT or 'default').")
@json_option
def backup_cmd(url: str, directory: str, keep: int | None, drill: bool, label: str | None, as_json: bool) -> None:
    """Back up a database, checksum it and check it is readable (optionally drill a restore)."""
    import os

    from tminus.db.backup import backup
    from tminus.errors import TminusError

    label = label or os.environ.get("TMINUS_ENVIRONMENT") or "default"
    try:
        result = backup(url, directory, label=label, keep=keep, drill=drill)
    except TminusError as exc:
        fail(f"backup failed: {exc}")
    if as_json:
        emit_json(result.as_dict())
        return
    click.echo(f"{result.path}  {result.bytes} bytes  sha256 {result.sha256[:16]}...  verified")
    timings = f"dump {result.dump_seconds:.2f}s, verify {result.verify_seconds:.2f}s"
    if result.drill_seconds is not None:
        timings += f", drill restore {result.drill_seconds:.2f}s"
    click.echo(timings)
    for path in result.rotated:
        click.echo(f"rotated out {path}")


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--url", required=True, help="The database to replace.")
@click.option("--sha256", default=None, help="Expected checksum (default: FILE.sha256).")
@json_option
def restore_cmd(file: str, url: str, sha256: str | None, as_json: bool) -> None:
    """Replace a database with a backup, after checking its checksum; all or nothing."""
    from tminus.db.pgtools import mask_url
    from tminus.db.restore import restore
    from tminus.errors import TminusError

    try:
        result = restore(url, file, sha256=sha256)
    except TminusError as exc:
        fail(f"restore refused or failed: {exc}")
    if as_json:
        emit_json(result.as_dict())
        return
    click.echo(f"restored {file} into {mask_url(url)} in {result.seconds:.2f}s")
    if result.old_kept:
        click.echo(f"warning: the previous database was kept as {result.old_kept}; drop it when done", err=True)


@click.command("fingerprint")
@click.option("--url", required=True, help="Database URL.")
@click.option("--tables", default=None, help="Comma-separated tables (default: all user tables).")
@json_option
def fingerprint_cmd(url: str, tables: str | None, as_json: bool) -> None:
    """Row counts and order-independent content checksums per table."""
    from tminus.db.fingerprint import fingerprint
    from tminus.errors import TminusError

    wanted = [t.strip() for t in tables.split(",") if t.strip()] if tables else None
    try:
        fp = fingerprint(url, wanted)
    except TminusError as exc:
        fail(f"fingerprint failed: {exc}")
    if as_json:
        emit_json(fp)
        return
    if not fp:
        click.echo("no tables")
    width = max((len(t) for t in fp), default=0)
    for table, info in fp.items():
        click.echo(f"{table:<{width}}  {info['rows']:>10} rows  {info['checksum']}")
