"""Load a runbook file: YAML with positions, the pydantic model, then semantic checks.

Every problem is collected and raised at once as a RunbookError, each with file:line:column,
the path inside the document and a hint.
"""

from __future__ import annotations

import re
import types
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from tminus.errors import Location, Problem, RunbookError
from tminus.runbook.document import PathKey, RunbookDocument, SourceMap, assign_keys, path_to_str
from tminus.runbook.models import KIND_FIELDS, Identifier, Runbook, Step
from tminus.runbook.schema import accepts_shorthand
from tminus.runbook.types import HintedValueError
from tminus.runbook.validate import closest, semantic_problems
from tminus.runbook.varsfile import apply_vars_files
from tminus.runbook.yamlread import read as read_yaml
from tminus.runbook.yamltext import MAX_BYTES, too_large

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_IDENTIFIER = next(getattr(m, "pattern", None) for m in get_args(Identifier)[1].metadata)


def load_runbook(path: str | Path, text: str | None = None) -> RunbookDocument:
    """Load and validate a runbook. Raises RunbookError carrying every problem found."""
    path = Path(path)
    file = str(path)
    if text is None:
        text = _read(path)
    source = SourceMap(file)
    data, problems = _parse(text, source)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else _describe(data)
        problems.append(Problem(
            f"expected a mapping at the top level, got {got}", Location(file, 1, 1),
            "a runbook starts with keys such as:\n      name: my-release\n      phases: [...]",
        ))
        raise RunbookError(problems)
    try:
        runbook = Runbook.model_validate(data)
    except ValidationError as exc:
        problems += _model_problems(exc.errors(include_url=False), data, source)
        raise RunbookError(_sorted(problems)) from None
    vars_files: list[tuple[str, str]] = []
    problems += apply_vars_files(runbook, source, closest, vars_files)
    if problems:
        raise RunbookError(_sorted(problems))
    assign_keys(runbook)
    problems = semantic_problems(runbook, source)
    if problems:
        raise RunbookError(_sorted(problems))
    return RunbookDocument(runbook=runbook, path=path, text=text, source=source, vars_files=tuple(vars_files))


def _sorted(problems: list[Problem]) -> list[Problem]:
    def key(p: Problem) -> tuple[int, int]:
        loc = p.location
        return (loc.line or 0, loc.column or 0) if loc else (0, 0)

    return sorted(problems, key=key)


