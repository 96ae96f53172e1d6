"""Database steps inside a real run: a migrate step's undo is an automatic revert."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

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
