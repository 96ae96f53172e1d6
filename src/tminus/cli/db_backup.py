"""`tminus db backup | restore | fingerprint`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from tminus.cli.common import emit_json, fail, json_option
from tminus.engine.exitcodes import Exit


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
@click.option("--url", default=None, help="Database URL (required unless --to gives the later fingerprint).")
@click.option("--tables", default=None, help="Comma-separated tables (default: all user tables).")
@click.option("--include-tminus", is_flag=True, help="Include tminus's own tables (migration tracking, ledger).")
@click.option("--compare", "compare_file", type=click.Path(dir_okay=False), default=None,
              help="A saved `--json` fingerprint: print each difference from it; exit 1 when any.")
@click.option("--to", "to_file", type=click.Path(dir_okay=False), default=None,
              help="With --compare: the later fingerprint, a saved file instead of the database at --url.")
@json_option
def fingerprint_cmd(url: str | None, tables: str | None, include_tminus: bool, compare_file: str | None,
                    to_file: str | None, as_json: bool) -> None:
    """Schema objects by kind, and per table row counts and order-independent content checksums."""
    from tminus.db.fingerprint import differences, fingerprint
    from tminus.errors import TminusError

    if (url is None) == (to_file is None) or (to_file and not compare_file):
        fail("give --url URL (the database), or --compare BEFORE --to AFTER (two saved fingerprints)", Exit.USAGE)
    before = _load_fingerprint(compare_file) if compare_file else None
    if to_file:
        fp = _load_fingerprint(to_file)
    else:
        wanted = [t.strip() for t in tables.split(",") if t.strip()] if tables else None
        try:
            fp = fingerprint(url or "", wanted, include_tminus=include_tminus)
        except TminusError as exc:
            fail(f"fingerprint failed: {exc}")
    if before is not None:
        diffs = differences(before, fp)
        if as_json:
            emit_json({"equal": not diffs, "differences": [d.as_dict() for d in diffs]})
        else:
            click.echo("\n".join(str(d) for d in diffs) if diffs else "no differences")
        if diffs:
            sys.exit(int(Exit.FAILED))
        return
    if as_json:
        emit_json(fp)
        return
    _print_fingerprint(fp)


def _load_fingerprint(path: str) -> dict[str, Any]:
    import json

    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"cannot read the fingerprint {path}: {exc}", hint="save one with `tminus db fingerprint --json`")
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        fail(f"{path} is not a fingerprint (a JSON object of tables, as `tminus db fingerprint --json` writes)")
    return value


def _print_fingerprint(fp: dict[str, Any]) -> None:
    from tminus.db.fingerprint import SCHEMA_KEY, digests, tables_of

    tables = tables_of(fp)
    if not tables:
        click.echo("no tables")
    width = max([len(t) for t in tables] + [len(k) + 2 for k in fp.get(SCHEMA_KEY, {})], default=0)
    for table, info in tables.items():
        click.echo(f"{table:<{width}}  {info['rows']:>10} rows  {info['checksum']}")
    kinds = fp.get(SCHEMA_KEY, {})
    sums = digests(fp)
    for kind in sorted(kinds):
        click.echo(f"{'[' + kind + ']':<{width}}  {len(kinds[kind]):>10} objs  {sums[kind]}")
