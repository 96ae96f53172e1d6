"""The `migrate` kind through the registry, and `tminus db ...` as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers_kinds import run_step
from tminus.db.migrations.lock import migration_lock
from tminus.db.migrations.migrator import Migrator

FIXTURES = Path(__file__).parent.parent / "fixtures" / "migrations"


@pytest.fixture
def base(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "basic", tmp_path / "migrations")
    return tmp_path


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kind_migrate_and_revert(backend: str, request: pytest.FixtureRequest, base: Path) -> None:
    # A relative SQLite path is relative to the runbook folder.
    url = "sqlite:///app.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    obs = run_step({"migrate": {"url": url, "dir": "migrations", "to": "0002"}}, base)
    assert obs.error is None, obs.error
    assert obs.outputs == {"before": "", "after": "0002", "applied": ["0001", "0002"], "reverted": []}
    assert [v["version"] for v in obs.evidence["versions"]] == ["0001", "0002"]
    assert all(v["duration_ms"] is not None for v in obs.evidence["versions"])
    if backend == "sqlite":
        assert (base / "app.db").exists()

    obs = run_step({"migrate": {"url": url, "dir": "migrations", "dry_run": True}}, base)
    assert obs.error is None and obs.outputs["applied"] == ["0003"] and obs.outputs["after"] == "0003"

    obs = run_step({"migrate": {"url": url, "dir": "migrations", "revert_to": "0001"}}, base)
    assert obs.error is None, obs.error
    assert obs.outputs == {"before": "0002", "after": "0001", "applied": [], "reverted": ["0002"]}


def test_kind_failure_is_an_observation_error(sqlite_url: str, base: Path) -> None:
    (base / "migrations" / "0002_add_orders.sql").write_text("CREATE TABLE orders (id INTEGER);\nSELEC 1;\n")
    obs = run_step({"migrate": {"url": sqlite_url, "dir": "migrations"}}, base)
    assert obs.error is not None and "0002_add_orders.sql failed and was rolled back" in obs.error
    assert obs.evidence["failed_version"] == "0002" and obs.evidence["failed_statement"] == "SELEC 1"


def tminus(*args: str, operator: str = "cli-op") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMINUS_OPERATOR": operator}
    return subprocess.run([sys.executable, "-m", "tminus", "db", *args], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_cli_migrate_dry_run_then_json(pg_url: str, base: Path) -> None:
    d = str(base / "migrations")
    p = tminus("migrate", d, "--url", pg_url, "--dry-run")
    assert p.returncode == 0, p.stderr
    assert "would apply 0001 0001_create_users.sql (2 statements)" in p.stdout
    assert "dry run: nothing changed" in p.stdout

    p = tminus("migrate", d, "--url", pg_url, "--to", "0002", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["ok"] and out["versions"] == ["0001", "0002"] and out["after"] == "0002"


def test_cli_status_verify_revert(pg_url: str, base: Path) -> None:
    d = str(base / "migrations")
    with Migrator(pg_url, d, operator="cli-op") as m:
        m.migrate(to="0002")
    p = tminus("status", d, "--url", pg_url, "--json")
    assert p.returncode == 0, p.stderr
    st = json.loads(p.stdout)
    assert st["current"] == "0002" and [a["operator"] for a in st["applied"]] == ["cli-op", "cli-op"]
    assert [x["version"] for x in st["pending"]] == ["0003"]

    p = tminus("verify", d, "--url", pg_url)
    assert p.returncode == 0 and "2 applied migration(s) verified" in p.stdout

    p = tminus("revert", d, "--url", pg_url, "--to", "0001")
    assert p.returncode == 0, p.stderr
    assert "reverted 0002 0002_add_orders.down.sql" in p.stdout and "0002 -> 0001" in p.stdout


def test_cli_operator_from_environment(sqlite_url: str, base: Path) -> None:
    p = tminus("migrate", str(base / "migrations"), "--url", sqlite_url, "--to", "1", operator="env-op")
    assert p.returncode == 0, p.stderr
    with Migrator(sqlite_url, base / "migrations") as m:
        assert [a.operator for a in m.status().applied] == ["env-op"]


def test_cli_exits_1_on_drift_with_message(sqlite_url: str, base: Path) -> None:
    d = base / "migrations"
    with Migrator(sqlite_url, d) as m:
        m.migrate()
    (d / "0001_create_users.sql").write_text("CREATE TABLE users (id INTEGER PRIMARY KEY);\n")
    for cmd in ("verify", "status"):
        p = tminus(cmd, str(d), "--url", sqlite_url)
        assert p.returncode == 1, (cmd, p.stdout, p.stderr)
        assert "0001_create_users.sql changed after it was applied" in p.stderr
    p = tminus("migrate", str(d), "--url", sqlite_url, "--json")
    assert p.returncode == 1 and json.loads(p.stdout)["type"] == "DriftError"


def test_cli_durations(sqlite_url: str, base: Path) -> None:
    d = str(base / "migrations")
    with Migrator(sqlite_url, d) as m, migration_lock(m.engine, m.tables, 5, "another migrator"):
        # a duration like every other tminus option, and plain seconds as before
        for value, shown in (("500ms", "0.5s"), ("1", "1s")):
            p = tminus("migrate", d, "--url", sqlite_url, "--lock-wait", value)
            assert p.returncode == 1, p.stderr
            assert f"held the migration lock for more than {shown} (held by another migrator" in p.stderr
    p = tminus("migrate", d, "--url", sqlite_url, "--lock-wait", "2m", "--lock-timeout", "3s",
               "--statement-timeout", "1m30s", "--to", "0001")
    assert p.returncode == 0, p.stderr
    p = tminus("migrate", d, "--url", sqlite_url, "--lock-wait", "soon")
    assert p.returncode == 2 and "'soon' is not a duration" in p.stderr
