"""Values reach shells and databases as values, through the real `tminus` command: `--var` text that
looks like shell or SQL syntax is quoted for where it stands in a command and bound in a query."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import run_json, tminus, write_runbook

HOSTILE = ["x; touch pwned #", "$(touch pwned)", "`touch pwned`", "it's \"quoted\" \\ $HOME", "a\nb", "ünï ✓"]

SHELL_RUNBOOK = """
    name: quoting
    vars: {who: world}
    phases:
      - name: p
        steps:
          - run: printf %s {{ vars.who }} > bare.out
          - run: printf %s "{{ vars.who }}" > double.out
          - run: printf %s '{{ vars.who }}' > single.out
          - run: echo hello "{{ vars.who }}" | tr a-z A-Z {{ vars.filter | raw }} > raw.out
"""


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_var_reaches_the_command_as_its_exact_text(tmp_path: Path, value: str) -> None:
    write_runbook(tmp_path, SHELL_RUNBOOK.replace("vars: {who: world}", "vars: {who: world, filter: ''}"))
    code, result = run_json("run", "runbook.yaml", "--var", f"who={value}", "--var", "filter=| rev", cwd=tmp_path)
    assert code == 0, result
    for name in ("bare", "double", "single"):
        assert (tmp_path / f"{name}.out").read_bytes() == value.encode(), name
    assert not (tmp_path / "pwned").exists()
    shouted = "".join(c.upper() if c.isascii() else c for c in f"hello {value}")
    assert (tmp_path / "raw.out").read_text() == "\n".join(line[::-1] for line in shouted.split("\n")) + "\n"


def test_plan_shows_the_quoted_command(tmp_path: Path) -> None:
    write_runbook(tmp_path, SHELL_RUNBOOK.replace("vars: {who: world}", "vars: {who: world, filter: ''}"))
    proc = tminus("plan", "runbook.yaml", "--var", "who=x; touch pwned #", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "printf %s 'x; touch pwned #' > bare.out" in proc.stdout
    assert not (tmp_path / "pwned").exists()


def test_validate_warns_of_raw_and_open_quotes(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: warned
        vars: {extra: "", who: w}
        phases:
          - name: p
            steps:
              - run: ls {{ vars.extra | raw }}
              - run: echo "{{ vars.who }}
    """)
    proc = tminus("validate", "runbook.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "warning: runbook.yaml:6:" in proc.stderr and "pasted unescaped (| raw)" in proc.stderr
    assert "warning: runbook.yaml:7:" in proc.stderr and "a double quote is still open" in proc.stderr
    code, result = run_json("validate", "runbook.yaml", cwd=tmp_path)
    assert code == 0 and len(result["warnings"]) == 2, result


def test_validate_refuses_an_interpolation_in_a_sql_literal(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: literal
        vars: {who: w}
        phases:
          - name: p
            steps:
              - sql:
                  url: sqlite:///db.sqlite
                  query: SELECT 1 WHERE 'a' = '{{ vars.who }}'
    """)
    for command in ("validate", "run"):
        proc = tminus(command, "runbook.yaml", cwd=tmp_path)
        assert proc.returncode == 78, proc.stderr
        assert "runbook.yaml:8:" in proc.stderr
        assert "inside a SQL string literal is refused" in proc.stderr and "remove the quotes" in proc.stderr


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return "sqlite:///db.sqlite"
    return str(request.getfixturevalue("pg_url"))


def test_a_hostile_var_is_bound_in_sql(tmp_path: Path, db_url: str) -> None:
    write_runbook(tmp_path, f"""
        name: bound
        vars: {{who: w, table: t}}
        phases:
          - name: p
            steps:
              - sql:
                  url: "{db_url}"
                  write: true
                  query: CREATE TABLE t (name TEXT); INSERT INTO t VALUES ({{{{ vars.who }}}})
              - id: echo
                sql:
                  url: "{db_url}"
                  query: >-
                    SELECT count(*) AS n, {{{{ vars.who }}}} AS v
                    FROM {{{{ vars.table | raw }}}} WHERE name = {{{{ vars.who }}}}
                expect: ["scalar == 1"]
              - run: printf %s {{{{ steps.echo.rows[0].v }}}} > echoed.out
              - sql:
                  url: "{db_url}"
                  query: SELECT count(*) FROM t
                expect: ["scalar == 1"]
    """)
    value = "x'; DROP TABLE t; --"
    code, result = run_json("run", "runbook.yaml", "--var", f"who={value}", cwd=tmp_path)
    assert code == 0, result
    assert (tmp_path / "echoed.out").read_text() == value
