"""`vars_file:` as the runbook loads: merged under what is written inline, names checked, types read."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import write_runbook

from tminus.cli.variables import resolve_overrides
from tminus.engine.context import effective_vars
from tminus.errors import RunbookError
from tminus.runbook.document import RunbookDocument
from tminus.runbook.loader import load_runbook


def _load(tmp_path: Path, runbook: str, **files: str) -> RunbookDocument:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return load_runbook(write_runbook(tmp_path, runbook))


def test_the_top_level_file_declares_and_inline_vars_win(tmp_path: Path) -> None:
    doc = _load(tmp_path, """
        name: t
        vars_file: common.yaml
        vars: {release: "2.0"}
        verify: [{run: "echo {{ vars.region }} {{ vars.release }} {{ vars.limits.cpu }}"}]
    """, **{"common.yaml": "region: eu\nrelease: '1.0'\nlimits: {cpu: 2}\nport: 5432\n"})
    assert doc.runbook.vars == {"region": "eu", "release": "2.0", "limits": {"cpu": 2}, "port": 5432}


def test_environment_file_sits_between_runbook_vars_and_environment_vars(tmp_path: Path) -> None:
    doc = _load(tmp_path, """
        name: t
        vars: {release: "1.0", replicas: 2, region: eu}
        environments:
          prod: {vars_file: prod.yaml, vars: {replicas: 6}}
          staging: {}
        verify: [{run: "true"}]
    """, **{"prod.yaml": "release: 1.10\nreplicas: 3\n"})
    assert effective_vars(doc, "prod", {}) == {"release": "1.10", "replicas": 6, "region": "eu"}
    assert effective_vars(doc, "staging", {}) == {"release": "1.0", "replicas": 2, "region": "eu"}
    overrides, problems = resolve_overrides(doc, "prod", ("replicas=9",))
    assert not problems and effective_vars(doc, "prod", overrides)["replicas"] == 9


def test_an_environment_file_cannot_declare(tmp_path: Path) -> None:
    with pytest.raises(RunbookError) as err:
        _load(tmp_path, """
            name: t
            vars: {release: "1.0"}
            environments:
              prod: {vars_file: prod.yaml}
            verify: [{run: "echo {{ vars.release }}"}]
        """, **{"prod.yaml": "release: 2.0\nrelase: 2.1\n"})
    (problem,) = err.value.problems
    assert str(problem.location).endswith("prod.yaml:2:1")
    assert "declares no variable 'relase'" in problem.message and problem.hint == "did you mean 'release'?"


def test_an_empty_file_sets_nothing(tmp_path: Path) -> None:
    doc = _load(tmp_path, """
        name: t
        vars_file: empty.yaml
        vars: {a: 1}
        environments:
          prod: {vars_file: empty.yaml}
        verify: [{run: "true"}]
    """, **{"empty.yaml": "# nothing yet\n"})
    assert effective_vars(doc, "prod", {}) == {"a": 1}


def test_problems_in_two_files_are_all_reported(tmp_path: Path) -> None:
    with pytest.raises(RunbookError) as err:
        _load(tmp_path, """
            name: t
            vars_file: missing.yaml
            vars: {n: 1}
            environments:
              prod: {vars_file: prod.yaml}
            verify: [{run: "true"}]
        """, **{"prod.yaml": "n: many\n"})
    messages = sorted(p.message for p in err.value.problems)
    assert len(messages) == 2
    assert "cannot read the vars file" in messages[0] and "expects a whole number" in messages[1]
