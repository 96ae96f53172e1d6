"""A `kill -9` while a group of HTTP checks runs on the event loop (their events written in grouped
transactions), then `tminus resume`: the checks run again, nothing else does, the chain verifies and
no execution has two `step.finished`."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from tests.crash_sweep import cli, spawn

from helpers_kinds import Server, http_server, json_response

CHECKS = 120  # 240 events of a section: more than one grouped transaction (recorder.GROUP_EVENTS)


@pytest.fixture
def server() -> Iterator[Server]:
    with http_server() as srv:

        @srv.route("GET", "/health")
        def health(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            return json_response(200, {"ok": True})

        yield srv


def _runbook(server: Server) -> str:
    check = f'{{http: "{server.url}/health", expect: [\'jsonpath "$.ok" == true\']}}'
    return ("name: http-crash\ngates:\n  - name: g\n    checks:\n" + f"      - {check}\n" * CHECKS
            + "phases:\n  - name: p\n    steps:\n      - run: 'echo ran >> log'\n"
            + "verify:\n" + f"  - {check}\n" * CHECKS)


def _events(directory: Path) -> list[tuple[str, str | None, str]]:
    db = sqlite3.connect(directory / ".tminus" / "ledger.db")
    try:
        return list(db.execute("SELECT type, step_key, data FROM tminus_events ORDER BY lseq"))
    finally:
        db.close()


def _run_id(directory: Path) -> str:
    db = sqlite3.connect(directory / ".tminus" / "ledger.db")
    try:
        (run_id,) = db.execute("SELECT id FROM tminus_runs").fetchone()
        return str(run_id)
    finally:
        db.close()


@pytest.mark.parametrize("at", [f"step.finished:{CHECKS // 2}", f"step.finished:{CHECKS + 1 + CHECKS // 2}"],
                         ids=["gates", "verify"])
def test_killed_mid_group_then_resumed(server: Server, tmp_path: Path, at: str) -> None:
    (tmp_path / "runbook.yaml").write_text(_runbook(server))
    proc = spawn(tmp_path, "run", "runbook.yaml", "--no-input", env={"TMINUS_TEST_CRASH_AT": at})
    assert proc.wait(timeout=120) == -signal.SIGKILL
    crashed = _events(tmp_path)
    section = "gate:" if at.endswith(f":{CHECKS // 2}") else "verify"
    mine = [(t, k) for t, k, data in crashed
            if t.startswith("step.") and json.loads(data).get("section", "").startswith(section)]
    ended = [k for t, k in mine if t == "step.finished"]
    assert len(ended) < min(CHECKS, len([k for t, k in mine if t == "step.started"]))  # killed mid-group
    run_id = _run_id(tmp_path)

    resumed = cli(tmp_path, "resume", run_id, "--no-input")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert cli(tmp_path, "ledger", "verify").returncode == 0
    assert (tmp_path / "log").read_text().split() == ["ran"]  # the phase's step ran once, before or after

    finished = Counter((key, json.loads(data)["execution"]) for t, key, data in _events(tmp_path)
                       if t == "step.finished")
    assert finished and max(finished.values()) == 1  # no execution finished twice
    events = _events(tmp_path)
    assert events[-1][0] == "run.finished" and json.loads(events[-1][2])["status"] == "completed"
    # every check of the crashed section has a finished execution after the resume
    keys = {key for t, key, data in events
            if t == "step.started" and json.loads(data).get("section", "").startswith(section)}
    done = {key for (key, _n) in finished}
    assert keys <= done
