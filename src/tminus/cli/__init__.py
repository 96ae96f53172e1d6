"""The `tminus` command line. Start-up stays light: commands import what they need when run."""

from __future__ import annotations

import sys


def main() -> None:
    # `--version` must answer fast (< 150 ms): answer it before Click and the rest load.
    if sys.argv[1:] in (["--version"], ["-V"]):
        from tminus import __version__

        print(f"tminus {__version__}")
        return
    from tminus.cli.app import cli

    cli(prog_name="tminus")
