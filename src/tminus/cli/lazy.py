"""A Click group that imports a command's module only when that command is asked for.

`tminus run` then never loads what `tminus rehearse`, `report` or `db` import at their top. The
group lists every command (`--help`, shell completion) by name; `--help` shows the short help of a
command not loaded yet from the table it was declared with, so listing loads none of them
(tests/unit/test_cli_lazy.py holds the table to the commands' own help).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import click


class Lazy(NamedTuple):
    """Where a command comes from: `module` has `register(group)`, which adds it (and perhaps its
    siblings) to the group; `summary` is the first sentence of its help, as `--help` lists it."""

    module: str
    summary: str


class LazyGroup(click.Group):
    """A `click.Group` whose `lazy` commands are imported on first use (`get_command`)."""

    def __init__(self, *args: Any, lazy: Mapping[str, Lazy] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, Lazy] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.load(cmd_name)
        return self.commands.get(cmd_name)

    def load(self, name: str) -> click.Command:
        """Import `name`'s module and let it register its commands here."""
        entry = self.lazy[name]
        importlib.import_module(entry.module).register(self)
        if name not in self.commands:
            raise RuntimeError(f"{entry.module}.register() did not add the command {name!r}")
        return self.commands[name]

    def load_all(self) -> dict[str, click.Command]:
        """Every command, loaded (for the docs and the tests that walk the whole tree)."""
        for name in self.lazy:
            if name not in self.commands:
                self.load(name)
        return dict(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but a command not loaded yet is listed from its summary, without importing it."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name) or click.Command(name, help=self.lazy[name].summary)
            if not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])
