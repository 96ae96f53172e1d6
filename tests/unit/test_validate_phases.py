"""Validation of after_go/finalize phases and of a step's `effect:` (runbook/validate_phases.py):
each refusal positioned at the key, with a hint; the model's `effect` overrides the kind's class."""

from __future__ import annotations

import textwrap

import pytest

from tminus.errors import Problem, RunbookError
from tminus.runbook.loader import load_runbook


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(RunbookError) as info:
        load_runbook("rb.yaml", textwrap.dedent(text))
    return info.value.problems


def where(p: Problem) -> tuple[int | None, int | None]:
    assert p.location is not None
    return p.location.line, p.location.column


def test_effect_reversible_without_anything_that_reverses_it_is_refused_at_the_key() -> None:
    [p] = problems_of("""\
        name: a
        phases:
          - name: p
            steps:
              - name: flip
                run: ./flip.sh
                effect: reversible
    """)
    assert "'flip' declares effect: reversible, but nothing reverses it" in p.message
    assert where(p) == (7, 9) and p.hint is not None and "effect: irreversible" in p.hint


@pytest.mark.parametrize("covered", [
    "undo: [{run: ./unflip.sh}]",  # its own undo
])
def test_effect_reversible_with_its_own_undo_is_valid(covered: str) -> None:
    doc = load_runbook("rb.yaml", textwrap.dedent(f"""\
        name: a
        phases:
          - name: p
            steps:
              - run: ./flip.sh
                effect: reversible
                {covered}
    """))
    step = doc.runbook.phases[0].steps[0]
    assert step.effect == "reversible" and not step.needs_undo and not step.is_check


def test_effect_reversible_is_valid_with_a_phase_undo_or_a_kind_that_derives_one() -> None:
    load_runbook("rb.yaml", textwrap.dedent("""\
        name: a
        phases:
          - name: p
            steps:
              - {run: ./flip.sh, effect: reversible}
              - {migrate: {url: "sqlite:///x.db", dir: migrations}, effect: reversible}
            undo: [{run: ./unflip.sh}]
          - name: q
            steps:
              - {migrate: {url: "sqlite:///x.db", dir: migrations}, effect: reversible}
    """))


def test_an_unknown_effect_is_refused_with_the_choices() -> None:
    [p] = problems_of("""\
        name: a
        phases:
          - name: p
            steps: [{run: ./x.sh, effect: readonly}]
    """)
    assert "none" in p.message and "irreversible" in p.message and where(p)[0] == 4


def test_effect_overrides_the_kind_and_manual_is_none() -> None:
    doc = load_runbook("rb.yaml", textwrap.dedent("""\
        name: a
        phases:
          - name: p
            steps:
              - {run: ./status.sh, effect: none}
              - {manual: "Team ready?"}
              - {manual: "Flip the DNS by hand", effect: irreversible}
              - {http: "http://127.0.0.1:9/", effect: additive}
              - {run: ./x.sh}
    """))
    effects = [(s.effect, s.kind_effect, s.is_check, s.needs_undo) for s in doc.runbook.phases[0].steps]
    assert effects == [
        ("none", "irreversible", True, False),
        ("none", "none", True, False),
        ("irreversible", "none", False, True),
        ("additive", "none", False, False),
        ("irreversible", "irreversible", False, True),
    ]


def test_a_finalize_step_cannot_roll_back() -> None:
    [p] = problems_of("""\
        name: a
        finalize:
          - name: retire
            steps:
              - run: ./stop-blue.sh
                on_failure: rollback
    """)
    assert p.message.startswith("a finalize step cannot roll back") and where(p) == (6, 9)
    assert p.hint is not None and "after_go" in p.hint


def test_finalize_phases_have_no_on_failure_key_and_after_go_only_stop_or_rollback() -> None:
    problems = problems_of("""\
        name: a
        after_go:
          - name: doors
            on_failure: abort
            steps: [{run: "true"}]
        finalize:
          - name: retire
            on_failure: stop
            steps: [{run: "true"}]
    """)
    assert [where(p)[0] for p in problems] == [4, 8]


def test_phase_names_are_unique_across_phases_after_go_and_finalize() -> None:
    problems = problems_of("""\
        name: a
        phases:
          - name: switch
            steps: [{run: "true"}]
        after_go:
          - name: switch
            steps: [{run: "true"}]
        finalize:
          - name: switch
            steps: [{run: "true"}]
    """)
    assert [(where(p), p.message) for p in problems] == [
        ((6, 5), "duplicate phase name 'switch' (first used in phases at line 3, column 5)"),
        ((9, 5), "duplicate phase name 'switch' (first used in phases at line 3, column 5)"),
    ]


def test_step_ids_of_after_go_are_seen_by_finalize_but_not_by_rollback() -> None:
    [p] = problems_of("""\
        name: a
        after_go:
          - name: doors
            steps: [{id: doors, run: "echo open"}]
        finalize:
          - name: retire
            steps: [{run: "echo {{ steps.doors.stdout }}"}]
        rollback:
          - run: "echo {{ steps.doors.stdout }}"
    """)
    assert where(p)[0] == 9 and "does not run before this one" in p.message


def test_undo_of_an_after_go_undo_step_is_refused() -> None:
    [p] = problems_of("""\
        name: a
        after_go:
          - name: doors
            steps: [{run: "true"}]
            undo:
              - run: "true"
                undo: [{run: "true"}]
    """)
    assert "a phase's undo step cannot have undo" in p.message


def test_keys_of_after_go_and_finalize_steps() -> None:
    doc = load_runbook("rb.yaml", textwrap.dedent("""\
        name: a
        after_go:
          - name: doors
            steps: [{run: "true", undo: [{run: "false"}]}]
        finalize:
          - name: retire
            steps: [{run: "true"}]
            undo: [{run: "true"}]
    """))
    assert sorted(doc.step_by_key()) == ["after_go[0].steps[0]", "after_go[0].steps[0].undo[0]",
                                         "finalize[0].steps[0]", "finalize[0].undo[0]"]


@pytest.mark.parametrize("field", ["after_go", "finalize"])
def test_a_guard_on_a_live_phase_is_refused_not_ignored(field: str) -> None:
    [p] = problems_of(f"""\
        name: a
        phases:
          - name: p
            steps: [{{run: "true"}}]
        {field}:
          - name: live
            guard:
              interval: 1s
              probes: [{{name: up, tcp: {{port: 9}}}}]
              rules: [{{name: down, when: open == false, consecutive: 1}}]
            steps: [{{run: "true"}}]
    """)
    assert f"a guard watches a phase of phases: only; 'live' is in {field}:" in p.message
    assert where(p) == (7, 5) and p.hint is not None and "monitor" in p.hint
