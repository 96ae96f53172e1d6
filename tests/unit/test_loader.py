"""Loading runbooks: positions, every problem at once, hints."""

from __future__ import annotations

from pathlib import Path

import pytest

from tminus.errors import Problem, RunbookError
from tminus.runbook.loader import load_runbook

FIXTURES = Path(__file__).parent.parent / "fixtures" / "runbooks"


def problems_of(text: str, name: str = "rb.yaml") -> list[Problem]:
    with pytest.raises(RunbookError) as info:
        load_runbook(name, text)
    return info.value.problems


def where(p: Problem) -> tuple[int | None, int | None]:
    assert p.location is not None
    return p.location.line, p.location.column


def test_minimal_loads_with_positions_and_keys() -> None:
    doc = load_runbook(FIXTURES / "minimal.yaml")
    step = doc.runbook.phases[0].steps[0]
    assert step.run is not None and step.run.command == "echo hello"
    assert step.key == "phases[0].steps[0]"
    assert doc.source.positions[("phases",)] == (2, 1)
    assert doc.source.positions[("phases", 0)] == (3, 5)  # list item: the item's position
    assert doc.source.positions[("phases", 0, "steps", 0, "run")] == (5, 9)  # key: the key's position
    assert str(doc.locate(step, "run")) == f"{FIXTURES / 'minimal.yaml'}:5:9"


def test_full_fixture_loads() -> None:
    doc = load_runbook(FIXTURES / "full.yaml")
    rb = doc.runbook
    assert [p.name for p in rb.phases] == ["backup", "migrate"]
    assert rb.decision.mode == "manual"
    wait = rb.phases[1].steps[1].wait
    assert wait is not None and wait.check.key == "phases[1].steps[1].wait.check"
    assert rb.environments["prod"].vars["replicas"] == 3
    assert doc.text.startswith("# Every part")


def test_five_mistakes_give_five_problems_with_positions() -> None:
    with pytest.raises(RunbookError) as info:
        load_runbook(FIXTURES / "five_mistakes.yaml")
    got = [(where(p), p.message, p.hint) for p in info.value.problems]
    assert got == [
        ((4, 5), "unknown key 'nme'", "did you mean 'name'?"),
        ((7, 9), "'5 minutes' is not a duration; write it as 500ms, 30s, 5m, 2h or 1h30m", None),
        ((8, 15), "a port is between 1 and 65535, got 70000", None),
        ((9, 9), got[3][1], "did you mean 'run'?"),
        ((11, 17), "expected an integer, got string 'abc'", None),
    ]
    assert got[3][1].startswith("a step needs exactly one kind key")
    assert info.value.problems[0].path == "phases[0].nme"
    assert "five_mistakes.yaml:4:5: unknown key 'nme'" in str(info.value)


def test_duplicate_keys_report_both_positions() -> None:
    with pytest.raises(RunbookError) as info:
        load_runbook(FIXTURES / "duplicate_keys.yaml")
    got = [(where(p), p.message, p.path) for p in info.value.problems]
    assert got == [
        ((4, 3), "duplicate key 'port' (first at line 3, column 3)", "vars.port"),
        ((7, 5), "duplicate key 'name' (first at line 6, column 5)", "phases[0].name"),
    ]


def test_syntax_error_has_position() -> None:
    with pytest.raises(RunbookError) as info:
        load_runbook(FIXTURES / "syntax_error.yaml")
    [p] = info.value.problems
    assert where(p) == (3, 3)
    assert p.message.startswith("YAML syntax error: expected the node content")


def test_tab_indentation_gets_a_hint() -> None:
    [p] = problems_of("name: a\nvars:\n\tx: 1\n")
    assert where(p) == (3, 1)
    assert p.hint == "indent with spaces: YAML does not allow tabs"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RunbookError) as info:
        load_runbook(tmp_path / "nope.yaml")
    [p] = info.value.problems
    assert p.message == f"runbook file not found: {tmp_path / 'nope.yaml'}"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: a\ndescription: caf\xe9\n")
    with pytest.raises(RunbookError) as info:
        load_runbook(path)
    [p] = info.value.problems
    assert "not UTF-8" in p.message and where(p) == (2, 17)


@pytest.mark.parametrize(("text", "got"), [("", "an empty file"), ("- a\n- b\n", "a list")])
def test_top_level_must_be_a_mapping(text: str, got: str) -> None:
    [p] = problems_of(text)
    assert p.message == f"expected a mapping at the top level, got {got}"


