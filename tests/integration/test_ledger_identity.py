"""require_second_person: a second person is another OS identity (user@host), not another --operator.

The run and the approvals are real `tminus` processes; the second person is a real second OS account
(tests/helpers_identity.py), on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import spawn, tminus, wait_for, write_runbook
from tests.helpers_identity import second_user, shared_folder, tminus_as

from tminus.ledger import open_ledger, open_reader

RUNBOOK = """
name: four-eyes
phases:
  - name: deploy
    steps:
      - run: "echo v2 > version"
decision:
  mode: manual
  timeout: 60s
  require_second_person: true
"""


@pytest.fixture
def folder(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The runbook and (on SQLite) the ledger in a folder the second account can reach and write."""
    with shared_folder() as shared:
        if url.startswith("sqlite"):
            url = f"sqlite:///{shared / 'ledger.db'}"
        open_ledger(url).close()  # created now: the file made writable for both before the run opens it
        for made in shared.iterdir():
            made.chmod(0o666)  # SQLite gives its -wal and -shm files the database file's mode
        monkeypatch.setenv("TMINUS_LEDGER", url)
        write_runbook(shared, RUNBOOK)
        yield shared


def local_identity() -> str:
    """This test's OS identity, as tminus must record it: user@host."""
    return f"{pwd.getpwuid(os.geteuid()).pw_name}@{socket.gethostname()}"


def events(run_id: str, type_: str) -> list[Any]:
    with open_reader() as reader:
        return [e for e in reader.events(run_id) if e.type == type_]


def waiting_run(folder: Path) -> tuple[subprocess.Popen[str], str]:
    proc = spawn("run", "runbook.yaml", "--json", "--yes", cwd=folder, env={"TMINUS_OPERATOR": "alice"})
    found: list[str] = []

    def asked() -> bool:
        with open_reader() as reader:
            runs = reader.list_runs(runbook="four-eyes")
            found[:] = [r.id for r in runs if any(e.type == "approval.requested" for e in reader.events(r.id))]
        return bool(found)

    wait_for(asked)
    return proc, found[0]


def test_the_same_os_user_with_another_operator_is_refused_and_noted(folder: Path) -> None:
    proc, run_id = waiting_run(folder)
    try:
        posing = tminus("approve", run_id, "--operator", "bob", cwd=folder)
        assert posing.returncode == 1 and "second person" in posing.stderr, posing.stderr
        (request,) = events(run_id, "approval.requested")
        assert request.data["identity"] == local_identity() and request.data["operator"] == "alice"
        assert "--operator bob does not make another person" in posing.stderr
        (note,) = [n for n in events(run_id, "note") if n.data.get("action") == "self-approval-refused"]
        assert (note.data["by"], note.data["identity"]) == ("bob", local_identity())
        with open_reader() as reader:
            assert reader.approvals(run_id) == []  # nothing the run could take as an answer
        # Written straight into the ledger (an older tminus, a script), the run ignores it and says so.
        with open_ledger() as ledger:
            ledger.record_approval(run_id, "decision", approved=True, by="bob", host="h", identity=local_identity())
            ledger.record_approval(run_id, "decision", approved=True, by="carol", host="h")  # no identity
        wait_for(lambda: len([n for n in events(run_id, "note")
                              if n.data.get("action") == "self-approval-refused"]) == 3)
        assert proc.poll() is None  # still waiting for a second person
    finally:
        proc.kill()
        proc.communicate()


def test_another_os_user_is_a_second_person(folder: Path) -> None:
    with second_user() as bob:
        proc, run_id = waiting_run(folder)
        try:
            answer = tminus_as(bob, "approve", run_id, "--reason", "dashboards green", cwd=folder)
            assert answer.returncode == 0, answer.stderr
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, out + err
    assert json.loads(out)["status"] == "completed"
    bob_identity = f"{bob}@{local_identity().split('@', 1)[1]}"
    (given,) = events(run_id, "approval.given")
    assert (given.data["by"], given.data["identity"], given.data["how"]) == (bob, bob_identity, "approve-command")
    with open_reader() as reader:
        (approval,) = reader.approvals(run_id)
    assert (approval.by, approval.identity) == (bob, bob_identity)
