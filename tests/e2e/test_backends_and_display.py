"""The ledger on the local PostgreSQL through the real CLI, and what an operator sees on a TTY."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import run_json, tminus, write_runbook

RUNBOOK = """
    name: backends
    gates:
      - name: g
        checks: [{run: "true"}]
    phases:
      - name: one
        budget: 1m
        steps: [{run: "echo hello"}]
        undo: [{run: "true"}]
"""


def test_run_with_the_ledger_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    write_runbook(tmp_path, RUNBOOK)
    env = {"TMINUS_LEDGER": pg_url}
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path, env=env)
    assert code == 0, result
    assert result["ledger"].startswith("postgresql")
    code, shown = run_json("show", result["run_id"], cwd=tmp_path, env=env)
    assert shown["run"]["status"] == "completed"
    assert shown["events"][0]["type"] == "run.started"
    assert [(r["id"], r["status"]) for r in shown["sections"]] == [
        ("gates", "ok"), ("phase:one", "ok"), ("decision", "ok")]
    one = shown["sections"][1]
    assert (one["budget"], one["planned_start"], one["over_budget"], one["steps"]) == (60.0, 0, None, {"ok": 1})
    assert tminus("ledger", "verify", cwd=tmp_path, env=env).returncode == 0
    assert not (tmp_path / ".tminus").exists()  # nothing fell back to SQLite


def test_plain_lines_when_not_a_tty(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    proc = tminus("run", "runbook.yaml", cwd=tmp_path)
    assert proc.returncode == 0
    assert "\x1b[" not in proc.stderr  # no escape codes in CI logs
    assert "▶ phase:one (budget 1.0m" in proc.stderr or "▶ phase:one (budget 1m00s" in proc.stderr
    assert "✓ run step" in proc.stderr


def test_live_display_on_a_tty(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK.replace('echo hello', 'sleep 1; echo hello'))
    pid, fd = pty.fork()
    if pid == 0:  # child: the real CLI on a pseudo-terminal
        os.chdir(tmp_path)
        os.environ["TMINUS_OPERATOR"] = "tty-tester"
        os.execv(sys.executable, [sys.executable, "-m", "tminus", "run", "runbook.yaml", "--no-input"])
    output = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    text = output.decode(errors="replace")
    assert "\x1b[" in text  # colour and a live footer
    assert "T+0:00:0" in text
    assert "phase:one" in text
    assert "COMPLETED" in text


def test_version_is_fast_path() -> None:
    out = subprocess.run([sys.executable, "-m", "tminus", "--version"], capture_output=True, text=True)
    assert out.stdout.startswith("tminus ")
