"""The root group loads a command's module only when that command is used (cli/lazy.py), and says
the same in `tminus --help` as if every command were loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest

from tminus.cli.app import LAZY_COMMANDS, cli
from tminus.cli.lazy import Lazy, LazyGroup


def _fresh() -> LazyGroup:
    """A group with the app's lazy table and nothing loaded yet (the app's `cli` is shared by tests)."""
    return LazyGroup("tminus", lazy=LAZY_COMMANDS)


def _listing(group: click.Group, width: int, *, loaded: bool) -> str:
    formatter = click.HelpFormatter(width=width)
    ctx = click.Context(group)
    if loaded:  # click's own listing: it asks the group for every command, which loads them all
        click.Group.format_commands(group, ctx, formatter)
    else:
        group.format_commands(ctx, formatter)
    return formatter.getvalue()


@pytest.mark.parametrize("width", [40, 60, 80, 100, 140])
def test_the_listing_from_the_table_is_the_listing_of_the_loaded_commands(width: int) -> None:
    group = _fresh()
    from_table = _listing(group, width, loaded=False)
    assert not group.commands, "listing the commands loaded one"
    assert from_table == _listing(group, width, loaded=True)
    assert set(group.commands) >= set(LAZY_COMMANDS)


def test_every_lazy_command_is_registered_by_its_module_and_none_is_also_eager() -> None:
    for name, entry in LAZY_COMMANDS.items():
        group = LazyGroup("tminus", lazy={name: entry})
        command = group.get_command(click.Context(group), name)
        assert command is not None and command.name == name, f"{entry.module} does not register `{name}`"
        assert not command.hidden
    eager = set(cli.commands) - set(LAZY_COMMANDS)
    assert {"validate", "plan", "run", "gate"} <= eager
    for name in eager:
        assert cli.commands[name].callback is not None
        assert cli.commands[name].callback.__module__ == "tminus.cli.app", f"`{name}` is eager but not in app.py"


def test_an_unknown_command_is_none_and_a_module_that_does_not_register_it_is_an_error() -> None:
    group = LazyGroup("tminus", lazy={"nothing": Lazy("tminus.cli.config", "Says nothing.")})
    ctx = click.Context(group)
    assert group.get_command(ctx, "no-such-command") is None
    with pytest.raises(RuntimeError, match="did not add the command 'nothing'"):
        group.get_command(ctx, "nothing")


def test_help_lists_every_command_and_imports_none_of_the_lazy_modules() -> None:
    code = ("import json, sys\nfrom tminus.cli import main\nsys.argv = ['tminus', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('LOADED', json.dumps(sorted(m for m in sys.modules if m.startswith('tminus.cli.'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "100"})
    assert proc.returncode == 0, proc.stderr
    help_text, loaded_line = proc.stdout.rsplit("LOADED", 1)
    loaded = set(json.loads(loaded_line))
    assert not loaded & {entry.module for entry in LAZY_COMMANDS.values()}
    listed = {line.split()[0] for line in help_text.split("Commands:")[1].splitlines()
              if line.startswith("  ") and not line.startswith("   ")}
    assert listed >= set(LAZY_COMMANDS) | {"validate", "plan", "run", "gate"}
