"""Validation reads each template and expectation text once (runbook/validate.py's caches): a text
repeated across steps and runbooks must still be judged where it stands, with what that step sees."""

from __future__ import annotations

import textwrap

import pytest

from tminus.errors import Problem, RunbookError
from tminus.runbook.loader import load_runbook
from tminus.runbook.validate import semantic_warnings


def problems_of(text: str) -> list[tuple[int | None, str]]:
    with pytest.raises(RunbookError) as info:
        load_runbook("rb.yaml", textwrap.dedent(text))
    return [(p.location.line if p.location else None, p.message) for p in info.value.problems]


def test_the_same_template_before_and_after_the_step_it_reads() -> None:
    text = """\
        name: r
        phases:
          - name: p
            steps:
              - run: echo {{ steps.a.stdout }}
              - id: a
                run: echo a
              - run: echo {{ steps.a.stdout }}
        """
    got = problems_of(text)
    assert len(got) == 1 and got[0][0] == 5
    assert "steps.a refers to a step that does not run before this one" in got[0][1]
    assert problems_of(text) == got  # again, every text now read before


def test_a_template_read_for_one_runbook_is_judged_again_for_the_next() -> None:
    step = "phases:\n  - name: p\n    steps:\n      - run: echo {{ vars.x }} {{ secrets.token }}\n"
    load_runbook("a.yaml", "name: a\nvars: {x: 1}\nsecrets: [token]\n" + step)
    got = problems_of("name: b\n" + step)
    assert [m for _, m in got] == ["undefined variable vars.x", "secrets.token is not declared"]


def test_repeated_refusals_stay_positioned_at_each_use() -> None:
    got = problems_of("""\
        name: r
        phases:
          - name: p
            steps:
              - run: echo {{ x | nope }}
                expect: [stdout containz "a"]
              - run: echo {{ x | nope }}
                expect: [stdout containz "a"]
              - sql: {url: "sqlite:///db", query: "SELECT '{{ vars.v }}'"}
              - sql: {url: "sqlite:///db", query: "SELECT '{{ vars.v }}'"}
        vars: {v: 1}
        """)
    lines = [line for line, _ in got]
    assert lines.count(5) == lines.count(7) == 1  # the unknown filter, at both steps
    assert lines.count(6) == lines.count(8) == 1  # the expectation, at both steps
    assert lines.count(9) == lines.count(10) == 1  # the SQL literal around an interpolation, at both


def test_warnings_of_a_repeated_text_at_each_use() -> None:
    doc = load_runbook("rb.yaml", textwrap.dedent("""\
        name: r
        phases:
          - name: p
            steps:
              - run: "echo {{ vars.v | raw }}"
              - run: "echo {{ vars.v | raw }}"
        vars: {v: 1}
        """))
    found: list[Problem] = semantic_warnings(doc.runbook, doc.source)
    assert [w.location.line for w in found if w.location] == [5, 6]
    assert semantic_warnings(doc.runbook, doc.source) == found
