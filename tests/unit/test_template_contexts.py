"""Context-aware escaping of `{{ }}` in shell commands and SQL queries: each value reaches a real `sh`
as exactly the text it is, whatever it holds, and is bound (never pasted) into SQL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tminus.errors import TemplateError
from tminus.runbook.models import RunSpec, SqlSpec
from tminus.templating import contexts
from tminus.templating.environment import new_environment
from tminus.templating.templater import Templater

HOSTILE = [
    "x; touch pwned #",
    "$(touch pwned)",
    "`touch pwned`",
    "it's",
    'say "hi" \\ $HOME',
    "a\nb\ttouch pwned",
    "'; touch pwned; '",
    '"; touch pwned; "',
    "\\",
    "ünïcødé ✓ — 漢字",
    "",
    "-n",
    "*",
    "~",
    "}}{{",
]
TEMPLATES = {
    "bare": "printf %s {{ vars.v }}",
    "double": 'printf %s "{{ vars.v }}"',
    "single": "printf %s '{{ vars.v }}'",
    "inside a word": "printf %s pre{{ vars.v }}post",
    "double, with text": 'printf %s "pre {{ vars.v }} post"',
    "$( ) in double quotes": 'printf %s "$(printf %s {{ vars.v }})"',
    "backquotes": 'x=`printf %s {{ vars.v }}`; printf %s "$x"',
    "backquotes in double quotes": 'printf %s "`printf %s {{ vars.v }}`"',
    "$'...'": "printf %s $'{{ vars.v }}'",
}
EXPECTED_AROUND = {"inside a word": ("pre", "post"), "double, with text": ("pre ", " post")}


def command(template: str, value: object, **vars: object) -> str:
    t = Templater(vars={"v": value, **vars}, environ={}, secrets=[])
    rendered = t.render_config(RunSpec(command=template))
    assert isinstance(rendered, RunSpec)
    return rendered.command


def sh(cmd: str, cwd: Path) -> bytes:
    # bash as sh where it is one: $'...' is bash's; dash has no $'...'
    proc = subprocess.run(["bash", "-c", cmd], cwd=cwd, capture_output=True, timeout=10)
    assert proc.returncode == 0, (cmd, proc.stderr)
    return proc.stdout


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("where", list(TEMPLATES))
def test_each_context_gives_the_command_the_exact_value(tmp_path: Path, where: str, value: str) -> None:
    out = sh(command(TEMPLATES[where], value), tmp_path)
    before, after = EXPECTED_AROUND.get(where, ("", ""))
    substituted = where.startswith(("$( )", "backquotes"))
    expected = value.rstrip("\n") if substituted else value
    assert out == f"{before}{expected}{after}".encode()
    assert not (tmp_path / "pwned").exists()


def test_the_shell_of_the_issue_runs_nothing(tmp_path: Path) -> None:
    cmd = command("echo hello {{ vars.v }}", "x; touch pwned #")
    assert cmd == "echo hello 'x; touch pwned #'"
    assert sh(cmd, tmp_path) == b"hello x; touch pwned #\n"
    assert not (tmp_path / "pwned").exists()


def test_safe_values_stay_as_written() -> None:
    assert command("svc --count {{ vars.n }} --dir {{ vars.v }}", "/srv/app-1.2", n=5) == \
        "svc --count 5 --dir /srv/app-1.2"


def test_a_list_in_a_bare_word_is_one_argument_per_item(tmp_path: Path) -> None:
    cmd = command("printf '[%s]' {{ vars.v }}", ["a b", "c;d", ""])
    assert sh(cmd, tmp_path) == b"[a b][c;d][]"
    assert sh(command('printf "[%s]" "{{ vars.v }}"', ["a b", "c"]), tmp_path) == b"[a b c]"


def test_raw_builds_shell_syntax_on_purpose(tmp_path: Path) -> None:
    cmd = command("echo one {{ vars.v | raw }}", "| tr a-z A-Z")
    assert cmd == "echo one | tr a-z A-Z"
    assert sh(cmd, tmp_path) == b"ONE\n"


@pytest.mark.parametrize("name", ["quote", "shquote", "sh"])
def test_quote_is_not_quoted_again(tmp_path: Path, name: str) -> None:
    cmd = command(f"printf %s {{{{ vars.v | {name} }}}}", "a b'c")
    assert sh(cmd, tmp_path) == b"a b'c"


def test_a_comment_cannot_be_ended_by_a_value(tmp_path: Path) -> None:
    cmd = command("true # {{ vars.v }}", "x\ntouch pwned")
    sh(cmd, tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_a_backslash_before_a_value_is_refused() -> None:
    with pytest.raises(TemplateError, match="backslash right before"):
        command("echo \\{{ vars.v }}", "x")


def test_statement_blocks_are_read_in_written_order(tmp_path: Path) -> None:
    cmd = command("printf %s {% if vars.n %}\"{{ vars.v }}\"{% else %}{{ vars.v }}{% endif %}", "a$b", n=1)
    assert sh(cmd, tmp_path) == b"a$b"


def test_secrets_are_masked_in_their_quoted_forms() -> None:
    secret = "s3cr'et pass"
    t = Templater(vars={}, environ={"TOKEN": secret}, secrets=["TOKEN"])
    for template in ("run {{ secrets.TOKEN }}", 'run "{{ secrets.TOKEN }}"', "run '{{ secrets.TOKEN }}'",
                     "run $'{{ secrets.TOKEN }}'", "run `echo {{ secrets.TOKEN }}`"):
        rendered = t.render_config(RunSpec(command=template))
        assert isinstance(rendered, RunSpec)
        assert rendered.command != template  # rendered, in a quoted form
        masked = t.masker.mask(rendered.command)
        assert "s3cr" not in masked and "pass" not in masked, (template, rendered.command, masked)


# --- SQL ----------------------------------------------------------------------------------------


def sql(query: str, **vars: object) -> SqlSpec:
    rendered = Templater(vars=vars, environ={}, secrets=[]).render_config(
        SqlSpec(url="sqlite://", query=query, params={"mine": 1}))
    assert isinstance(rendered, SqlSpec)
    return rendered


def test_values_are_bound_as_parameters() -> None:
    spec = sql("SELECT * FROM t WHERE name = {{ vars.v }} AND n < {{ vars.n }}", v="x'; DROP TABLE t; --", n=3)
    assert spec.query == "SELECT * FROM t WHERE name = :tminus_p1 AND n < :tminus_p2"
    assert spec.params == {"mine": 1, "tminus_p1": "x'; DROP TABLE t; --", "tminus_p2": 3}


def test_raw_pastes_an_identifier() -> None:
    assert sql("SELECT count(*) FROM {{ vars.v | raw }}", v="orders").query == "SELECT count(*) FROM orders"


@pytest.mark.parametrize(("query", "what"), [
    ("SELECT '{{ vars.v }}'", "SQL string literal"),
    ("SELECT 'it''s {{ vars.v }}'", "SQL string literal"),
    ("SELECT E'\\' {{ vars.v }}'", "SQL string literal"),
    ('SELECT "{{ vars.v }}"', "quoted SQL identifier"),
    ("SELECT $$ {{ vars.v }} $$", "dollar-quoted"),
    ("SELECT $fn$ {{ vars.v }} $fn$", "dollar-quoted"),
])
def test_an_interpolation_inside_quotes_is_refused(query: str, what: str) -> None:
    with pytest.raises(TemplateError, match=f"inside a {what}.*remove the quotes"):
        sql(query, v="x")


@pytest.mark.parametrize("query", [
    "SELECT 'a''b', {{ vars.v }}",
    "SELECT $$ x $$, {{ vars.v }}",
    "SELECT \"col\" FROM t WHERE x = {{ vars.v }}",
    "SELECT 1 /* a 'quote */ + {{ vars.v }}",
    "SELECT 1 -- it's\n + {{ vars.v }}",
    "SELECT x$1$ FROM t WHERE a = {{ vars.v }}",
])
def test_quotes_that_are_closed_or_commented_leave_code(query: str) -> None:
    assert sql(query, v=2).params["tminus_p1"] == 2


def test_a_value_in_a_comment_cannot_end_it() -> None:
    spec = sql("SELECT 1 -- {{ vars.v }}\n/* {{ vars.v }} */", v="x\nDROP TABLE t */ DROP TABLE t")
    assert spec.query == "SELECT 1 -- x DROP TABLE t */ DROP TABLE t\n/* x\nDROP TABLE t * / DROP TABLE t */"
    assert spec.params == {"mine": 1}


def test_shell_quote_in_sql_is_bound_not_pasted() -> None:
    spec = sql("SELECT {{ vars.v | quote }}", v="a'b")
    assert spec.query == "SELECT :tminus_p1"


def test_plan_mode_shows_placeholders_and_quoted_commands() -> None:
    t = Templater(vars={"v": "a b"}, environ={}, secrets=[], plan_mode=True)
    run = t.render_config(RunSpec(command="echo {{ vars.v }} {{ steps.x.stdout }}"))
    assert isinstance(run, RunSpec)
    assert run.command == "echo 'a b' '⟨steps.x.stdout⟩'"


# --- validation's view ----------------------------------------------------------------------------


def test_warnings_name_raw_quote_in_quotes_and_open_quoting() -> None:
    env = new_environment()
    found = [m for m, _ in contexts.warnings(contexts.rewrite(env, 'a {{ x | raw }} "{{ y | quote }}', "shell"),
                                              "shell")]
    assert len(found) == 3
    assert "{{ x | raw }} at line 1, column 3" in found[0] and "pasted unescaped" in found[0]
    assert "quoted by | quote inside quotes" in found[1]
    assert "a double quote is still open" in found[2]


def test_the_refusal_says_where() -> None:
    with pytest.raises(contexts.ContextRefused) as info:
        contexts.rewrite(new_environment(), "SELECT 1\nWHERE a = 'x{{ vars.v }}'", "sql")
    assert (info.value.slot.line, info.value.slot.column) == (2, 13)


# --- the property ---------------------------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_TEXT)
def test_any_text_reaches_sh_exactly(tmp_path: Path, value: str) -> None:
    for template in ("printf %s {{ vars.v }}", 'printf %s "{{ vars.v }}"', "printf %s '{{ vars.v }}'"):
        proc = subprocess.run(["/bin/sh", "-c", command(template, value)], cwd=tmp_path, capture_output=True,
                              timeout=10)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == value.encode("utf-8", "surrogateescape"), template


# --- validation of whole runbooks: undo steps and monitor probes are commands and queries too ------

RUNBOOK = """\
name: contexts
vars: {who: w, table: t}
phases:
  - name: p
    steps:
      - run: echo {{ vars.who }}
        undo:
          - run: echo {{ vars.who | raw }}
