"""Leases nobody will release, and a broken live one, with the real `tminus` command.

A crash between a run's final status and its lease release, or between the lease INSERT and the run
row, is simulated by writing the state it leaves into the real ledger (SQL); the next `tminus run`
must reclaim the lease, and say so in the ledger, instead of refusing with exit 14."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import run_json, spawn, tminus, wait_for, write_runbook

RUNBOOK = """
    name: reclaim
    phases:
      - name: p
        steps:
          - run: "echo ran >> log"
"""
KEY = "reclaim@default"


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def crashed_lease(directory: Path, run_id: str) -> None:
    """The lease row of a holder killed before it released it (its pid is gone)."""
    now = time.time()
    with sqlite3.connect(directory / ".tminus" / "ledger.db") as db:
        db.execute("INSERT INTO tminus_leases (key, run_id, operator, host, pid, acquired_at, heartbeat_at, ttl, "
                   "token, generation) VALUES (?, ?, 'tester', ?, ?, ?, ?, 15.0, 'crashed', 99)",
                   (KEY, run_id, os.uname().nodename, dead_pid(), now - 5, now - 1))


def notes(directory: Path, run_id: str) -> list[dict[str, object]]:
    code, shown = run_json("show", run_id, cwd=directory)
    assert code == 0
    return [e["data"] for e in shown["events"] if e["type"] == "note"]


def first_run(directory: Path) -> str:
    write_runbook(directory, RUNBOOK)
    done = tminus("run", "runbook.yaml", "--json", cwd=directory)
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["run_id"])


def test_a_finished_runs_leftover_lease_is_reclaimed_with_a_note_on_both_runs(tmp_path: Path) -> None:
    ended = first_run(tmp_path)
    crashed_lease(tmp_path, ended)  # as if killed after run.finished, before the release
    again = tminus("run", "runbook.yaml", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    new = json.loads(again.stdout)["run_id"]
    assert (tmp_path / "log").read_text() == "ran\nran\n"
    (old_note,) = notes(tmp_path, ended)
    assert old_note["action"] == "lease-reclaimed" and old_note["taken_by"] == new
    (new_note,) = notes(tmp_path, new)
    assert new_note["action"] == "lease-reclaimed" and ended in str(new_note["message"])
    assert tminus("ledger", "verify", cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / ".tminus" / "ledger.db") as db:
        assert db.execute("SELECT count(*) FROM tminus_leases").fetchone() == (0,)  # released as usual


def test_a_phantom_lease_is_reclaimed_and_noted_in_the_new_run(tmp_path: Path) -> None:
    first_run(tmp_path)
    crashed_lease(tmp_path, "20260101-000000-dead")  # as if killed between the lease and the run row
    again = tminus("run", "runbook.yaml", "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    new = json.loads(again.stdout)["run_id"]
    (note,) = notes(tmp_path, new)
    assert note["action"] == "lease-reclaimed" and "never recorded" in str(note["message"])
    assert note["holder"]["run_id"] == "20260101-000000-dead"  # type: ignore[index]


def test_unlock_of_a_live_holder_stops_its_step_and_nothing_of_it_lands_after(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: reclaim
        phases:
          - name: p
            steps:
              - run: "sleep 60 & echo $! > child; touch started; wait"
              - run: "touch second"
    """)
    holder = spawn("run", "runbook.yaml", "--json", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists() and (tmp_path / "child").read_text().strip() != "")
    child = int((tmp_path / "child").read_text())
    _code, runs = run_json("history", cwd=tmp_path)
    old = runs[0]["id"]
    unlocked = time.monotonic()
    assert tminus("unlock", "runbook.yaml", "-e", "default", "--reason", "taking over", cwd=tmp_path).returncode == 0
    # The heartbeat (every ttl/3 = 5 s) finds the lease gone, the watcher (0.5 s) interrupts the run
    # and the stop channel kills the step's process group: bounded by about 6 s.
    assert holder.wait(timeout=30) == 130
    wait_for(lambda: not _alive(child), timeout=5)
    assert time.monotonic() - unlocked < 10
    assert not (tmp_path / "second").exists()
    _code, shown = run_json("show", old, cwd=tmp_path)
    last = shown["events"][-1]
    assert last["type"] == "note" and last["data"]["action"] == "unlock"  # nothing of the holder after it
    assert tminus("ledger", "verify", cwd=tmp_path).returncode == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (reaped by nobody yet) is dead for our purpose
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


