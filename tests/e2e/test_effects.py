"""Effects recorded before a kind acts are what resume and rollback act on, through kill -9 of
tminus itself; a rollback executes the plan it recorded."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import lines, run_json, spawn, tminus, wait_for, write_runbook

from tminus.kinds.transport import group_members, process_start_time

# SQLite has no sleep: a statement that counts for half a minute, inside the migration's transaction.
SLOW = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000000) "
              "SELECT count(*) FROM c;\n",
    # pg_sleep does not notice its client died: keep it short, the revert waits for its locks
    "pg": "SELECT pg_sleep(4);\n",
}


def _events(cwd: Path, run_id: str | None = None) -> list[dict[str, Any]]:
    """The ledger's events as written so far, read without tminus (whose process may be killed)."""
    db = cwd / ".tminus" / "ledger.db"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT run_id, type, step_key, data FROM tminus_events ORDER BY run_id, seq")
            rows = rows.fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    return [{"run_id": r, "type": t, "step_key": k, "data": json.loads(d)} for r, t, k, d in rows
            if run_id is None or r == run_id]


def _run_id(cwd: Path) -> str:
    return str(_events(cwd)[0]["run_id"])


def _end_recorded_group(cwd: Path, run_id: str, key: str) -> None:
    """Kill the process group a killed run left behind, found by its recorded effect."""
    effect = next(e["data"] for e in _events(cwd, run_id) if e["type"] == "step.effect" and e["step_key"] == key)
    if process_start_time(effect["pgid"]) == effect["started"]:
        os.killpg(effect["pgid"], signal.SIGKILL)


def _write_migrations(directory: Path, backend: str, *, slow_down: bool = False) -> None:
    directory.mkdir()
    (directory / "0001_users.sql").write_text("CREATE TABLE users (id INTEGER PRIMARY KEY);\n")
    (directory / "0001_users.down.sql").write_text("DROP TABLE users;\n")
    (directory / "0002_orders.sql").write_text("CREATE TABLE orders (id INTEGER PRIMARY KEY);\n")
    down = (SLOW[backend] if slow_down else "") + "DROP TABLE orders;\n"
    (directory / "0002_orders.down.sql").write_text(down)
    slow = "" if slow_down else SLOW[backend]
    (directory / "0003_slow.sql").write_text(f"CREATE TABLE slow (id INTEGER);\n{slow}")
    (directory / "0003_slow.down.sql").write_text("DROP TABLE slow;\n")


