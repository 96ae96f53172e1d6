"""Hostile and careless templates and variables through the real `tminus` command: nothing runs
that the runbook did not say, bombs fail fast, mistakes are positioned errors (exit 78) or usage
errors (exit 2), never tracebacks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.helpers import run_json, tminus, write_runbook

EXPLOIT = "{{ cycler.__init__.__globals__.os.popen('touch pwned').read() }}"


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_the_exploit_is_refused_before_anything_runs(tmp_path: Path, command: str) -> None:
    write_runbook(tmp_path, f"""
        name: hostile
        phases:
          - name: p
            steps:
              - run: "echo {EXPLOIT}"
    """)
    proc = tminus(command, "runbook.yaml", cwd=tmp_path)
    assert proc.returncode == 78, proc.stderr
    assert "runbook.yaml:5:" in proc.stderr and "the attribute '__globals__' is refused" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "pwned").exists()


def test_an_exploit_only_the_render_can_see_runs_nothing(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: hostile
        vars: {a: x, b: y, cmd: "echo hi"}
        phases:
          - name: p
            steps:
              - run: "echo {{ cycler[vars.a][vars.b].os.popen(vars.cmd).read() }} >> log"
    """)
    evil = ("--var", "a=__init__", "--var", "b=__globals__", "--var", "cmd=touch pwned")
    plan = tminus("plan", "runbook.yaml", *evil, cwd=tmp_path)
    assert plan.returncode == 0 and "is unsafe" in plan.stdout, plan.stdout + plan.stderr
    code, result = run_json("run", "runbook.yaml", *evil, cwd=tmp_path)
    assert code == 11 and "is unsafe" in result["reason"], result
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "log").exists()


def test_the_range_bomb_fails_fast(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: bomb
        vars: {n: 3}
        phases:
          - name: p
            steps:
              - run: "echo {{ range(vars.n) | list | length }} >> log"
    """)
    start = time.monotonic()
    plan = tminus("plan", "runbook.yaml", "--json", "--var", "n=1000000000", cwd=tmp_path, timeout=20)
    assert time.monotonic() - start < 10  # a Python start-up or two; the bomb took minutes and 24 GB
    assert "range() of 1,000,000,000 items is over the limit of 10,000" in plan.stdout, plan.stdout
    code, result = run_json("run", "runbook.yaml", "--var", "n=1000000000", cwd=tmp_path)
    assert code == 11 and "range() of 1,000,000,000 items" in result["reason"], result
    assert not (tmp_path / "log").exists()


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_an_unknown_filter_is_a_positioned_error(tmp_path: Path, command: str) -> None:
    write_runbook(tmp_path, """
        name: typo
        phases:
          - name: p
            steps:
              - run: "echo {{ 'a' | shqoute }} >> log"
    """)
    proc = tminus(command, "runbook.yaml", cwd=tmp_path)
    assert proc.returncode == 78, proc.stderr
    assert "runbook.yaml:5:9: unknown filter 'shqoute'" in proc.stderr
    assert "did you mean 'shquote'? known filters: abs, " in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "log").exists()


VARS_RUNBOOK = """
    name: vars
    vars: {release: "1.0", flag: "no", port: 8080, dry: false, hosts: [a]}
    environments:
      prod: {vars: {region: eu}}
      dev: {}
    phases:
      - name: p
        steps:
          - run: >-
              echo {{ vars.release }} {{ vars.flag }} {{ vars.port + 1 }} {{ vars.dry }}
              {{ vars.hosts | join(',') }} >> log
"""


def test_an_undeclared_var_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    write_runbook(tmp_path, VARS_RUNBOOK)
    proc = tminus("run", "runbook.yaml", "-e", "prod", "--var", "relase=2.0.0", "--var", "port=http", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "--var relase: the runbook declares no variable 'relase'; did you mean 'release'?" in proc.stderr
    assert "--var port: expects a whole number (the default is 8080), got 'http'" in proc.stderr
    proc = tminus("plan", "runbook.yaml", "-e", "dev", "--var", "region=us", cwd=tmp_path)
    assert proc.returncode == 2 and "only environment prod declares it" in proc.stderr, proc.stderr
    assert not (tmp_path / "log").exists()


def test_values_stay_as_written_unless_the_default_is_typed(tmp_path: Path) -> None:
    write_runbook(tmp_path, VARS_RUNBOOK)
    code, result = run_json("run", "runbook.yaml", "-e", "prod", "--var", "release=1.10", "--var", "flag=true",
                            "--var", "port=9000", "--var", "dry=yes", "--var", "hosts=[x, y]", cwd=tmp_path)
    assert code == 0, result
    assert (tmp_path / "log").read_text() == "1.10 true 9001 True x,y\n"


def test_a_var_file_is_checked_the_same_way_and_var_wins(tmp_path: Path) -> None:
    write_runbook(tmp_path, VARS_RUNBOOK)
    (tmp_path / "vars.yaml").write_text('release: 1.10\nport: "7000"\nhosts: [b, c]\n', encoding="utf-8")
    (tmp_path / "vars.json").write_text('{"release": "3.0", "relase": "x"}', encoding="utf-8")
    code, result = run_json("run", "runbook.yaml", "-e", "prod", "--var-file", "vars.yaml", "--var", "port=7001",
                            cwd=tmp_path)
    assert code == 0, result
    assert (tmp_path / "log").read_text() == "1.10 no 7002 False b,c\n"
    proc = tminus("plan", "runbook.yaml", "-e", "prod", "--var-file", "vars.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--var-file vars.json: relase: the runbook declares no variable 'relase'" in proc.stderr
