"""Semantic validation: unique names, template references in execution order, expectations."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tminus.errors import Problem, RunbookError
from tminus.runbook.loader import load_runbook
from tminus.runbook.validate import expect_placeholders

FIXTURES = Path(__file__).parent.parent / "fixtures" / "runbooks"


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(RunbookError) as info:
        load_runbook("rb.yaml", textwrap.dedent(text))
    return info.value.problems


def ok(text: str) -> None:
    load_runbook("rb.yaml", textwrap.dedent(text))


def where(p: Problem) -> tuple[int | None, int | None]:
    assert p.location is not None
    return p.location.line, p.location.column


def test_semantic_fixture_reports_everything() -> None:
    with pytest.raises(RunbookError) as info:
        load_runbook(FIXTURES / "semantic.yaml")
    got = [(where(p), p.message) for p in info.value.problems]
    assert got == [
        ((9, 5), "duplicate gate name 'ready' (first used at line 5, column 5)"),
        ((16, 9), "undefined variable vars.prot"),
        ((17, 9), "steps.later refers to a step that does not run before this one (id 'later' at line 21, column 9)"),
        ((18, 9), "undefined template name 'foo'"),
        ((20, 25), "invalid expectation 'exit_code === 0': unexpected character '='"),
        ((23, 9), "duplicate step id 'backup' (first used at line 15, column 9)"),
    ]
    assert info.value.problems[1].hint == "did you mean 'port'?"


def test_duplicate_phase_names() -> None:
    [p] = problems_of("""\
        name: a
        phases:
          - {name: p, steps: [run: x]}
          - {name: p, steps: [run: y]}
        """)
    assert p.message == "duplicate phase name 'p' (first used at line 3, column 6)"
    assert p.path == "phases[1].name"


def test_execution_order_of_step_references() -> None:
    ok("""\
        name: a
        gates:
          - name: g
            checks: [{id: probe, env: {present: [HOME]}}]
        phases:
          - name: p
            steps:
              - id: backup
                run: echo {{ steps.probe.values }}
                undo:
                  - id: restore
                    run: restore {{ steps.backup.stdout }}
                  - run: echo {{ steps.restore.stdout }}
              - run: echo {{ steps['backup'].stdout }}
            undo:
              - run: echo {{ steps.backup.stdout }}
        verify:
          - id: check
            run: echo {{ steps.backup.anything.nested }}
        rollback:
          - run: echo {{ steps.check.stdout }}
        """)


def test_undo_ids_are_not_visible_to_later_steps() -> None:
    [p] = problems_of("""\
        name: a
        phases:
          - name: p
            steps:
              - run: x
                undo: [{id: restore, run: y}]
              - run: echo {{ steps.restore.stdout }}
        """)
    assert p.message.startswith("steps.restore refers to a step that does not run before this one")


def test_a_step_cannot_use_its_own_outputs() -> None:
    [p] = problems_of("""\
        name: a
        verify:
          - id: me
            run: echo {{ steps.me.stdout }}
        """)
    assert p.message.startswith("steps.me refers to a step that does not run before this one")


def test_unknown_step_id_lists_known_ids() -> None:
    far, close = problems_of("""\
        name: a
        verify:
          - {id: first_check, run: x}
          - run: echo {{ steps.zzz.out }}
          - run: echo {{ steps.first_chek.out }}
        """)
    assert far.message == "steps.zzz: no step has the id 'zzz'"
    assert far.hint == "ids of earlier steps: first_check"
    assert close.hint == "did you mean 'first_check'?"


def test_vars_from_environments_count_and_locals_are_fine() -> None:
    ok("""\
        name: a
        vars: {items: [1, 2]}
        environments:
          prod: {vars: {region: eu}}
        verify:
          - run: |
              {% set n = 3 %}{% for i in vars.items %}{{ i }} {{ loop.index }}{% endfor %}
              {{ vars.region }} {{ n }} {{ range(2) | list }} {{ env.HOME }} {{ run.id }}
        """)


def test_secrets_must_be_declared() -> None:
    [p] = problems_of("""\
        name: a
        secrets: [DB_PASSWORD]
        verify:
          - run: echo {{ secrets.DB_PASWORD }} {{ secrets.DB_PASSWORD }}
        """)
    assert p.message == "secrets.DB_PASWORD is not declared" and p.hint == "did you mean 'DB_PASSWORD'?"


def test_templates_in_nested_configs_expect_and_when_are_checked() -> None:
    problems = problems_of("""\
        name: a
        verify:
          - http:
              url: http://x
              headers: {X-Token: "{{ vars.token }}"}
              json: {a: ["{{ vars.deep }}"]}
            when: vars.flag == 1
            expect: ["status == {{ vars.code }}"]
          - wait:
              check: {http: "{{ vars.inner }}"}
        """)
    assert [(p.message, p.path) for p in problems] == [
        ("undefined variable vars.token", "verify[0].http.headers.X-Token"),
        ("undefined variable vars.deep", "verify[0].http.json.a[0]"),
        ("undefined variable vars.flag", "verify[0].when"),
        ("undefined variable vars.code", "verify[0].expect[0]"),
        ("undefined variable vars.inner", "verify[1].wait.check.http"),
    ]


def test_template_syntax_error_points_at_the_string() -> None:
    [p] = problems_of("""\
        name: a
        verify:
          - run: echo {{ vars.x
        """)
    assert where(p) == (3, 5) and p.message.startswith("template syntax error:")


def test_when_accepts_braces_and_reports_syntax_errors() -> None:
    ok("name: a\nvars: {on: true}\nverify:\n  - {run: x, when: '{{ vars.on }}'}\n")
    [p] = problems_of("name: a\nverify:\n  - {run: x, when: 'a ==='}\n")
    assert p.message.startswith("expression syntax error in when:")


@pytest.mark.parametrize(
    ("item", "column"),
    [
        ("- exit_code === 0", 21),  # plain scalar: text starts at the item
        ("- 'exit_code === 0'", 22),  # quoted: one column later
        ('- "exit_code == {{ vars.x }} +- z"', 39),  # after a template, columns still match the source
    ],
)
def test_expectation_error_column(item: str, column: int) -> None:
    [p] = problems_of(f"name: a\nvars: {{x: 1}}\nverify:\n  - run: x\n    expect:\n      {item}\n")
    assert where(p) == (6, column)
    assert p.message.startswith("invalid expectation")


def test_templates_in_expectations_parse() -> None:
    ok("""\
        name: a
        vars: {word: '"x"', limit: 500}
        verify:
          - run: x
            expect:
              - 'stdout contains "{{ vars.word }}"'
              - duration < {{ vars.limit }}ms
              - exit_code in [0, {{ vars.limit }}]
        """)


def test_expect_placeholders() -> None:
    text = 'body contains "{{ a }}" and {{ b }}'
    out, origin = expect_placeholders(text)
    assert out == 'body contains "xxxxxxx" and 0'
    assert origin[out.index("0")] == text.index("{{ b")
    assert origin[len(out)] == len(text)
    assert expect_placeholders('x == "a\\"{{ q }}"')[0] == 'x == "a\\"xxxxxxx"'


def test_env_names() -> None:
    secret, required, forbidden = problems_of("""\
        name: a
        secrets: [GOOD, bad-one]
        environments:
          prod:
            env:
              required: [9LIVES]
              forbidden: {"A B": x}
        """)
    assert secret.message == "'bad-one' is not an environment variable name" and where(secret) == (2, 17)
    assert required.path == "environments.prod.env.required[0]"
    assert forbidden.path == "environments.prod.env.forbidden.A B"


def test_checks_cannot_have_undo_and_wait_needs_a_check() -> None:
    gate, verify, wait = problems_of("""\
        name: a
        gates:
          - name: g
            checks: [{env: {present: [A]}, undo: [run: x]}]
        verify:
          - {tcp: {port: 1}, undo: [run: x]}
          - wait: {check: {run: make deploy}}
        """)
    assert gate.message.startswith("a gate check cannot have undo") and gate.path == "gates[0].checks[0].undo"
    assert verify.message.startswith("a verify check cannot have undo")
    assert wait.message.startswith("a wait check must be a check, not a 'run' step")
    assert wait.path == "verify[1].wait.check"


def test_read_only_checks_are_accepted_in_wait() -> None:
    ok("name: a\nverify:\n  - wait: {check: {http: {url: 'http://x', method: HEAD}}}\n")


def test_undo_on_steps_that_run_while_undoing() -> None:
    problems = problems_of("""\
        name: a
        phases:
          - name: p
            steps:
              - run: deploy
                undo:
                  - run: undeploy
                    undo: [run: redeploy]
              - run: migrate
                undo:
                  - run: unmigrate
            undo:
              - run: restore
                undo:
                  - run: unrestore
                    undo: [run: x]
        rollback:
          - run: page someone
            undo: [run: unpage]
        """)
    assert [(where(p), p.path, p.message) for p in problems] == [
        ((8, 13), "phases[0].steps[0].undo[0].undo",
         "a step's undo step cannot have undo: it runs during a rollback, and nothing undoes it"),
        ((14, 9), "phases[0].undo[0].undo",
         "a phase's undo step cannot have undo: it runs during a rollback, and nothing undoes it"),
        ((16, 13), "phases[0].undo[0].undo[0].undo",
         "a step's undo step cannot have undo: it runs during a rollback, and nothing undoes it"),
        ((19, 5), "rollback[0].undo",
         "a rollback step cannot have undo: it runs during a rollback, and nothing undoes it"),
    ]
    assert {p.hint for p in problems} == {
        "undo steps are not undone themselves: remove 'undo:' here, or make it a phase step"}


# --- templates the sandbox refuses, seen before anything runs ----------------------------------


def test_unsafe_attributes_are_positioned_errors() -> None:
    problems = problems_of("""\
        name: a
        vars: {k: x}
        phases:
          - name: p
            steps:
              - run: "echo {{ cycler.__init__.__globals__.os.popen('touch pwned').read() }}"
              - run: "echo {{ joiner | attr('__class__') }} {{ vars['__x__'] }}"
                when: "cycler.__init__ is defined"
        """)
    got = [(where(p), p.message) for p in problems]
    assert got == [
        ((6, 9), "unsafe template: the attribute '__globals__' is refused (templates run in a sandbox)"),
        ((6, 9), "unsafe template: the attribute '__init__' is refused (templates run in a sandbox)"),
        ((7, 9), "unsafe template: the attribute '__class__' is refused (templates run in a sandbox)"),
        ((7, 9), "unsafe template: the attribute '__x__' is refused (templates run in a sandbox)"),
        ((7, 9), "undefined variable vars.__x__"),
        ((8, 9), "unsafe template: the attribute '__init__' is refused (templates run in a sandbox)"),
    ]


def test_a_var_or_environment_variable_may_start_with_an_underscore() -> None:
    ok("""\
        name: a
        vars: {_x: 1}
        phases: [{name: p, steps: [run: "echo {{ vars._x }} {{ env._ | default('') }}"]}]
        """)


def test_unknown_filters_and_tests_name_the_known_ones() -> None:
    problems = problems_of("""\
        name: a
        phases:
          - name: p
            steps:
              - run: "echo {{ 'a' | nosuchfilter }} {{ vars | tojsn }}"
                when: "1 is odd_number"
        """)
    assert [(where(p), p.message) for p in problems] == [
        ((5, 9), "unknown filter 'nosuchfilter'"),
        ((5, 9), "unknown filter 'tojsn'"),
        ((6, 9), "unknown test 'odd_number'"),
    ]
    assert "known filters: abs, " in (problems[0].hint or "") and "shquote" in (problems[0].hint or "")
    assert (problems[1].hint or "").startswith("did you mean 'tojson'? known filters:")
    assert "_tminus" not in (problems[0].hint or "")  # the sandbox's own filters are not offered


def test_a_constant_range_over_the_limit() -> None:
    [p] = problems_of("""\
        name: a
        phases: [{name: p, steps: [run: "echo {{ range(10**9) | list }} {{ range(100) | sum }}"]}]
        """)
    assert p.message == "range() of 1,000,000,000 items is over the limit of 10,000"
