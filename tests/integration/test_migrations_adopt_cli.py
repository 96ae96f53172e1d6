"""An adopted migrations table through `tminus db ...` and inside a real run (apply, then the
rollback's automatic revert), against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from tests.helpers import run_json, tminus, write_runbook

FIXTURES = Path(__file__).parent.parent / "fixtures" / "migrations"
APP = "CREATE TABLE schema_migrations (version VARCHAR(255) PRIMARY KEY, applied_at VARCHAR(40))"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def base(tmp_path: Path, url: str) -> Path:
    """The application's database: its own table, 0001 applied by the application itself."""
    shutil.copytree(FIXTURES / "basic", tmp_path / "migrations")
    sql(url, APP, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)",
        "INSERT INTO schema_migrations VALUES ('0001_create_users.sql', '2026-01-02 03:04:05')",
        "INSERT INTO users VALUES (1, 'a@example.com')")
    return tmp_path


def sql(url: str, *statements: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            out: list[tuple[object, ...]] = []
            for stmt in statements:
                result = conn.execute(text(stmt))
                out = [tuple(r) for r in result] if result.returns_rows else []
            return out
    finally:
        engine.dispose()


def app_rows(url: str) -> list[tuple[object, ...]]:
    return sql(url, "SELECT version, applied_at FROM schema_migrations ORDER BY version")


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def db(*args: str, cwd: Path) -> tuple[int, str, str]:
    proc = tminus("db", *args, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


ADOPT = ("--column", "version=version", "--column", "applied_at=applied_at")


def test_cli_status_verify_read_only_then_stamp(url: str, base: Path) -> None:
    before, before_tables = app_rows(url), tables(url)
    code, out, err = db("status", "migrations", "--url", url, *ADOPT, cwd=base)
    assert code == 0, err
    assert "tracking table: schema_migrations (adopted: version=version, applied_at=applied_at" in out
    assert "applied  0001 create_users  2026-01-02 03:04:05  [unchecked]" in out
    assert "pending  0002 add_orders" in out
    code, out, err = db("verify", "migrations", "--url", url, *ADOPT, "--json", cwd=base)
    assert code == 0, err
    data = json.loads(out)
    assert data["ok"] and data["current"] == "0001" and data["adopted"]["side"] == "tminus_schema_migrations"
    assert data["applied"][0]["recorded"] == "0001_create_users.sql"
    assert app_rows(url) == before and tables(url) == before_tables

    # the upgrade path's last step: a table of tminus's own, stamped where the adopted one is
    code, out, err = db("stamp", "migrations", "--url", url, "--table", "tminus_migrations", "--to", "0001",
                        cwd=base)
    assert code == 0, err
    assert "stamped (not run) 0001 0001_create_users.sql" in out
    code, out, err = db("migrate", "migrations", "--url", url, "--table", "tminus_migrations", "--json", cwd=base)
    assert code == 0, err
    assert json.loads(out)["versions"] == ["0002", "0003"]
    assert app_rows(url) == before


def test_cli_default_table_of_another_shape(url: str, base: Path) -> None:
    code, out, err = db("status", "migrations", "--url", url, cwd=base)
    assert code == 1
    assert "tracking table schema_migrations exists but is not tminus's" in err
    assert "found:    version (VARCHAR(255)), applied_at (VARCHAR(40))" in err
    assert "--column version=version --column applied_at=applied_at" in err
    assert 'column "name" does not exist' not in err and "check --url" not in err
    code, out, err = db("migrate", "migrations", "--url", url, "--json", cwd=base)
    assert code == 1 and json.loads(out)["type"] == "ShapeError"


@pytest.mark.parametrize(("flag", "says"), [
    ("version", "expected NOTION=COLUMN"), ("verison=v", "unknown column notion 'verison'"),
    ("name=n", "needs 'version'"), ("version=a b", "not a plain column name"), ("=v", "expected NOTION=COLUMN"),
])
def test_cli_careless_columns(flag: str, says: str, tmp_path: Path) -> None:
    (tmp_path / "migrations").mkdir()
    code, _, err = db("status", "migrations", "--url", "sqlite:///x.db", "--column", flag, cwd=tmp_path)
    assert code == 2 and says in err, err
    assert not (tmp_path / "x.db").exists()


def test_run_applies_in_the_tables_shape_and_the_rollback_reverts(url: str, base: Path) -> None:
    before = app_rows(url)
    write_runbook(base, f"""
        name: adopt
        phases:
          - name: schema
            steps:
              - id: migrate
                migrate:
                  url: "{url}"
                  dir: migrations
                  table: schema_migrations
                  columns: {{version: version, applied_at: applied_at}}
              - name: the new tables are recorded the application's way
                sql:
                  url: "{url}"
                  query: "SELECT count(*) FROM schema_migrations WHERE version LIKE '%.sql'"
                expect: ["scalar == 3"]
              - name: smoke test fails
                run: "exit 1"
    """)
    code, result = run_json("run", "runbook.yaml", cwd=base)
    assert code == 11 and result["status"] == "rolled_back", result
    assert app_rows(url) == before  # the revert removed exactly the rows it wrote
    assert "orders" not in tables(url) and "users" in tables(url)
    assert sql(url, "SELECT count(*) FROM tminus_schema_migrations") == [(0,)]
    code, shown = run_json("show", result["run_id"], cwd=base)
    applied = [e["data"]["evidence"] for e in shown["events"]
               if e["type"] == "step.finished" and e.get("step_key") == "phases[0].steps[0]"]
    assert applied[0]["adopted"] == {"table": "schema_migrations", "side": "tminus_schema_migrations",
                                     "columns": {"version": "version", "applied_at": "applied_at"}}
    assert [v["version"] for v in applied[0]["versions"]] == ["0002", "0003"]
    plan = tminus("plan", "runbook.yaml", cwd=base)
    assert "tracked in schema_migrations (adopted: version=version, applied_at=applied_at)" in plan.stdout, plan


def test_run_on_a_table_of_another_shape_fails_clearly_and_changes_nothing(url: str, base: Path) -> None:
    before, before_tables = app_rows(url), tables(url)
    write_runbook(base, f"""
        name: forgot-columns
        phases:
          - name: schema
            steps:
              - migrate: {{url: "{url}", dir: migrations}}
    """)
    code, result = run_json("run", "runbook.yaml", cwd=base)
    assert code == 11, result
    proc = tminus("why", result["run_id"], cwd=base)
    assert "exists but is not tminus's" in proc.stdout + proc.stderr, proc.stdout
    assert "columns: {version: version, applied_at: applied_at}" in proc.stdout + proc.stderr
    assert app_rows(url) == before and tables(url) == before_tables


def test_the_side_tables_are_the_runs_own_for_a_restore(url: str, base: Path) -> None:
    """A restore after an adopted migrate was reverted: the rows left in tminus_schema_migrations_log
    are the run's own bookkeeping, not writes someone would lose (no question under --no-input)."""
    write_runbook(base, f"""
        name: backup-adopt-restore
        phases:
          - name: change
            steps:
              - id: backup
                backup: {{url: "{url}", dir: backups}}
                undo:
                  - restore: {{url: "{url}", file: "{{{{ steps.backup.path }}}}"}}
              - migrate:
                  url: "{url}"
                  dir: migrations
                  columns: {{version: version, applied_at: applied_at}}
              - run: "false"
    """)
    before = app_rows(url)
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=base)
    assert (code, result["status"]) == (11, "rolled_back"), result
    assert app_rows(url) == before
    code, shown = run_json("show", result["run_id"], cwd=base)
    restored = [e["data"]["evidence"] for e in shown["events"]
                if e["type"] == "step.finished" and e.get("step_key") == "phases[0].steps[0].undo[0]"]
    assert restored and restored[-1]["loss_decision"] == "nothing written since the backup"
    assert {t["table"].split(".")[-1] for t in restored[-1]["run_own_changes"]} >= {"tminus_schema_migrations_log"}
