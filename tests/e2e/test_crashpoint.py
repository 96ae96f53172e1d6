"""The test-only crash point kills tminus right after the append it names, and nothing later is
written (ledger/crashpoint.py); the crash sweep relies on it."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

from tests.crash_sweep import cli, runbook, spawn


def _events(directory: Path) -> list[str]:
    db = sqlite3.connect(directory / ".tminus" / "ledger.db")
    try:
        return [t for (t,) in db.execute("SELECT type FROM tminus_events ORDER BY lseq")]
    finally:
        db.close()


def test_killed_after_the_named_append_and_its_occurrence(tmp_path: Path) -> None:
    (tmp_path / "runbook.yaml").write_text(runbook(fail=True))
    proc = spawn(tmp_path, "run", "runbook.yaml", "--no-input", env={"TMINUS_TEST_CRASH_AT": "step.finished:2"})
    assert proc.wait(timeout=60) == -signal.SIGKILL
    events = _events(tmp_path)
    assert events[-1] == "step.finished" and events.count("step.finished") == 2
    assert "end s2" in (tmp_path / "log").read_text() and "start s3" not in (tmp_path / "log").read_text()


def test_group_kill_at_an_index_and_the_count_of_a_clean_run(tmp_path: Path) -> None:
    (tmp_path / "runbook.yaml").write_text(runbook(fail=True))
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "runbook.yaml").write_text(runbook(fail=True))
    assert cli(clean, "run", "runbook.yaml", "--no-input",
               env={"TMINUS_TEST_CRASH_LOG": str(clean / "appends")}).returncode == 11
    counted = [line.split()[1] for line in (clean / "appends").read_text().splitlines()]
    assert counted == _events(clean)  # every append of the run, in order
    at = counted.index("rollback.started") + 1
    proc = spawn(tmp_path, "run", "runbook.yaml", "--no-input", env={"TMINUS_TEST_CRASH_AT": f"group:{at}"})
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert _events(tmp_path) == counted[:at]
