"""JSON Schema (draft 2020-12) of the runbook format, for editor completion and CI linting.

Derived from the pydantic models, then adjusted where the models accept more than pydantic's
schema says (string shorthands such as `run: "make test"`) or less (exactly one kind per step).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from tminus.runbook import models
from tminus.runbook.models import KIND_FIELDS, Runbook

SCHEMA_ID = "https://tminus.dev/schema/runbook-v1.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
_PROBE = "\x00tminus-probe"


@cache
def shorthand_field(model: type[BaseModel]) -> str | None:
    """The key a plain string stands for (`run: "cmd"` -> command), or None if no shorthand.

    Found by probing the model's own validation, so the schema cannot drift from the models.
    """
    try:
        obj = model.model_validate(_PROBE)
    except ValidationError as exc:
        errors = exc.errors()
        if any(e["loc"] == () for e in errors):
            return None  # the model itself refused a string
        return str(errors[0]["loc"][0])  # the string reached a field that refused this value
    for name, info in type(obj).model_fields.items():
        if getattr(obj, name) == _PROBE:
            return info.alias or name
    return None


def accepts_shorthand(model: type[BaseModel]) -> bool:
    return shorthand_field(model) is not None


def _spec_models() -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    todo: list[type[BaseModel]] = [models.Spec]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__ == models.__name__:
                found[sub.__name__] = sub
                todo.append(sub)
    return found


def json_schema() -> dict[str, Any]:
    schema = Runbook.model_json_schema(mode="validation")
    defs: dict[str, Any] = schema["$defs"]
    for name, model in _spec_models().items():
        field = shorthand_field(model) if name in defs else None
        if field is None:
            continue
        full = defs[name]
        short = {k: v for k, v in full["properties"][field].items() if k not in ("title", "default")}
        short["description"] = f"Shorthand for {{{field}: ...}}."
        defs[name] = {"description": full.get("description", ""), "anyOf": [short, full]}

    step = defs["Step"]
    for kind in KIND_FIELDS:
        # The model accepts `kind: null` only to reject it with a better message; editors should not offer it.
        prop = step["properties"][kind]
        branches = [b for b in prop.pop("anyOf", []) if b != {"type": "null"}]
        prop.update(branches[0] if len(branches) == 1 else {"anyOf": branches})
        prop.pop("default", None)
    step["oneOf"] = [{"required": [kind]} for kind in KIND_FIELDS]
    # `rollback:` is a list of steps, or the mapping with them and a deadline (RollbackSpec's wrap validator)
    rollback = schema["properties"]["rollback"]
    rollback.pop("default", None)
    ref = {"$ref": "#/$defs/RollbackSpec"}
    rollback.update(anyOf=[{"type": "array", "items": {"$ref": "#/$defs/Step"}}, ref])
    rollback.pop("$ref", None)

    schema.pop("title", None)
    return {"$schema": DRAFT, "$id": SCHEMA_ID, "title": "tminus runbook, version 1", **schema}