monitor:
  duration: 1m
  interval: 5s
  probes:
    - name: rows
      sql:
        url: sqlite:///db.sqlite
        query: SELECT count(*) FROM t WHERE name = '{{ vars.who }}'
  rules:
    - name: none
      when: "scalar > 0"
      consecutive: 2
"""


def test_a_probe_query_with_a_quoted_interpolation_is_refused_at_its_line(tmp_path: Path) -> None:
    from tminus.errors import RunbookError
    from tminus.runbook.loader import load_runbook

    (tmp_path / "runbook.yaml").write_text(RUNBOOK)
    with pytest.raises(RunbookError) as err:
        load_runbook(tmp_path / "runbook.yaml")
    [problem] = err.value.problems
    assert problem.location is not None and problem.location.line == 16
    assert "inside a SQL string literal is refused" in problem.message
    assert "line 1, column 38 of the query" in problem.message


def test_an_undo_command_with_raw_is_a_warning(tmp_path: Path) -> None:
    from tminus.runbook.loader import load_runbook
    from tminus.runbook.validate import semantic_warnings

    (tmp_path / "runbook.yaml").write_text(RUNBOOK.replace("'{{ vars.who }}'", "{{ vars.who }}"))
    doc = load_runbook(tmp_path / "runbook.yaml")
    [warning] = semantic_warnings(doc.runbook, doc.source)
    assert warning.location is not None and warning.location.line == 8
    assert "pasted unescaped (| raw)" in warning.message
