"""kill -9 while a `migrate` step applies into an adopted table (the application's own shape), then
`tminus resume RUN --rollback`: the version cut short left neither its row in the application's
table nor tminus's side row (one transaction), and the rollback reverts exactly what the step
applied, deleting the rows it wrote: the application's table and the schema are as before the run."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from tests.e2e.test_migrate_kill_revert import FIXTURES, MIGRATE_KEY, Database, _events, _kill_when, _rollback
from tests.helpers import write_runbook

RUNBOOK = """
    name: slow-adopted-migrate
    phases:
      - name: schema
        steps:
          - name: apply the migrations the application's way
            migrate:
              url: "{{ env.DB_URL }}"
              dir: migrations
              table: schema_migrations
              columns: {version: version, applied_at: applied_at}
              lock_wait: 30s
          - name: after the migrations
            run: "touch after-started; while [ ! -f release ]; do sleep 0.05; done"
"""


class AppDatabase(Database):
    """The application's table: versions recorded as file names; tminus's side tables left out of
    the dump (they are tminus's history, and appear with the first apply)."""

    def app_versions(self) -> list[str]:
        sql = "SELECT version FROM schema_migrations ORDER BY version"
        try:
            if self.dialect == "postgresql":
                import psycopg

                with psycopg.connect(self.libpq()) as conn:
                    return [r[0] for r in conn.execute(sql).fetchall()]
            db = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=0.2)
            try:
                return [r[0] for r in db.execute(sql).fetchall()]
            finally:
                db.close()
        except Exception:  # SQLite busy: not yet
            return []

    def app_dump(self) -> list[str]:
        if self.dialect == "sqlite":
            return [line for line in self.dump() if "tminus_" not in line]
        self.wait_idle()
        out = []
        for part in ("--schema-only", "--data-only"):
            text = subprocess.run(["pg_dump", part, "--no-owner", "--exclude-table=tminus_*", self.libpq()],
                                  capture_output=True, text=True, check=True).stdout
            lines = text.splitlines()
            out.extend(lines if part == "--schema-only" else sorted(lines))
        return [line for line in out if not line.startswith(("\\restrict", "\\unrestrict"))]


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> AppDatabase:
    if request.param == "postgresql":
        return AppDatabase(request.getfixturevalue("pg_url"), "postgresql")
    return AppDatabase(f"sqlite:///{tmp_path / 'app.db'}", "sqlite")


def _prepare(tmp_path: Path, db: AppDatabase) -> tuple[dict[str, str], list[str]]:
    """The application applied 0001 and recorded it its way, before the run."""
    shutil.copytree(FIXTURES / db.dialect, tmp_path / "migrations")
    write_runbook(tmp_path, RUNBOOK)
    first = (tmp_path / "migrations" / "0001_accounts.sql").read_text()
    statements = [s for s in first.split(";") if s.strip()]
    record = ("CREATE TABLE schema_migrations (version VARCHAR(255) PRIMARY KEY, applied_at VARCHAR(40))",
              "INSERT INTO schema_migrations VALUES ('0001_accounts.sql', '2026-01-01 00:00:00')")
    if db.dialect == "postgresql":
        import psycopg

        with psycopg.connect(db.libpq()) as conn:
            for stmt in (*statements, *record):
                conn.execute(stmt)  # type: ignore[call-overload]
    else:
        with sqlite3.connect(db.url.removeprefix("sqlite:///")) as conn:
            for stmt in (*statements, *record):
                conn.execute(stmt)
    return {"DB_URL": db.url}, db.app_dump()


def test_killed_mid_apply_into_an_adopted_table_then_rolled_back(tmp_path: Path, database: AppDatabase) -> None:
    env, before = _prepare(tmp_path, database)
    run_id = _kill_when(tmp_path, env, lambda: "0002_entries.sql" in database.app_versions())
    effects = [e["data"] for e in _events(tmp_path, run_id)
               if e["type"] == "step.effect" and e["step_key"] == MIGRATE_KEY]
    assert [(e["effect"], e["before"]) for e in effects] == [("revert_target", "0001")]
    if database.dialect == "postgresql":
        database.wait_idle()
    assert database.app_versions() == ["0001_accounts.sql", "0002_entries.sql"]  # 0003 cut short: no row

    events = _rollback(tmp_path, run_id, env)
    ends = [e["data"] for e in events if e["type"] == "step.finished" and e["step_key"] == f"{MIGRATE_KEY}.undo[auto]"]
    assert ends and ends[0]["status"] == "ok", ends
    assert ends[0]["outputs"]["reverted"] == ["0002"]
    assert [v.get("proof") for v in ends[0]["evidence"]["versions"]] == ["proven"]
    assert database.app_versions() == ["0001_accounts.sql"]
    assert database.app_dump() == before
