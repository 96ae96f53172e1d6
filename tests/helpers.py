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


# A runbook of real `run:` steps whose markers show what ran and what was undone; the undo of a phase
# that never ran fails (`rm` of a missing file), so a rollback that undid too much ends rollback_failed.
THREE_PHASES = """
    name: marked
    phases:
      - name: one
        steps:
          - run: "touch one; echo one >> log"
            undo: [{run: "rm one; echo undo-one >> log"}]
      - name: two
        steps:
          - run: "touch two; echo two >> log"
            undo: [{run: "rm two; echo undo-two >> log"}]
      - name: three
        steps:
          - run: "touch three; echo three >> log"
            undo: [{run: "rm three; echo undo-three >> log"}]
    verify:
      - name: all there
        run: "test -e one && test -e two && test -e three"
        after_rollback: false
"""


def session(tmp_path: Path, ledger: Any, policy: Any = None) -> Any:
    """An in-process Session of `tmp_path/runbook.yaml` (environment default, --no-input)."""
    from tminus.engine.session import Options, Session
    from tminus.runbook.loader import load_runbook

    doc = load_runbook(tmp_path / "runbook.yaml")
    opts = Options(environment="default", operator="tester", no_input=True)
    return Session(doc, ledger, opts, policy=policy)


def events(ledger: Any, run_id: str, type_: str) -> list[Any]:
    return [e for e in ledger.events(run_id) if e.type == type_]


def rehearsal_passed(record: Any, cycles: int, *, fingerprinted: bool = True) -> list[dict[str, Any]]:
    """The cycles of a `tminus rehearse --json` record that passed: kind rehearsal, completed, every
    cycle rolled back, ok, with an RTO and no undo failed; fingerprints compared and equal (or, for a
    runbook with nothing to fingerprint, nothing compared and no source)."""
    assert (record["kind"], record["status"], record["verdict"]) == ("rehearsal", "completed", "passed"), record
    found: list[dict[str, Any]] = record["cycles"]
    assert len(found) == cycles, found
    for cycle in found:
        assert cycle["ok"] and not cycle["problems"], cycle
        assert cycle["status"] == "rolled_back" and cycle["rto_s"] > 0 and not cycle["undo_failed"], cycle
        prints = cycle["fingerprints"]
        if fingerprinted:
            assert prints["equal"] is True and prints["sources"] and not prints["differences"], prints
        else:
            assert prints["equal"] is None and not prints["sources"], prints
        assert not prints["errors"], prints
    return found