def test_missing_required_key_points_at_the_parent() -> None:
    [p] = problems_of("name: a\nphases:\n  - steps:\n      - run: echo\n")
    assert p.message == "missing required key 'name'"
    assert where(p) == (3, 5) and p.path == "phases[0].name"
    assert p.hint is not None and p.hint.startswith("add 'name:'")


def test_unknown_key_hint_includes_aliases() -> None:
    [p] = problems_of("name: a\nverify:\n  - http: {url: http://x, jsn: {a: 1}}\n")
    assert p.message == "unknown key 'jsn'" and p.hint == "did you mean 'json'?"
    assert where(p) == (3, 27)


def test_unknown_key_without_close_match_lists_allowed_keys() -> None:
    [p] = problems_of("name: a\ndecision: {zzz: 1}\n")
    assert p.hint == "allowed keys: mode, timeout, prompt, require_second_person, require_rehearsal"


def test_wrong_type_for_a_string_suggests_quotes() -> None:
    [p] = problems_of("name: a\nverify:\n  - env: {equals: {PORT: 5432}}\n")
    assert p.message == "expected a string, got integer 5432"
    assert p.hint == 'quote it to make it text: "5432"'
    assert p.path == "verify[0].env.equals.PORT"


def test_union_branch_noise_is_merged_into_one_problem() -> None:
    [p] = problems_of("name: a\nverify:\n  - env: {not_equal: {A: 5}}\n")
    assert p.message == "expected a string or a list, got integer 5"
    assert p.path == "verify[0].env.not_equal.A"


def test_shorthand_kind_with_wrong_type() -> None:
    [p] = problems_of("name: a\nverify:\n  - run: 5\n")
    assert p.message == "expected a mapping or a string, got integer 5"
    assert p.path == "verify[0].run" and where(p) == (3, 5)


def test_step_with_two_kinds_and_empty_kind() -> None:
    text = "name: a\nverify:\n  - run: echo\n    http: http://x\n  - manual:\n"
    two, empty = problems_of(text)
    assert two.message == "a step has exactly one kind key, found 2: run, http"
    assert two.hint == "one kind per step: split it into 2 steps (run, http)"
    assert where(two) == (3, 5)
    assert empty.message == "the kind key 'manual' has no value"
    assert empty.hint == "write the configuration after 'manual:'"


def test_literal_and_identifier_errors() -> None:
    text = "name: a\nverify:\n  - id: 1st\n    run: x\n    on_failure: abrot\n"
    ident, literal = problems_of(text)
    assert ident.message == "expected an identifier, got string '1st'"
    assert literal.message == "expected 'rollback', 'abort' or 'continue', got string 'abrot'"
    assert literal.hint == "did you mean 'abort'?"


def test_non_string_key() -> None:
    [p] = problems_of("name: a\nvars:\n  1: x\n")
    assert p.message == "keys here must be a string, got integer 1"
    assert p.hint == 'quote the key: "1":' and where(p) == (3, 3)


def test_unsupported_tags_are_refused_before_building() -> None:
    # Refused by the first pass (runbook/yamlguard.py), every tag at once, pointing at the tag itself;
    # the model is not read, since ruamel builds tagged values as something else than plain YAML.
    tag, other = problems_of("name: !env NAME\nnme: !!python/object:os.system x\n")
    assert tag.message == "unsupported YAML tag '!env'" and where(tag) == (1, 7)
    assert other.message == "unsupported YAML tag '!!python/object:os.system'" and where(other) == (2, 6)


def test_timestamps_stay_text() -> None:
    doc = load_runbook("rb.yaml", "name: a\nvars: {day: 2024-05-01}\n")
    assert doc.runbook.vars == {"day": "2024-05-01"}


def test_semantic_problems_come_after_a_valid_model() -> None:
    [p] = problems_of("name: a\nverify:\n  - run: echo {{ vars.nope }}\n")
    assert p.message == "undefined variable vars.nope"


def test_document_records_path_and_text() -> None:
    text = "name: a\n"
    doc = load_runbook("some/dir/rb.yaml", text)
    # absolute, so kinds resolve relative paths exactly once whatever the working directory
    assert doc.text == text and doc.base_dir == Path("some/dir").resolve()
    assert doc.source.file == "some/dir/rb.yaml"
