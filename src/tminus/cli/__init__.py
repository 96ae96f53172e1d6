"""The `tminus` command line. Start-up stays light: commands import what they need when run."""

from __future__ import annotations

import sys
import types


def main() -> None:
    # `--version` must answer fast (< 150 ms): answer it before Click and the rest load.
    if sys.argv[1:] in (["--version"], ["-V"]):
        from tminus import __version__

        print(f"tminus {__version__}")
        return
    skip_pydantic_plugins()
    from tminus.cli.app import cli

    cli(prog_name="tminus")


PYDANTIC_PLUGIN_LOADER = "pydantic.plugin._loader"


def skip_pydantic_plugins() -> None:
    """Answer pydantic's plugin lookup with none, as PYDANTIC_DISABLE_PLUGINS=1 would.

    Building its first model, pydantic looks for plugins: it imports importlib.metadata (and with it
    email, socket, zipfile, csv, tempfile) and reads the entry points of every installed distribution,
    a tenth of an empty run's import time. tminus's models are its own and no plugin observes them.
    Only the command line does this, without setting the variable (a run's steps inherit the
    environment), and only if pydantic has not looked yet; tminus imported as a library leaves
    pydantic as it is."""
    if PYDANTIC_PLUGIN_LOADER in sys.modules:
        return
    loader = types.ModuleType(PYDANTIC_PLUGIN_LOADER, "tminus: no pydantic plugins (tminus.cli.skip_pydantic_plugins)")
    loader.get_plugins = lambda: ()  # type: ignore[attr-defined]  # what pydantic's _schema_validator calls
    sys.modules[PYDANTIC_PLUGIN_LOADER] = loader
