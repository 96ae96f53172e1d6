"""Helpers for tests that drive the real `tminus` command as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

TMINUS = [sys.executable, "-m", "tminus"]


def write_runbook(directory: Path, text: str, name: str = "runbook.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def tminus(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60,
           input: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "TMINUS_OPERATOR": "tester", **(env or {})}
    return subprocess.run(
        [*TMINUS, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
        input=input, stdin=None if input is not None else subprocess.DEVNULL,
    )


def spawn(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {**os.environ, "TMINUS_OPERATOR": "tester", **(env or {})}
    return subprocess.Popen(
        [*TMINUS, *args], cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True,
    )


def run_json(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, Any]:
    proc = tminus(*args, "--json", cwd=cwd, env=env)
    try:
        data = json.loads(proc.stdout)
    except ValueError as exc:
        raise AssertionError(f"not JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from exc
    return proc.returncode, data


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def wait_for_approval_request(cwd: Path, step_key: str | None = None) -> str:
    """Poll `tminus status` until a run waits for an operator (optionally for `step_key`); its id."""
    found: list[str] = []

    def asked() -> bool:
        _code, rows = run_json("status", cwd=cwd)
        for row in rows:
            if row["waiting_for"] and (step_key is None or step_key in row["waiting_for"]):
                found.append(row["run_id"])
                return True
        return False

    wait_for(asked)
    return found[0]
