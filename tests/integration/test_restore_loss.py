"""A restore never discards writes made since the backup without a decision: real SQLite and
PostgreSQL databases, the comparison itself, and whole runs through the real `tminus` command
(a write after the backup, then a failure: the rollback's restore stops, proceeds when the
runbook declares maintenance or accepts the loss, or asks the operator, answered by `tminus approve`
from a second process)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from tests.helpers import run_json, spawn, tminus, wait_for, wait_for_approval_request, write_runbook
from tests.helpers_db import run_sql

from tminus.db import pgtools
from tminus.db.backup import backup
from tminus.db.restore import LossRefused, restore
from tminus.db.writes import TableLoss, sqlite_losses


def bodies(url: str) -> list[str]:
    if pgtools.backend(url) == "sqlite":
        conn = sqlite3.connect(pgtools.sqlite_path(url))
        try:
            return [r[0] for r in conn.execute("SELECT body FROM notes ORDER BY id")]
        finally:
            conn.close()
    with psycopg.connect(**pgtools.pg_target(url).connect_kwargs(), autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT body FROM notes ORDER BY id")]


SEED = ("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
        "CREATE TABLE tags (name TEXT)",  # no primary key: compared as a multiset
        "INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c')", "INSERT INTO tags VALUES ('x'), ('x')")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    u: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    run_sql(u, *SEED)
    return u


# --- the comparison ----------------------------------------------------------------------------


def test_writes_after_the_backup_are_named_a_new_column_is_not(url: str, tmp_path: Path) -> None:
    made = backup(url, tmp_path / "b", label="t")
    run_sql(url, "ALTER TABLE notes ADD COLUMN author TEXT DEFAULT 'anon'")  # the run's migration: no loss
    seen: list[TableLoss] = []

    def note(losses: list[TableLoss]) -> bool:
        seen.extend(losses)
        return True

    restore(url, made.path, guard=note)
    assert seen == []  # restored: nothing but the new column differed

    made = backup(url, tmp_path / "b", label="t")
    run_sql(url, "INSERT INTO notes (id, body) VALUES (4, 'written during the run')",
            "UPDATE notes SET body = 'B' WHERE id = 2", "DELETE FROM notes WHERE id = 3",
            "DELETE FROM tags WHERE name = 'x' AND 1 = 1" if pgtools.backend(url) == "postgresql"
            else "DELETE FROM tags WHERE rowid = (SELECT min(rowid) FROM tags)",
            "CREATE TABLE audit (what TEXT)", "INSERT INTO audit VALUES ('e1'), ('e2')")

    def refuse(losses: list[TableLoss]) -> bool:
        raise LossRefused("no", losses)

    with pytest.raises(LossRefused) as caught:
        restore(url, made.path, guard=refuse)
    found = {t.table: t for t in caught.value.losses}
    assert set(found) == {"notes", "tags", "audit"}
    assert (found["notes"].added, found["notes"].changed, found["notes"].removed) == (1, 1, 1)
    assert found["notes"].describe() == "notes: 1 added, 1 changed, 1 removed (keys 4, 2, 3)"
    assert found["tags"].removed >= 1 and found["tags"].added == 0
    assert found["audit"].new_table and found["audit"].added == 2
    assert "written during the run" in bodies(url)  # refused: the database is as it was


def test_sqlite_losses_compares_rows_not_counts(tmp_path: Path) -> None:
    """Same count, other content: a row replaced is named."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    run_sql(url, *SEED)
    made = backup(url, tmp_path / "b", label="t")
    run_sql(url, "DELETE FROM notes WHERE id = 3", "INSERT INTO notes VALUES (5, 'e')")
    (loss,) = sqlite_losses(tmp_path / "app.db", made.path)
    assert (loss.table, loss.added, loss.removed, loss.examples) == ("notes", 1, 1, ["5", "3"])


# --- through runs ------------------------------------------------------------------------------


def runbook(url: str, restore_extra: str = "") -> str:
    return f"""
        name: loss
        phases:
          - name: change
            steps:
              - name: back up
                id: backup
                backup: {{url: "{url}", dir: backups}}
              - name: migrate
                sql: {{url: "{url}", query: "ALTER TABLE notes ADD COLUMN author TEXT DEFAULT 'anon'", write: true}}
                undo:
                  - name: restore the backup
                    restore: {{url: "{url}", file: "{{{{ steps.backup.path }}}}"{restore_extra}}}
              - name: a user writes through the old release
                sql: {{url: "{url}", query: "INSERT INTO notes (id, body) VALUES (4, 'mine')", write: true}}
              - name: the change fails
                run: "false"
    """


RESTORE = "phases[0].steps[1].undo[0]"


def events(cwd: Path, run_id: str, key: str) -> list[dict[str, Any]]:
    code, shown = run_json("show", run_id, cwd=cwd)
    assert code == 0, shown
    return [e for e in shown["events"] if e.get("step_key") == key]


def finished(cwd: Path, run_id: str) -> dict[str, Any]:
    done = [e for e in events(cwd, run_id, RESTORE) if e["type"] == "step.finished"]
    return dict(done[-1]["data"])


