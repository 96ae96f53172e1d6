"""`tminus why` and `tminus replay` as an operator runs them: real subprocesses over a real SQLite ledger.

One run's events are written through the ledger API exactly as the engine records a monitor
rollback; another run is made end to end by `tminus run`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tminus.events import Event
from tminus.ledger import open_ledger

pytestmark = pytest.mark.usefixtures("_no_key")

TMINUS = str(Path(sys.executable).parent / "tminus")
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()
RID = "20261123-120000-beef"
SAT = 'jsonpath "$.database_pool.state.saturation" >= {}'
RUNBOOK = """
name: pool-upgrade
phases:
  - name: cutover
    steps:
      - name: switch pool
        run: "true"
        undo:
          - name: switch back
            run: "true"
monitor:
  duration: 10m
  interval: 1m
  probes:
    - name: health
      http: http://127.0.0.1:9/health
  rules:
    - name: pool saturated
      when: '{}'
      consecutive: 3
      action: rollback
"""


def tminus(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TMINUS_LEDGER", "TMINUS_LEDGER_KEY")}
    return subprocess.run([TMINUS, *args], cwd=cwd, env={**env, "TMINUS_OPERATOR": "tester"}, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def iso(offset: float) -> str:
    return datetime.fromtimestamp(T0 + offset, UTC).isoformat(timespec="milliseconds")


def recorded_events() -> list[tuple[str, float, str | None, dict[str, Any]]]:
    """What the engine records when `pool saturated` fires on 0.5, 0.91, 0.93, 0.95 and the run rolls back."""
    undo_key = "phases[0].steps[0].undo[0]"
    out: list[tuple[str, float, str | None, dict[str, Any]]] = [
        ("run.started", 0, None, {"operator": "alice", "host": "h1", "runbook": "pool-upgrade"}),
        ("section.started", 10, None, {"section": "phase:cutover", "phase": "cutover", "budget": None}),
        ("step.finished", 11, "phases[0].steps[0]", {"name": "switch pool", "kind": "run", "section": "phase:cutover",
                                                     "status": "ok", "verdicts": [], "evidence": {"exit_code": 0}}),
        ("section.finished", 12, None, {"section": "phase:cutover", "ok": True, "actual": 2.0, "budget": None}),
        ("decision", 20, "decision", {"mode": "auto", "verdict": "go", "criteria": [], "reason": "every check passed"}),
        ("monitor.started", 30, None, {
            "stage": "window", "duration": 600, "interval": 60, "probes": ["health"], "cutover_at": T0 + 10,
            "rules": [{"name": "pool saturated", "probe": "health", "action": "rollback", "text": SAT.format("0.90")}],
        }),
    ]
    for i, value in enumerate([0.5, 0.91, 0.93, 0.95]):
        at = 60.0 * (i + 1)
        out.append(("monitor.sample", at, "monitor.probes[0]", {
            "probe": "health", "stage": "window", "at": T0 + at, "error": None, "duration_ms": 3.2,
            "values": {"status": 200, "json": {"database_pool": {"state": {"saturation": value}}}},
        }))
    move = {"rule": "pool saturated", "probe": "health", "action": "rollback"}
    out += [
        ("monitor.transition", 120, None, {**move, "from": "ok", "to": "pending", "at": T0 + 120,
                                           "reason": "probe 1/3: 0.91 >= 0.90"}),
        ("monitor.transition", 240, None, {**move, "from": "pending", "to": "firing", "at": T0 + 240,
                                           "reason": "probe 3/3: 0.95 >= 0.90"}),
        ("monitor.action", 240, None, {"rule": "pool saturated", "action": "rollback",
                                       "reason": "probe 3/3: 0.95 >= 0.90", "outcome": "done"}),
        ("monitor.finished", 240, None, {"stage": "window", "ok": False, "outcome": "rollback",
                                         "reason": "pool saturated fired", "samples": 4}),
        ("rollback.started", 241, None, {"section": "rollback", "reason": "monitor rule 'pool saturated' fired",
                                         "steps": [{"key": undo_key, "name": "switch back"}]}),
        ("step.finished", 242, undo_key, {"name": "switch back", "kind": "run", "section": "undo:cutover",
                                          "status": "ok", "verdicts": [], "evidence": {"exit_code": 0}}),
        ("rollback.finished", 243, None, {"section": "rollback", "ok": True, "undone": [undo_key]}),
        ("run.finished", 244, None, {"status": "rolled_back", "exit_code": 11, "reason": "monitor rule fired"}),
    ]
    return out


@pytest.fixture
def ledger_url(tmp_path: Path, sqlite_url: str) -> str:
    """A real ledger holding RID; the runbook file on disk has since been edited (threshold 0.50)."""
    stored = RUNBOOK.format(SAT.format("0.90"))
    (tmp_path / "runbook.yaml").write_text(RUNBOOK.format(SAT.format("0.50")))
    with open_ledger(sqlite_url) as ledger:
        ledger.create_run(run_id=RID, runbook_name="pool-upgrade", runbook_path=str(tmp_path / "runbook.yaml"),
                          content_hash=hashlib.sha256(stored.encode()).hexdigest(), runbook_text=stored,
                          environment="prod", operator="alice", host="h1", pid=4242)
        for type_, offset, key, data in recorded_events():
            ledger.append(Event(type_, RID, data, key, at=iso(offset)))
        ledger.set_status(RID, "rolled_back", exit_code=11, reason="monitor rule fired", finished=True)
        ledger.create_run(run_id="20261123-130000-0000", runbook_name="pool-upgrade", runbook_path="/gone.yaml",
                          content_hash="0", runbook_text=stored, environment="prod", operator="alice", host="h1",
                          pid=1)
        ledger.append(Event("run.started", "20261123-130000-0000", {}, at=iso(0)))
    return sqlite_url


def test_why_explains_a_monitor_rollback(tmp_path: Path, ledger_url: str) -> None:
    proc = tminus("why", RID, "--ledger", ledger_url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.splitlines()[1].startswith(f"ROLLED BACK (exit 11). Run {RID} rolled back because monitor rule "
                                          "'pool saturated' fired; 1 undo/rollback step ran")
    assert ("At 12:04:00 (T+4m00s) monitor rule 'pool saturated' fired (jsonpath \"$.database_pool.state.saturation\""
            " >= 0.90): probe 3/3: 0.95 >= 0.90; its action is rollback.") in out
    assert "The last samples it read: 12:01:00 0.5, 12:02:00 0.91, 12:03:00 0.93, 12:04:00 0.95." in out
    assert "At 12:04:02 (T+4m02s) 'switch back' (undo of phase 'cutover'): ok." in out

    data = json.loads(tminus("why", RID[:15], "--ledger", ledger_url, "--json", cwd=tmp_path).stdout)
    assert (data["status"], data["exit_code"], data["causes"][0]["kind"]) == ("rolled_back", 11, "monitor")
    assert data["undone"][0]["name"] == "switch back" and data["monitor"]["samples"] == 4
    assert data["decision"]["verdict"] == "go"


def test_replay_uses_the_stored_runbook_and_never_writes(tmp_path: Path, ledger_url: str) -> None:
    with open_ledger(ledger_url) as ledger:
        before = ledger.get_run(RID)
    proc = tminus("replay", RID, "--ledger", ledger_url, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    # the file on disk says 0.50 (it would fire at 12:03:00); the run ran with 0.90 and fired at 12:04:00
    assert data["differs"] is False
    assert (data["replayed"]["outcome"], data["replayed"]["clock"]) == ("rollback", "12:04:00")
    expected = [(T0 + 120, "ok", "pending"), (T0 + 240, "pending", "firing")]
    for which in ("recorded", "replayed"):
        assert [(t["at"], t["from"], t["to"]) for t in data["rules"][0][which]] == expected
    assert data["rules"][0]["changed"] is False

    changed = tminus("replay", RID, "--set", "pool saturated.threshold=0.96", "--ledger", ledger_url, cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    assert ("Replayed outcome: no rule fires on the 4 recorded samples (the run stopped sampling at "
            "12:04:00 (T+4m00s) when it rolled back)") in changed.stdout
    assert "The replay DIFFERS from the recorded run." in changed.stdout
    with open_ledger(ledger_url) as ledger:
        after = ledger.get_run(RID)
        assert ledger.verify(RID) == []
    assert after == before


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["pool.threshold=1"], "no rule named like that; the rules are: 'pool saturated'"),
        (["pool saturated.limit=1"], "has no field 'limit'; fields: threshold, when, for, consecutive"),
        (["pool saturated.consecutive=0"], "consecutive must be a whole number >= 1"),
    ],
)
def test_replay_refuses_a_bad_set_with_exit_2(tmp_path: Path, ledger_url: str, sets: list[str], message: str) -> None:
    proc = tminus("replay", RID, *[a for s in sets for a in ("--set", s)], "--ledger", ledger_url, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and proc.stdout == ""


def test_replay_without_samples_and_why_of_an_unknown_run_exit_1(tmp_path: Path, ledger_url: str) -> None:
    proc = tminus("replay", "20261123-130000-0000", "--ledger", ledger_url, cwd=tmp_path)
    assert proc.returncode == 1
    assert "the run recorded no monitor samples" in proc.stderr
    missing = tminus("why", "19990101", "--ledger", ledger_url, cwd=tmp_path)
    assert missing.returncode == 1 and "no run '19990101'" in missing.stderr


def test_a_real_failed_run_is_explained(tmp_path: Path, sqlite_url: str) -> None:
    (tmp_path / "runbook.yaml").write_text(textwrap.dedent("""
        name: tiny
        phases:
          - name: deploy
            budget: 1m
            steps:
              - name: write marker
                run: "echo v2 > marker"
                undo:
                  - name: remove marker
                    run: "rm -f marker"
              - name: migrate schema
                run: "echo 'relation users is locked' >&2; exit 3"
        verify:
          - name: marker is gone or current
            run: "true"
    """).lstrip())
    ran = tminus("run", "runbook.yaml", "--ledger", sqlite_url, "--json", cwd=tmp_path)
    assert ran.returncode == 11, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    assert not (tmp_path / "marker").exists()

    proc = tminus("why", run_id, "--ledger", sqlite_url, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "rolled back because step 'migrate schema' (phase 'deploy') failed with exit code 3" in proc.stdout
    assert "runbook.yaml:11:9: exit_code == 0: expected 0, got 3" in proc.stdout
    assert "stderr: relation users is locked" in proc.stdout
    assert "'remove marker' (undo of phase 'deploy'): ok." in proc.stdout
    assert "Verify after the rollback passed (1 check): the service is confirmed back." in proc.stdout

    no_monitor = tminus("replay", run_id, "--ledger", sqlite_url, cwd=tmp_path)
    assert no_monitor.returncode == 1 and "has no monitor rules" in no_monitor.stderr
