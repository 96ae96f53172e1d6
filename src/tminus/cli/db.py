"""`tminus db ...`: database commands (migrations, lint, backups, restore, fingerprints).

Each area registers its commands from its own module so they stay small and independent.
"""

from __future__ import annotations

import importlib

import click

# modules defining `register(group: click.Group) -> None`; missing ones are skipped while in progress
_AREAS = ("tminus.cli.db_migrate", "tminus.cli.db_backup", "tminus.cli.db_lint")


@click.group()
def db() -> None:
    """Database commands: migrate, revert, verify, lint, backup, restore, fingerprint."""


def register(cli: click.Group) -> None:
    for name in _AREAS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(db)
    cli.add_command(db)
