"""`--var KEY=VALUE` and `--var-file FILE`: which names a run may override, and as what type.

A name must be declared in the runbook's `vars:` or the chosen environment's `vars:` (a typo like
`relase` must not silently deploy the default). A value is text exactly as written (`1.10` stays
"1.10", `true` stays "true"), unless the declared default is a number, a boolean, a list or a
mapping: then the text is read as that type, or refused with the reason. `--var` wins over the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tminus.runbook.document import RunbookDocument
from tminus.runbook.validate import closest
from tminus.runbook.varsfile import VarProblem, coerce
from tminus.runbook.varsfile import plain as _plain


def declared_vars(doc: RunbookDocument, environment: str) -> dict[str, Any]:
    """Every name `--var` may set, with its default (the environment's over the runbook's)."""
    merged = dict(doc.runbook.vars)
    env = doc.runbook.environments.get(environment)
    if env is not None:
        merged.update(env.vars)
    return merged


def resolve_overrides(
    doc: RunbookDocument, environment: str, items: tuple[str, ...], var_file: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The overrides a run starts with, and the problems (each a sentence) that refuse it."""
    declared = declared_vars(doc, environment)
    problems: list[str] = []
    out: dict[str, Any] = {}
    raw: list[tuple[str, str, Any]] = []  # (where, name, value as written)
    if var_file is not None:
        try:
            raw += [(f"--var-file {var_file}: {name}", name, v) for name, v in _read_file(var_file).items()]
        except VarProblem as exc:
            problems.append(f"--var-file {var_file}: {exc}")
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            problems.append(f"--var {item!r} is not KEY=VALUE")
            continue
        raw.append((f"--var {name.strip()}", name.strip(), text))
    for where, name, value in raw:
        if name not in declared:
            problems.append(f"{where}: the runbook declares no variable '{name}'{_hint(doc, environment, name)}")
            continue
        try:
            out[name] = coerce(value, declared[name])
        except VarProblem as exc:
            problems.append(f"{where}: {exc}")
    return out, problems


def _read_file(path: str) -> dict[str, Any]:
    """The file's mapping: scalars as written (text), lists and mappings with their YAML types."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise VarProblem(f"cannot read it: {exc}") from None
    if len(text) > 1_000_000:
        raise VarProblem("it is over 1 MB; a variables file holds a few names")
    try:
        as_written = YAML(typ="base", pure=True).load(text)
        typed = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise VarProblem(f"not YAML or JSON: {str(exc).splitlines()[0]}") from None
    if as_written is None:
        return {}
    if not isinstance(as_written, Mapping) or not isinstance(typed, Mapping):
        raise VarProblem("expects a mapping of variable names to values, e.g. release: 2.4.0")
    return {str(k): (_plain(typed[k2]) if isinstance(v, list | dict) else v)
            for (k, v), k2 in zip(as_written.items(), typed.keys(), strict=True)}


def _hint(doc: RunbookDocument, environment: str, name: str) -> str:
    elsewhere = [e for e, spec in doc.runbook.environments.items() if e != environment and name in spec.vars]
    if elsewhere:
        return f" in environment '{environment}' (only environment {', '.join(elsewhere)} declares it)"
    known = sorted(declared_vars(doc, environment))
    match = closest(name, known)
    if match:
        return f"; {match}"
    return f" (declared: {', '.join(known)})" if known else " (it declares none under vars:)"