def _read(path: Path) -> str:
    file = str(path)
    try:
        with path.open("rb") as f:  # never more than the limit: the file may be /dev/zero
            raw = f.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise RunbookError([too_large(max(path.stat().st_size, len(raw)), file)])
    except FileNotFoundError:
        raise RunbookError([Problem(f"runbook file not found: {file}", Location(file),
                                    "check the path, e.g. tminus plan runbooks/release.yaml")]) from None
    except OSError as exc:
        raise RunbookError([Problem(f"cannot read the runbook: {exc.strerror or exc}", Location(file),
                                    "give the path of a readable YAML file")]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RunbookError([Problem(
            f"the runbook is not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot be decoded",
            Location(file, line, column), "save the file as UTF-8",
        )]) from None


# --- YAML --------------------------------------------------------------------------------


def _parse(text: str, source: SourceMap) -> tuple[Any, list[Problem]]:
    """The document as plain Python, positions recorded: libyaml when it is sure, else ruamel."""
    fast = read_yaml(text)
    if fast is not None:
        source.positions.update(fast.positions)
        source.quoted.update(fast.quoted)
        return fast.data, []
    from tminus.runbook.yamlruamel import parse  # every refusal and syntax error, worded as ruamel reads it

    return parse(text, source)


# --- pydantic errors -> problems -------------------------------------------------------------


def _model_problems(errors: list[ErrorDetails], data: dict[str, Any], source: SourceMap) -> list[Problem]:
    # Group by YAML path: a union field reports one error per branch; users want one message.
    groups: dict[PathKey, list[tuple[ErrorDetails, Any, bool]]] = {}
    for err in errors:
        path, value, on_key = _yaml_path(err, data)
        groups.setdefault(path, []).append((err, value, on_key))
    problems: list[Problem] = []
    for path, errs in groups.items():
        typed = [e for e, _, on_key in errs if e["type"] in _EXPECTED and not on_key]
        if len(typed) > 1:
            expected = " or ".join(dict.fromkeys(_expected(e, path) for e in typed))
            value = errs[0][1]
            problems.append(_problem(path, f"expected {expected}, got {_describe(value)}", None, source))
            errs = [x for x in errs if x[0] not in typed]
        for err, value, on_key in errs:
            message, hint = _explain(err, path, value, on_key, data)
            problems.append(_problem(path, message, hint, source))
    return problems


def _problem(path: PathKey, message: str, hint: str | None, source: SourceMap) -> Problem:
    return Problem(message, source.locate(path), hint, path_to_str(path))


def _yaml_path(err: ErrorDetails, data: Any) -> tuple[PathKey, Any, bool]:
    """Pydantic's loc without union-branch labels ('str', 'function-after[...]'): the YAML path."""
    path: list[str | int] = []
    node, on_key = data, False
    loc = err["loc"]
    for i, part in enumerate(loc):
        if part == "[key]":
            on_key = True
        elif _contains(node, part):
            node = node[part]
            path.append(part)
        elif i == len(loc) - 1 and err["type"] == "missing":
            path.append(part)
    return tuple(path), node, on_key


def _contains(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _explain(
    err: ErrorDetails, path: PathKey, value: Any, on_key: bool, data: dict[str, Any]
) -> tuple[str, str | None]:
    kind, ctx = err["type"], err.get("ctx") or {}
    key = path[-1] if path else ""
    if on_key:  # the error is about the key itself, not the value under it
        value = err["input"]
        return f"keys here must be {_EXPECTED.get(kind, 'strings')}, got {_describe(value)}", \
            f"quote the key: \"{value}\":"
    if kind == "extra_forbidden":
        names = _keys_of(_model_at(path[:-1]))
        hint = closest(str(key), names) or (f"allowed keys: {', '.join(names)}" if names else None)
        return f"unknown key '{key}'{_lookalikes(str(key))}", hint
    if kind == "missing":
        field = _field_of(_model_at(path[:-1]), str(key))
        about = f" ({field.description})" if field is not None and field.description else ""
        return f"missing required key '{key}'", f"add '{key}:'{about}"
    if kind in _EXPECTED:
        hint = None
        if kind == "string_type" and isinstance(value, int | float):
            hint = f"quote it to make it text: \"{str(value).lower() if isinstance(value, bool) else value}\""
        return f"expected {_expected(err, path)}, got {_describe(value)}", hint
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = closest(str(value), choices) if isinstance(value, str) else None
        return f"expected {ctx.get('expected')}, got {_describe(value)}", hint
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == _IDENTIFIER:
        return (f"expected an identifier, got {_describe(value)}",
                "use letters, digits and _, not starting with a digit, e.g. backup_db")
    if kind == "too_short":
        return f"'{key}' needs at least {ctx.get('min_length', 1)} entry", None
    if kind in ("value_error", "assertion_error"):
        error = ctx.get("error")
        if isinstance(error, HintedValueError):
            return str(error), error.hint
        message = str(error or err["msg"])
        return message, _step_hint(path, value) if _model_at(path) is Step else None
    text = err["msg"].replace("Input should be", "expected")
    return f"{text[:1].lower()}{text[1:]}, got {_describe(value)}", None


def _lookalikes(key: str) -> str:
    """Name the characters that are not ASCII: 'name' with a Cyrillic a (U+0430) reads as 'name'."""
    odd = dict.fromkeys(c for c in key if not c.isascii())
    if not odd:
        return ""
    names = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')}" for c in list(odd)[:3])
    return f" (it holds {names}: keys are ASCII)"


def _expected(err: ErrorDetails, path: PathKey) -> str:
    if err["type"] == "model_type":
        model = _model_at(path)
        if model is not None and accepts_shorthand(model):
            return "a mapping or a string"
    return _EXPECTED[err["type"]]


def _step_hint(path: PathKey, value: Any) -> str:
    """A step's kind problem: suggest the kind the user probably meant."""
    if isinstance(value, dict):
        kinds = [k for k in KIND_FIELDS if k in value]
        if len(kinds) > 1:
            return f"one kind per step: split it into {len(kinds)} steps ({', '.join(kinds)})"
        if len(kinds) == 1:
            return f"write the configuration after '{kinds[0]}:'"
        for k in value:
            if k not in Step.model_fields and (match := closest(str(k), list(KIND_FIELDS))):
                return match
    return f"add one of: {', '.join(KIND_FIELDS)}"


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        short = value if len(value) <= 40 else value[:37] + "..."
        return f"string '{short}'"
    if value is None:
        return "an empty value"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# --- which model sits at a path (for "did you mean" hints) ----------------------------------


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(path: PathKey) -> type[BaseModel] | None:
    tp: Any = Runbook
    for part in path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = _field_of(tp, str(part))
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _field_of(model: type[BaseModel] | None, key: str) -> Any:
    if model is None:
        return None
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _keys_of(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]
