"""`--var` and `--var-file`: declared names only; text as written unless the default is typed."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tminus.cli.variables import VarProblem, coerce, resolve_overrides
from tminus.runbook.loader import load_runbook


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("1.10", "1.0", "1.10"),
        ("true", "no", "true"),
        ("007", None, "007"),
        ("8081", 8080, 8081),
        (" 1 ", 0.5, 1.0),
        ("YES", False, True),
        ("off", True, False),
        ("0", True, False),
        ('["a", "b"]', ["x"], ["a", "b"]),
        ("[a, 1]", [], ["a", 1]),
        ('{"k": 1}', {}, {"k": 1}),
        (["x"], None, ["x"]),
    ],
)
def test_coerce(text: Any, default: Any, expected: Any) -> None:
    got = coerce(text, default)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    ("text", "default", "message"),
    [
        ("1.5", 8080, "expects a whole number (the default is 8080), got '1.5'"),
        ("nan", 0.5, "expects a number"),
        ("maybe", False, "expects true or false (the default is false), got 'maybe'"),
        ("a,b", ["x"], "expects a list in JSON or YAML flow style"),
        ("[1]", {}, "expects a mapping"),
        (["x"], "text", "expects text, got a list"),
    ],
)
def test_coerce_refuses_what_the_default_cannot_take(text: Any, default: Any, message: str) -> None:
    with pytest.raises(VarProblem, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        coerce(text, default)


def test_names_are_checked_against_the_environment(tmp_path: Path) -> None:
    doc = load_runbook("rb.yaml", textwrap.dedent("""\
        name: a
        vars: {release: "1", port: 1}
        environments: {prod: {vars: {region: eu}}, dev: {}}
        phases: [{name: p, steps: [run: "echo {{ vars.release }}"]}]
        """))
    (tmp_path / "v.yaml").write_text("release: 2.10\nport: '5'\nregion: us\n", encoding="utf-8")
    got, problems = resolve_overrides(doc, "prod", ("port=6",), str(tmp_path / "v.yaml"))
    assert (got, problems) == ({"release": "2.10", "port": 6, "region": "us"}, [])
    got, problems = resolve_overrides(doc, "dev", ("region=x", "relase=2", "nokey", "port=x"))
    assert got == {}
    assert problems == [
        "--var 'nokey' is not KEY=VALUE",
        "--var region: the runbook declares no variable 'region' in environment 'dev' "
        "(only environment prod declares it)",
        "--var relase: the runbook declares no variable 'relase'; did you mean 'release'?",
        "--var port: expects a whole number (the default is 1), got 'x'",
    ]
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    _, problems = resolve_overrides(doc, "dev", (), str(tmp_path / "list.json"))
    assert problems == [f"--var-file {tmp_path / 'list.json'}: expects a mapping of variable names to values, "
                        "e.g. release: 2.4.0"]
