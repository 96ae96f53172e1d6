"""Output to a pipe (CI logs, `| less`, `> file`) is plain text: no Rich markup printed literally, no
colour escapes, and the runbook's own names shown as written, brackets included."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.helpers import TMINUS, write_runbook

ANSI = re.compile(r"\x1b\[")
MARKUP = re.compile(r"\[/?(?:bold|red|green|cyan|yellow|magenta)\b[^\]]*\]|\[/\]")

RUNBOOK = """
    name: plain
    phases:
      - name: "[bold]deploy[/] [phase 1]"
        steps:
          - name: "Drop the [red]old[/red] table"
            run: "true"
"""


def tminus(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command with stdout and stderr pipes, in an environment that forces no colour."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE", "TTY_COMPATIBLE")}
    env.update(TMINUS_OPERATOR="tester", TMINUS_LEDGER=f"sqlite:///{cwd}/ledger.db")
    return subprocess.run([*TMINUS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def _plain(out: str) -> None:
    assert not ANSI.search(out), out
    assert not MARKUP.search(out.replace("[red]old[/red]", "").replace("[bold]deploy[/]", "")), out


def test_plan_in_a_pipe_prints_no_markup(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    plan = tminus("plan", "runbook.yaml", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    out = plan.stdout
    assert "[red]" not in out.replace("Drop the [red]old[/red] table", ""), out
    assert "Point of no return: Drop the [red]old[/red] table" in out, out
    assert "[bold]deploy[/] [phase 1]" in out, out  # the runbook's own text, not markup
    _plain(out)


def test_show_history_and_status_in_a_pipe_print_no_markup(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    run = tminus("run", "runbook.yaml", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    _plain(run.stdout + run.stderr)
    run_id = re.findall(r"\d{8}-\d{6}-\d{3}-[0-9a-f]{10}", run.stderr)[0]
    for args in (("show", run_id), ("history",), ("status",), ("why", run_id), ("validate", "runbook.yaml")):
        proc = tminus(*args, cwd=tmp_path)
        assert proc.returncode == 0, (args, proc.stderr)
        _plain(proc.stdout)
    show = tminus("show", run_id, cwd=tmp_path).stdout
    assert f"Run {run_id}: plain in default · run" in show
    assert "Outcome: completed (exit 0)" in show
