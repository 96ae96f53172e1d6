"""`vars_file:`: variables kept in a YAML or JSON file beside the runbook, and how a value written
as text is read as its variable's type (shared with `--var` and `--var-file`, cli/variables.py).

Precedence, lowest first: the runbook's `vars_file`, its `vars:`, the environment's `vars_file`,
the environment's `vars:`, `--var-file`, `--var`. The runbook's file declares names as `vars:` does
(values keep their YAML types); an environment's file only sets names the runbook or that
environment declares, each read as the declared default's type, like `--var`, so a typo cannot
silently leave the default in place. Paths are confined like every path a runbook names
(runbook/roots.py), read with the guarded YAML loader (runbook/yamlguard.py), and every problem is
positioned: in the vars file (file:line:column) for what is in it, at `vars_file:` for the file itself.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tminus.errors import Location, Problem, RunbookError
from tminus.runbook.document import PathKey, SourceMap, path_to_str
from tminus.runbook.models import Runbook
from tminus.runbook.roots import HINT, OutsideRoots, confine
from tminus.runbook.yamltext import MAX_BYTES
from tminus.templating.templater import has_template

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class VarProblem(ValueError):
    """A value its variable cannot take (or a variables file that cannot be used)."""


def apply_vars_files(runbook: Runbook, source: SourceMap, closest: Any,
                     read: list[tuple[str, str]] | None = None) -> list[Problem]:
    """Merge every `vars_file` into the model's `vars` (under what is written inline); the problems.
    Each file's (path, text) is appended to `read`: the document's identity includes them."""
    problems: list[Problem] = []
    base = Path(source.file)
    texts: list[tuple[str, str]] = [] if read is None else read
    if runbook.vars_file is not None:
        entries = _entries(runbook.vars_file, ("vars_file",), runbook, source, base, problems, texts)
        runbook.vars = {**{name: typed for name, (typed, _, _) in entries.items()}, **runbook.vars}
    for env_name, env in runbook.environments.items():
        if env.vars_file is None:
            continue
        at: PathKey = ("environments", env_name, "vars_file")
        entries = _entries(env.vars_file, at, runbook, source, base, problems, texts)
        declared = {**runbook.vars, **env.vars}
        values: dict[str, Any] = {}
        for name, (typed, written, where) in entries.items():
            if name not in declared:
                match = closest(name, sorted(declared))
                hint = match or (f"declared: {', '.join(sorted(declared))}" if declared else
                                 "declare it under the runbook's vars: with its default")
                problems.append(Problem(f"the runbook declares no variable '{name}' (environment '{env_name}')",
                                        where, hint))
                continue
            try:
                values[name] = coerce(typed if isinstance(typed, list | dict) else written, declared[name])
            except VarProblem as exc:
                problems.append(Problem(f"variable '{name}' {exc}", where, "write a value of the declared type"))
        env.vars = {**values, **env.vars}
    return problems


def _entries(path: str, at: PathKey, runbook: Runbook, source: SourceMap, base: Path,
             problems: list[Problem], texts: list[tuple[str, str]]) -> dict[str, tuple[Any, Any, Location]]:
    """name -> (typed value, value as written, where it is) of one vars file; {} after a problem."""
    where = source.locate(at)

    def refuse(message: str, hint: str) -> dict[str, tuple[Any, Any, Location]]:
        problems.append(Problem(message, where, hint, path_to_str(at)))
        return {}

    if has_template(path):
        return refuse(f"a vars file is a path written out, not a template: {path!r}",
                      "vars files are read before the run, when templates have nothing to render with")
    try:
        real = confine(path, base.resolve().parent, runbook.roots, what="the vars file")
    except OutsideRoots as exc:
        return refuse(exc.reason, HINT)
    shown = str(base.parent / path)
    try:
        with real.open("rb") as f:  # never more than the limit: the path may be /dev/zero
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        return refuse(f"cannot read the vars file {shown}: {exc.strerror or exc}",
                      "give the path of a YAML or JSON file, relative to the runbook's folder")
    if len(raw) > MAX_BYTES:
        return refuse(f"the vars file {shown} is over {MAX_BYTES:,} bytes", "a vars file holds a few names")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return refuse(f"the vars file {shown} is not UTF-8 text (byte {exc.start})", "save it as UTF-8")
    texts.append((path, text))
    # ruamel (runbook/yamlguard.py) reads vars files: few runbooks have one, and the values as written
    # need its base loader; imported here so a runbook without one never pays for it.
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from tminus.runbook.yamlguard import load as guarded_load
    from tminus.runbook.yamlguard import yaml_problem

    try:
        tree = guarded_load(YAML(typ="rt"), text, shown)  # limits, tags, aliases: refused with positions
        written = YAML(typ="base", pure=True).load(text)  # the scalars as written (`1.10` stays "1.10")
    except RunbookError as exc:
        problems.extend(exc.problems)
        return {}
    except MarkedYAMLError as exc:
        problems.append(yaml_problem(exc, shown))
        return {}
    except YAMLError as exc:
        return refuse(f"the vars file {shown} is not YAML or JSON: {exc}", "fix the file's syntax")
    if tree is None:
        return {}
    if not isinstance(tree, CommentedMap) or not isinstance(written, Mapping):
        problems.append(Problem(f"expected a mapping of variable names to values in {shown}",
                                Location(shown, 1, 1), "e.g.\n      release: 2.4.0\n      replicas: 3"))
        return {}
    out: dict[str, tuple[Any, Any, Location]] = {}
    for (key, value), as_written in zip(tree.items(), written.values(), strict=True):
        line, column = tree.lc.key(key)
        out[str(key)] = (_typed(value), as_written, Location(shown, line + 1, column + 1))
    return out


def _typed(value: Any) -> Any:
    """A ruamel round-trip value as plain Python (timestamps kept as the text written)."""
    if isinstance(value, Mapping):
        return {str(k): _typed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_typed(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return value


# --- a value as its variable's type (also `--var` and `--var-file`) ---------------------------


def coerce(value: Any, default: Any) -> Any:
    """`value` as written (text, or a list/mapping from a file), read as the type of `default`."""
    if isinstance(value, list | dict):
        if default is None or isinstance(default, type(value)):
            return value
        raise VarProblem(f"expects {type_name(default)}, got a {'list' if isinstance(value, list) else 'mapping'}")
    text = str(value)
    if isinstance(default, bool):
        word = text.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise VarProblem(f"expects true or false (the default is {str(default).lower()}), got {text!r}")
    if isinstance(default, int):
        try:
            return int(text.strip())
        except ValueError:
            raise VarProblem(f"expects a whole number (the default is {default}), got {text!r}") from None
    if isinstance(default, float):
        try:
            number = float(text.strip())
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise VarProblem(f"expects a number (the default is {default}), got {text!r}")
        return number
    if isinstance(default, list | dict):
        parsed = parse_structure(text)
        if not isinstance(parsed, type(default)):
            example = '\'["a", "b"]\'' if isinstance(default, list) else '\'{"key": "value"}\''
            raise VarProblem(f"expects {type_name(default)} in JSON or YAML flow style, e.g. {example}; got {text!r}")
        return parsed
    return text


def type_name(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int | float):
        return "a number"
    if isinstance(default, list):
        return "a list"
    if isinstance(default, dict):
        return "a mapping"
    return "text"


def parse_structure(text: str) -> Any:
    from ruamel.yaml import YAML  # lazily: only `--var` of a list or mapping reads it
    from ruamel.yaml.error import YAMLError

    try:
        return plain(YAML(typ="safe", pure=True).load(text))
    except YAMLError:
        return None


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


__all__ = ["VarProblem", "apply_vars_files", "coerce", "parse_structure", "plain", "type_name"]
