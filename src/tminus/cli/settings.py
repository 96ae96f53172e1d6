"""Where the ledger is and who runs: `tminus.toml`, found upward from the working directory, and the
precedence of every setting (CLI flag > environment variable > tminus.toml > built-in default).

Pure functions of (flags, environment, working directory) so they are tested without a command; the
commands reach them through cli/common.py.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from tminus.errors import TminusError

CONFIG_NAME = "tminus.toml"
LEDGER_DIR = ".tminus"
LEDGER_FILE = "ledger.db"
DEFAULT_URL = f"sqlite:///{LEDGER_DIR}/{LEDGER_FILE}"  # relative: the working directory, for a first write


class ConfigError(TminusError):
    """tminus.toml is not valid TOML or not valid settings (exit 78, with file:line)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message)


class ConfigFile(BaseModel):
    """The keys of tminus.toml. Unknown keys are an error: a typo must not silently use a default."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ledger: str | None = None  # a ledger URL; a relative SQLite path is relative to this file's folder
    environment: str | None = None  # the default for -e/--env
    operator: str | None = None  # the default for --operator


@dataclass(frozen=True)
class Setting:
    value: str | None
    source: str  # "flag --ledger", "env TMINUS_LEDGER", "/p/tminus.toml:3 ledger", "found upward", "default"


@dataclass(frozen=True)
class Settings:
    config_path: Path | None
    config_source: str  # how the file was found: flag --config, env TMINUS_CONFIG, found upward, none
    ledger: Setting
    environment: Setting
    operator: Setting
    lines: dict[str, int] = field(default_factory=dict)  # key -> line in the file

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": {"path": str(self.config_path) if self.config_path else None, "source": self.config_source},
            **{name: {"value": s.value, "source": s.source}
               for name, s in (("ledger", self.ledger), ("environment", self.environment),
                               ("operator", self.operator))},
        }


def find_upward(start: Path, relative: str) -> Path | None:
    """The nearest `start/relative`, `start/../relative`, ... up to the filesystem root (like git
    finds .git), or None."""
    here = start.resolve()
    for folder in (here, *here.parents):
        candidate = folder / relative
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path) -> tuple[ConfigFile, dict[str, int]]:
    """Parse and validate one tminus.toml; returns the settings and the line of each top-level key."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    import tomllib  # here: without a tminus.toml no command loads it

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_in_message(str(exc))
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"{where}: not valid TOML: {exc}",
                          hint="see docs/cli.md#tminustoml for the keys and an example") from exc
    lines = _key_lines(text)
    try:
        return ConfigFile.model_validate(data), lines
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            line = lines.get(str(error["loc"][0])) if error["loc"] else None
            where = f"{path}:{line}" if line else str(path)
            if error["type"] == "extra_forbidden":
                problems.append(f"{where}: unknown key '{key}'")
            else:
                problems.append(f"{where}: '{key}': {error['msg']} (got {error.get('input')!r})")
        raise ConfigError("; ".join(problems),
                          hint=f"tminus.toml takes: {', '.join(ConfigFile.model_fields)} (strings); "
                               "see docs/cli.md#tminustoml") from exc


def _line_in_message(message: str) -> int | None:
    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else None


def _key_lines(text: str) -> dict[str, int]:
    """The line of each top-level key (before any [table]); tables by their header's line."""
    lines: dict[str, int] = {}
    in_table = False
    for number, line in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*\[+\s*([A-Za-z0-9_.\"-]+)", line)
        if header:
            in_table = True
            lines.setdefault(header.group(1).split(".")[0].strip('"'), number)
            continue
        key = re.match(r"\s*\"?([A-Za-z0-9_-]+)\"?\s*[.=]", line)
        if key and not in_table:
            lines.setdefault(key.group(1), number)
    return lines


def resolve_relative_sqlite(url: str, base: Path) -> str:
    """A relative SQLite path in tminus.toml means beside the file, not the working directory; a
    plain path (no scheme) is a SQLite file."""
    if "://" not in url:
        url = f"sqlite:///{url}"
    prefix = re.match(r"sqlite(\+\w+)?:///", url)
    if not prefix:
        return url
    rest = url[prefix.end():]
    path, sep, query = rest.partition("?")
    if not path or path.startswith("/") or path == ":memory:" or path.startswith("file:"):
        return url
    return f"{prefix.group(0)}{(base / path).resolve()}{sep}{query}"


def resolve(
    *, cwd: Path, environ: dict[str, str] | os._Environ[str],
    config_flag: str | None = None, config_from_env: bool = False,
    ledger: str | None = None, ledger_from_env: bool = False,
    environment: str | None = None,
    operator: str | None = None, operator_from_env: bool = False,
) -> Settings:
    """Every setting with where it came from. `ledger`/`operator`/`config_flag` are what Click
    passed (from the flag or, when `*_from_env`, from the environment variable)."""
    config_path: Path | None
    named = config_flag or environ.get("TMINUS_CONFIG")
    if named:
        config_path = Path(named).resolve()
        config_source = "flag --config" if config_flag and not config_from_env else "env TMINUS_CONFIG"
        if not config_path.is_file():
            raise ConfigError(f"{config_path}: no such file ({config_source})")
    else:
        config_path = find_upward(cwd, CONFIG_NAME)
        config_source = f"found upward from {cwd}" if config_path else "none"
    config, lines = load_config(config_path) if config_path else (ConfigFile(), {})

    def from_file(key: str) -> str:
        return f"{config_path}:{lines.get(key, 1)} {key}"

    if ledger:
        ledger_setting = Setting(ledger, "env TMINUS_LEDGER" if ledger_from_env else "flag --ledger")
    elif environ.get("TMINUS_LEDGER"):
        ledger_setting = Setting(environ["TMINUS_LEDGER"], "env TMINUS_LEDGER")
    elif config.ledger and config_path:
        ledger_setting = Setting(resolve_relative_sqlite(config.ledger, config_path.parent), from_file("ledger"))
    else:
        found = find_upward(cwd, f"{LEDGER_DIR}/{LEDGER_FILE}")
        ledger_setting = (Setting(f"sqlite:///{found}", "found upward (nearest .tminus/ledger.db)") if found
                          else Setting(DEFAULT_URL, "default (.tminus/ledger.db in the working directory)"))

    if environment:
        env_setting = Setting(environment, "flag --env")
    elif config.environment:
        env_setting = Setting(config.environment, from_file("environment"))
    else:
        env_setting = Setting(None, "default (the runbook's only environment)")

    if operator:
        op_setting = Setting(operator, "env TMINUS_OPERATOR" if operator_from_env else "flag --operator")
    elif environ.get("TMINUS_OPERATOR"):
        op_setting = Setting(environ["TMINUS_OPERATOR"], "env TMINUS_OPERATOR")
    elif config.operator:
        op_setting = Setting(config.operator, from_file("operator"))
    else:
        from tminus.processes import default_operator

        op_setting = Setting(default_operator(), "default (the login name)")
    return Settings(config_path, config_source, ledger_setting, env_setting, op_setting, lines)


__all__ = ["CONFIG_NAME", "DEFAULT_URL", "ConfigError", "ConfigFile", "Setting", "Settings", "find_upward",
           "load_config", "resolve", "resolve_relative_sqlite"]
