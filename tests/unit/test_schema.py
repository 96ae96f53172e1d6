"""The JSON Schema agrees with the models: fixtures validate, mistakes do not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from ruamel.yaml import YAML

from tminus.runbook import models
from tminus.runbook.models import KIND_FIELDS
from tminus.runbook.schema import SCHEMA_ID, _spec_models, json_schema, shorthand_field

FIXTURES = Path(__file__).parent.parent / "fixtures" / "runbooks"
VALID = ["minimal.yaml", "full.yaml", "semantic.yaml"]  # semantic.yaml: only semantically wrong


def load_yaml(name: str) -> Any:
    return YAML(typ="safe").load((FIXTURES / name).read_text())


def test_header_and_descriptions() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID == "https://tminus.dev/schema/runbook-v1.json"
    assert schema["title"] == "tminus runbook, version 1"
    step = schema["$defs"]["Step"]
    assert step["properties"]["when"]["description"].startswith("A Jinja2 expression")
    assert step["oneOf"] == [{"required": [k]} for k in KIND_FIELDS]
    assert step["additionalProperties"] is False
    json.dumps(schema)  # serialisable as is


def test_shorthands_match_what_the_models_accept() -> None:
    found = {name: shorthand_field(m) for name, m in _spec_models().items() if shorthand_field(m)}
    assert found == {"RunSpec": "command", "HttpSpec": "url", "ManualSpec": "prompt", "Decision": "mode",
                     "Deadline": "after"}
    # The probe agrees with real validation: each shorthand builds the field it names.
    assert models.RunSpec.model_validate("make").command == "make"
    with pytest.raises(ValidationError):
        models.SqlSpec.model_validate("select 1")
    defs = json_schema()["$defs"]
    assert defs["RunSpec"]["anyOf"][0]["type"] == "string"
    assert defs["Decision"]["anyOf"][0]["enum"] == ["auto", "manual"]
    assert "anyOf" not in defs["SqlSpec"]


@pytest.fixture(scope="module")
def validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema", reason="the jsonschema package is not installed")
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("name", VALID)
def test_fixtures_validate(validator: Any, name: str) -> None:
    errors = [e.message for e in validator.iter_errors(load_yaml(name))]
    assert errors == []


def test_invalid_fixture_is_rejected(validator: Any) -> None:
    assert not validator.is_valid(load_yaml("five_mistakes.yaml"))


@pytest.mark.parametrize(
    "doc",
    [
        {"name": "a", "nme": "x"},  # unknown top-level key
        {"name": "a", "verify": [{"run": "x", "tiemout": "5s"}]},  # unknown step key
        {"name": "a", "verify": [{"run": "x", "http": "http://x"}]},  # two kinds
        {"name": "a", "verify": [{"name": "no kind"}]},
        {"name": "a", "verify": [{"run": None}]},
        {"name": "a", "verify": [{"run": "x", "timeout": "5 minutes"}]},
        {"name": "a", "decision": "sometimes"},
        {"verify": []},  # no name
    ],
)
def test_mistakes_are_rejected(validator: Any, doc: dict[str, Any]) -> None:
    assert not validator.is_valid(doc)


def test_shorthands_are_accepted(validator: Any) -> None:
    doc = {
        "name": "a",
        "decision": "manual",
        "verify": [{"run": "make test"}, {"http": "http://x"}, {"manual": "Looks good?"}],
        "phases": [{"name": "p", "steps": [{"tcp": {"port": "{{ vars.port }}"}}]}],
    }
    assert [e.message for e in validator.iter_errors(doc)] == []
