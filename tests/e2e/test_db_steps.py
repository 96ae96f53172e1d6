"""Database steps inside a real run: a migrate step's undo is an automatic revert."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from tests.helpers import run_json, write_runbook

MIGRATIONS = Path(__file__).resolve().parents[1] / "fixtures" / "migrations" / "basic"


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}


def test_failed_phase_reverts_the_migration_it_applied(tmp_path: Path) -> None:
    shutil.copytree(MIGRATIONS, tmp_path / "migrations")
    write_runbook(tmp_path, """
        name: migrate-then-fail
        vars: {db: "sqlite:///app.db"}
        phases:
          - name: base
            steps:
              - migrate: {url: "{{ vars.db }}", dir: migrations, to: "0001"}
          - name: schema
            steps:
              - id: migrate
                migrate: {url: "{{ vars.db }}", dir: migrations}
              - name: smoke test fails
                run: "exit 1"
    """)
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11, result
    tables = _tables(tmp_path / "app.db")
    # both migrate steps were undone, newest first, down to where each started
    assert "users" not in tables and "orders" not in tables
    with sqlite3.connect(tmp_path / "app.db") as conn:
        assert conn.execute("select count(*) from schema_migrations").fetchone()[0] == 0
    code, shown = run_json("show", result["run_id"], cwd=tmp_path)
    reverts = [e["step_key"] for e in shown["events"] if e["type"] == "step.finished" and "undo[auto]" in e["step_key"]]
    assert reverts == ["phases[1].steps[0].undo[auto]", "phases[0].steps[0].undo[auto]"]


def test_completed_migration_stays(tmp_path: Path) -> None:
    shutil.copytree(MIGRATIONS, tmp_path / "migrations")
    write_runbook(tmp_path, """
        name: migrate-ok
        phases:
          - name: schema
            steps:
              - migrate: {url: "sqlite:///app.db", dir: migrations}
        verify:
          - sql: {url: "sqlite:///app.db", query: "select max(version) from schema_migrations"}
            expect: ['scalar == "0003"']
    """)
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 0, result
    assert {"users", "orders"} <= _tables(tmp_path / "app.db")


@pytest.mark.parametrize("retry", ["", "retry: {attempts: 2, interval: 0s}"], ids=["once", "retried"])
def test_partly_failed_migration_is_reverted(tmp_path: Path, retry: str) -> None:
    shutil.copytree(MIGRATIONS, tmp_path / "migrations")
    # 0001 and 0002 commit, then 0003 fails (in its own transaction: rolled back)
    (tmp_path / "migrations" / "0003_orders_index.sql").write_text("CREATE INDEX orders_user_idx ON nowhere (x);\n")
    write_runbook(tmp_path, f"""
        name: migrate-partly
        phases:
          - name: schema
            steps:
              - id: migrate
                migrate: {{url: "sqlite:///app.db", dir: migrations}}
                {retry}
    """)
    code, result = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 11 and result["status"] == "rolled_back", result
    assert "0003_orders_index.sql failed" in result["reason"]
    # a retry starts at 0002; the revert still goes back to where the first attempt started
    assert not {"users", "orders"} & _tables(tmp_path / "app.db")
    with sqlite3.connect(tmp_path / "app.db") as conn:
        assert conn.execute("select count(*) from schema_migrations").fetchone() == (0,)
        log = conn.execute("select version, action, outcome from schema_migrations_log order by rowid").fetchall()
    assert log[:2] == [("0001", "apply", "ok"), ("0002", "apply", "ok")]
    assert log[-2:] == [("0002", "revert", "ok"), ("0001", "revert", "ok")]
    code, shown = run_json("show", result["run_id"], cwd=tmp_path)
    failed = next(e for e in shown["events"] if e["type"] == "step.finished" and e["step_key"] == "phases[0].steps[0]")
    assert failed["data"]["evidence"]["before"] == "" and failed["data"]["evidence"]["applied"] == (
        ["0001", "0002"] if not retry else [])


def test_migrations_are_recorded_under_the_runs_operator(tmp_path: Path) -> None:
    shutil.copytree(MIGRATIONS, tmp_path / "migrations")
    write_runbook(tmp_path, """
        name: migrate-operator
        phases:
          - name: schema
            steps:
              - migrate: {url: "sqlite:///app.db", dir: migrations, to: "0002"}
    """)
    # TMINUS_OPERATOR says "tester" (tests.helpers); --operator must win, as in the ledger
    code, result = run_json("run", "runbook.yaml", "--operator", "alice", cwd=tmp_path)
    assert code == 0, result
    with sqlite3.connect(tmp_path / "app.db") as conn:
        assert conn.execute("select distinct operator from schema_migrations").fetchall() == [("alice",)]
        assert conn.execute("select distinct operator from schema_migrations_log").fetchall() == [("alice",)]