def test_no_input_stops_the_rollback_before_the_loss_exit_15(url: str, tmp_path: Path) -> None:
    write_runbook(tmp_path, runbook(url))
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert (code, result["status"]) == (15, "needs_operator"), result
    assert "1 row(s) written since the backup" in result["reason"] and "notes: 1 added (keys 4)" in result["reason"]
    assert "maintenance: true" in result["reason"] and f"--step {RESTORE}" in result["reason"]
    assert bodies(url) == ["a", "b", "c", "mine"]  # not restored
    data = finished(tmp_path, result["run_id"])
    assert data["evidence"]["written_since_backup"][0]["added"] == 1
    assert data["evidence"]["loss_decision"] == "refused by tester (no-input)"
    assert "nobody could answer (--no-input)" in result["reason"]
    why = tminus("why", result["run_id"], cwd=tmp_path)
    assert "its rollback is not finished" in why.stdout and "nothing was undone" not in why.stdout, why.stdout
    # the operator decides later: resume asks again; --yes approves the loss (recorded as such)
    code, resumed = run_json("resume", result["run_id"], "--yes", cwd=tmp_path)
    assert (code, resumed["status"]) == (11, "rolled_back"), resumed
    assert bodies(url) == ["a", "b", "c"]
    assert finished(tmp_path, result["run_id"])["evidence"]["loss_decision"] == "discarded, approved by tester (--yes)"


@pytest.mark.parametrize("extra, decision", [
    (", maintenance: true", "maintenance: the service took no writes, the differences are the run's own"),
    (", accept_loss: 'test data only'", "accepted by the runbook: test data only"),
    (", run_tables: [notes]", "nothing written since the backup"),  # the run's own table: expected
])
def test_declared_maintenance_or_accepted_loss_restores_and_records(
        url: str, tmp_path: Path, extra: str, decision: str) -> None:
    write_runbook(tmp_path, runbook(url, extra))
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert (code, result["status"]) == (11, "rolled_back"), result
    assert bodies(url) == ["a", "b", "c"]
    evidence = finished(tmp_path, result["run_id"])["evidence"]
    assert evidence["loss_decision"] == decision
    assert evidence["discarded"][0]["table"] == "notes" and evidence["discarded"][0]["added"] == 1


def test_no_writes_no_stop(sqlite_url: str, tmp_path: Path) -> None:
    run_sql(sqlite_url, *SEED)
    write_runbook(tmp_path, runbook(sqlite_url).replace("(id, body) VALUES (4, 'mine')", "SELECT 1 WHERE 0"))
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert (code, result["status"]) == (11, "rolled_back"), result
    evidence = finished(tmp_path, result["run_id"])["evidence"]
    assert evidence["loss_decision"] == "nothing written since the backup"


@pytest.mark.parametrize("answer", ["approve", "refuse"])
def test_the_operator_decides_from_a_second_process(url: str, tmp_path: Path, answer: str) -> None:
    write_runbook(tmp_path, runbook(url))
    run = spawn("run", "runbook.yaml", cwd=tmp_path)
    try:
        run_id = wait_for_approval_request(tmp_path, RESTORE)
        asked = [e for e in events(tmp_path, run_id, RESTORE) if e["type"] == "approval.requested"]
        assert "Restoring discards 1 row(s) written since the backup" in asked[0]["data"]["prompt"]
        assert "notes: 1 added (keys 4)" in asked[0]["data"]["prompt"]
        extra = ["--no-go", "--reason", "keep the customer's note"] if answer == "refuse" else []
        if answer == "approve":  # another note arrives while the operator decides: asked again about both
            run_sql(url, "INSERT INTO notes (id, body) VALUES (5, 'meanwhile')")
            given = tminus("approve", run_id, "--step", RESTORE, "--operator", "olga", cwd=tmp_path)
            assert given.returncode == 0, given.stderr

            def asked_again() -> bool:
                return len([e for e in events(tmp_path, run_id, RESTORE) if e["type"] == "approval.requested"]) == 2
            wait_for(asked_again)
            again = [e for e in events(tmp_path, run_id, RESTORE) if e["type"] == "approval.requested"][-1]
            assert "Restoring discards 2 row(s)" in again["data"]["prompt"] and "keys 4, 5" in again["data"]["prompt"]
        given = tminus("approve", run_id, "--step", RESTORE, "--operator", "olga", *extra, cwd=tmp_path)
        assert given.returncode == 0, given.stderr
        code = run.wait(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    evidence = finished(tmp_path, run_id)["evidence"]
    if answer == "approve":
        assert code == 11
        assert bodies(url) == ["a", "b", "c"]
        assert evidence["loss_decision"] == "discarded, approved by olga (approve-command)"
        assert evidence["discarded"][0]["added"] == 2
    else:
        assert code == 12  # refused on purpose: the rollback stops; `resume` asks again
        assert bodies(url) == ["a", "b", "c", "mine"]
        assert evidence["loss_decision"] == "refused by olga (approve-command)"
        assert evidence["loss_approval"]["reason"] == "keep the customer's note"


def test_plan_says_what_each_restore_discards(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    write_runbook(tmp_path, runbook(url))
    code, plan = run_json("plan", "runbook.yaml", cwd=tmp_path)
    assert code == 0, plan
    (loss,) = plan["data_loss"]
    assert loss["key"] == RESTORE and loss["guarded"] is None
    assert loss["message"].startswith("restoring discards writes after T+0:00 (backup step 'backup', phase 'change')")
    assert "maintenance mode" in loss["message"]
    shown = tminus("plan", "runbook.yaml", cwd=tmp_path)
    assert "Data safety: restore the backup" in shown.stdout and "declare `maintenance: true`" in shown.stdout
    write_runbook(tmp_path, runbook(url, ", maintenance: true"))
    _code, plan = run_json("plan", "runbook.yaml", cwd=tmp_path)
    assert plan["data_loss"][0]["guarded"] == "maintenance"
    assert "the runbook declares maintenance" in plan["data_loss"][0]["message"]
