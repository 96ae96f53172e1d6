"""A command imports what its runbook needs, not what tminus can do (issue 15: start-up close to the floor).

Each case runs the real command line in a process of its own (`tminus.cli.main`, as the `tminus`
script does) and reads `sys.modules` when it exits: a runbook of plain `run` steps must not load
Jinja2, httpx, the monitor, the db package, the reports, the projection...; a runbook that does use a
template or an http check loads Jinja2 or httpx (the other direction, so the laziness is not bought by
breaking the feature).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

RUN_STEPS = """\
version: 1
name: plain-run-steps
phases:
  - name: change
    steps:
      - name: first
        run: "true"
        undo: [{run: "true"}]
      - name: second
        run: "echo done"
        expect: ['stdout contains "done"']
verify:
  - name: still fine
    run: "true"
"""

TEMPLATED = """\
version: 1
name: templated
vars:
  word: done
phases:
  - name: change
    steps:
      - name: echo
        run: "echo {{ vars.word }}"
"""

HTTP_GATE = """\
version: 1
name: http-gate
gates:
  - name: reachable
    checks:
      - name: nothing listens on port 9
        http: "http://127.0.0.1:9/"
        timeout: 2s
"""

_CODE = """\
import atexit, json, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
from tminus.cli import main
sys.argv = ["tminus", *sys.argv[1:]]
main()
"""

# command -> (runbook, arguments after the file, expected exit code)
CASES: dict[str, tuple[str, tuple[str, ...], int]] = {
    "run": (RUN_STEPS, (), 0),
    "validate": (RUN_STEPS, (), 0),
    "plan": (RUN_STEPS, (), 0),
    "run templated": (TEMPLATED, (), 0),
    "gate http": (HTTP_GATE, (), 10),
}

# Not imported by `run`, `validate` or `plan` of a runbook of plain run steps.
HEAVY = ["jinja2", "httpx", "httpcore", "tminus.monitor", "tminus.db", "tminus.reports",
         "tminus.projection", "tminus.importer", "tminus.engine.rehearsal.cycles", "tminus.cli.rehearse",
         "tminus.cli.report", "psycopg", "redis", "markdown_it", "alembic", "tomllib"]
# The ledger stands on sqlite3 and psycopg directly: none of SQLAlchemy, nor what it pulled in.
LEDGER_FREE = ["sqlalchemy", "asyncio", "importlib.metadata", "email", "ssl"]


@cache
def loaded(case: str, workdir: Path) -> frozenset[str]:
    """The modules `tminus COMMAND runbook.yaml` had imported when it exited."""
    runbook, extra, code = CASES[case]
    where = workdir / case.replace(" ", "-")
    where.mkdir()
    (where / "runbook.yaml").write_text(runbook, encoding="utf-8")
    out = where / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMINUS_", "PYDANTIC_"))}
    command = case.split()[0]
    proc = subprocess.run([sys.executable, "-c", _CODE, str(out), command, "runbook.yaml", *extra], cwd=where,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, f"tminus {command} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return frozenset(json.loads(out.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lazy-imports")


def _present(modules: frozenset[str], name: str) -> bool:
    return name in modules or any(m.startswith(name + ".") for m in modules)


@pytest.mark.parametrize("command", ["run", "validate", "plan"])
@pytest.mark.parametrize("module", [*HEAVY, *LEDGER_FREE])
def test_a_runbook_of_run_steps_does_not_import(command: str, module: str, workdir: Path) -> None:
    assert not _present(loaded(command, workdir), module), f"`tminus {command}` of run steps imported {module}"


@pytest.mark.parametrize("command", ["run", "validate"])
def test_rich_is_left_to_the_commands_that_print_tables(command: str, workdir: Path) -> None:
    assert not _present(loaded(command, workdir), "rich")  # `plan` prints its tables with Rich


def test_a_run_of_run_steps_loads_its_kind_and_nothing_of_the_other_commands(workdir: Path) -> None:
    modules = loaded("run", workdir)
    assert "tminus.kinds.run" in modules and "tminus.engine.session" in modules  # it did run
    assert not any(m.startswith("tminus.kinds.") and m.rsplit(".", 1)[1] in ("http", "sql", "redis", "watch")
                   for m in modules)
    lazy_commands = {"tminus.cli.inspect", "tminus.cli.explain", "tminus.cli.watch", "tminus.cli.db",
                     "tminus.cli.docs", "tminus.cli.init", "tminus.cli.importer", "tminus.cli.rehearsals"}
    assert not modules & lazy_commands


def test_a_template_loads_jinja2(workdir: Path) -> None:
    assert "jinja2" in loaded("run templated", workdir)


def test_an_http_check_loads_httpx(workdir: Path) -> None:
    modules = loaded("gate http", workdir)
    assert "httpx" in modules and "tminus.kinds.http" in modules


_PLUGINS = """\
import os, sys
from tminus.cli import skip_pydantic_plugins
LOADER = "pydantic.plugin._loader"
if sys.argv[1] == "library":  # imported as a library first: pydantic looks for its plugins itself
    import tminus.runbook.models
    skip_pydantic_plugins()
    print(hasattr(sys.modules[LOADER], "__file__"), "importlib.metadata" in sys.modules)
else:  # the command line: no lookup, and the models still validate
    skip_pydantic_plugins()
    from tminus.runbook.models import Step
    assert Step.model_validate({"run": "true"}).kind == "run"
    print(hasattr(sys.modules[LOADER], "__file__"), "importlib.metadata" in sys.modules)
    assert "PYDANTIC_DISABLE_PLUGINS" not in os.environ  # nothing set that a run's steps would inherit
"""


@pytest.mark.parametrize(("way", "pydantics_own"), [("library", "True True"), ("command line", "False False")])
def test_the_command_line_skips_pydantics_plugin_scan_and_a_library_user_keeps_it(way: str, pydantics_own: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYDANTIC_")}
    proc = subprocess.run([sys.executable, "-c", _PLUGINS, way.split()[0]], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == pydantics_own.split()