def _db_state(url: str) -> tuple[list[str], set[str]]:
    """(versions in the tracking table, tables) of the database."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            versions = ([r[0] for r in conn.execute(text("SELECT version FROM schema_migrations ORDER BY version"))]
                        if "schema_migrations" in tables else [])
        return versions, tables
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return "sqlite", f"sqlite:///{tmp_path / 'app.db'}"
    return "pg", str(request.getfixturevalue("pg_url"))


def test_kill_during_migrate_then_resume_rollback_reverts_to_the_recorded_version(
        tmp_path: Path, database: tuple[str, str]) -> None:
    backend, url = database
    _write_migrations(tmp_path / "migrations", backend)
    from tminus.db.migrations import Migrator

    with Migrator(url, tmp_path / "migrations") as migrator:  # the database before the run: 0001
        migrator.migrate("0001")
    write_runbook(tmp_path, f"""
        name: migrate-killed
        phases:
          - name: schema
            steps:
              - migrate: {{url: "{url}", dir: migrations}}
    """)
    proc = spawn("run", "runbook.yaml", cwd=tmp_path)
    try:
        # 0002 committed, 0003 running its slow statement: kill tminus mid-step
        wait_for(lambda: "0002" in _db_state(url)[0], timeout=30)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    run_id = _run_id(tmp_path)
    events = _events(tmp_path, run_id)
    key = "phases[0].steps[0]"
    effects = [e for e in events if e["type"] == "step.effect" and e["step_key"] == key]
    assert [e["data"]["effect"] for e in effects] == ["revert_target"]
    assert effects[0]["data"]["before"] == "0001" and effects[0]["data"]["versions"] == ["0002", "0003"]
    assert effects[0]["data"]["target"] == "local" and effects[0]["data"]["execution"] == 1
    assert not [e for e in events if e["type"] == "step.finished"]  # the step never reported where it began

    code, result = run_json("resume", run_id, "--rollback", cwd=tmp_path)
    assert code == 11, result
    versions, tables = _db_state(url)
    assert versions == ["0001"]
    assert "users" in tables and "orders" not in tables and "slow" not in tables
    events = _events(tmp_path, run_id)
    started = next(e for e in events if e["type"] == "rollback.started")
    assert [(s["key"], s["derived"]) for s in started["data"]["steps"]] == [(f"{key}.undo[auto]", True)]
    assert started["data"]["steps"][0]["step"]["migrate"]["revert_to"] == "0001"


def test_kill_during_run_leaves_a_recorded_process_group_that_resume_ends(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: run-killed
        phases:
          - name: p
            steps:
              - name: long
                run: "touch started; sleep 120; echo never"
            undo:
              - run: "echo undone >> log"
    """)
    proc = spawn("run", "runbook.yaml", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    events = _events(tmp_path)
    run_id = str(events[0]["run_id"])
    key = "phases[0].steps[0]"
    assert [e["type"] for e in events if e["step_key"] == key] == ["step.started", "step.effect"]
    effect = next(e["data"] for e in events if e["type"] == "step.effect")
    assert effect["effect"] == "process"
    pgid = effect["pgid"]
    try:
        # the group survived the kill of tminus, and it is the one recorded (not a recycled pid)
        assert group_members(pgid), "the recorded process group is gone"
        assert process_start_time(pgid) == effect["started"] is not None
        assert effect["pid"] == pgid and effect["target"] == "local" and effect["execution"] == 1
        assert effect["command"].startswith("touch started")

        code, result = run_json("resume", run_id, "--rollback", cwd=tmp_path)
        assert code == 11, result
        # resume ended the group before it rolled back, and said so in the ledger
        assert group_members(pgid) == []
        notes = [e for e in _events(tmp_path, run_id) if e["type"] == "note" and e["step_key"] == key]
        assert len(notes) == 1 and notes[0]["data"]["action"] == "interrupted-execution-ended"
        assert f"process group {pgid}" in notes[0]["data"]["message"]
        assert "terminated (SIGTERM)" in notes[0]["data"]["message"]
        types = [e["type"] for e in _events(tmp_path, run_id)]
        assert types.index("note") < types.index("rollback.started")
        assert lines(tmp_path / "log") == ["undone"]
    finally:
        if process_start_time(pgid) == effect["started"]:
            os.killpg(pgid, signal.SIGKILL)


ROLLBACK_RUNBOOK = """
    name: recorded-plan
    phases:
      - name: p
        steps:
          - run: "echo did-a >> log"
            undo:
              - run: "echo undo-a >> log"
          - run: "echo did-b >> log"
            undo:
              - name: slow undo
                idempotent: true
                run: "echo undo-b >> log; [ -f started ] || { touch started; sleep 60; }"
          - run: "exit 1"
"""


def test_resumed_rollback_executes_the_recorded_plan(tmp_path: Path) -> None:
    write_runbook(tmp_path, ROLLBACK_RUNBOOK)
    proc = spawn("run", "runbook.yaml", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    run_id = _run_id(tmp_path)
    _end_recorded_group(tmp_path, run_id, "phases[0].steps[1].undo[0]")
    started = [e for e in _events(tmp_path, run_id) if e["type"] == "rollback.started"]
    assert len(started) == 1
    plan = started[0]["data"]["steps"]
    assert [(s["key"], s["section"], s["derived"]) for s in plan] == [
        ("phases[0].steps[1].undo[0]", "undo:p", False), ("phases[0].steps[0].undo[0]", "undo:p", False)]
    assert plan[1]["step"] == {"run": {"command": "echo undo-a >> log", "shell": "/bin/sh", "env": {}, "output": "text"},
                               "after_rollback": True, "secret_output": False}
    # The runbook's undo is edited after the crash: the rollback goes on with what it planned.
    path = tmp_path / "runbook.yaml"
    path.write_text(path.read_text().replace("echo undo-a", "echo undo-EDITED"))
    code, result = run_json("resume", run_id, "--allow-changed", "--reason", "edited after the crash", cwd=tmp_path)
    assert code == 11, result
    assert lines(tmp_path / "log") == ["did-a", "did-b", "undo-b", "undo-b", "undo-a"]
    again = [e for e in _events(tmp_path, run_id) if e["type"] == "rollback.started"]
    assert again[-1]["data"]["recorded"] is True and again[-1]["data"]["steps"] == plan
    executions = [e["data"]["execution"] for e in _events(tmp_path, run_id)
                  if e["type"] == "step.started" and e["step_key"] == "phases[0].steps[1].undo[0]"]
    assert executions == [1, 2]


def test_interrupted_derived_revert_asks_for_the_operators_choice(tmp_path: Path) -> None:
    _write_migrations(tmp_path / "migrations", "sqlite", slow_down=True)
    (tmp_path / "migrations" / "0003_slow.sql").unlink()
    (tmp_path / "migrations" / "0003_slow.down.sql").unlink()
    write_runbook(tmp_path, """
        name: revert-killed
        phases:
          - name: schema
            steps:
              - migrate: {url: "sqlite:///app.db", dir: migrations}
              - run: "exit 1"
    """)
    url = f"sqlite:///{tmp_path / 'app.db'}"
    proc = spawn("run", "runbook.yaml", cwd=tmp_path)
    revert = "phases[0].steps[0].undo[auto]"
    try:
        wait_for(lambda: any(e["type"] == "step.started" and e["step_key"] == revert for e in _events(tmp_path)),
                 timeout=30)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    run_id = _run_id(tmp_path)
    assert _db_state(url)[0] == ["0001", "0002"]
    refused = tminus("resume", run_id, "--no-input", cwd=tmp_path)
    assert refused.returncode == 15, refused.stderr
    assert revert in refused.stderr and "--retry" in refused.stderr and "--skip" in refused.stderr
    (tmp_path / "migrations" / "0002_orders.down.sql").write_text("DROP TABLE orders;\n")  # quick this time
    code, result = run_json("resume", run_id, "--retry", cwd=tmp_path)
    assert code == 11, result
    versions, tables = _db_state(url)
    assert versions == [] and not {"users", "orders"} & tables
