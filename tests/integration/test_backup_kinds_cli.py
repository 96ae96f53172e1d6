"""The backup/restore/fingerprint kinds through the registry, and `tminus db ...` as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.helpers_db import run_sql

from helpers_kinds import run_step

SEED = ("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", "INSERT INTO notes VALUES (1, 'a'), (2, 'b')")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    u: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    run_sql(u, *SEED)
    return u


def test_kinds_backup_damage_restore_compare(url: str, tmp_path: Path) -> None:
    env = {"TMINUS_ENVIRONMENT": "staging"}
    before = run_step({"fingerprint": {"url": url}}, tmp_path)
    assert before.error is None and not before.failures
    assert before.values["tables"] == 1 and before.values["rows"] == 2
    fp = before.outputs["fingerprint"]

    obs = run_step({"backup": {"url": url, "dir": "backups", "keep": 2, "drill": True}}, tmp_path, environ=env)
    assert obs.error is None, obs.error
    assert obs.values["verified"] is True and obs.values["bytes"] > 0
    assert obs.values["drill_seconds"] is not None
    path = Path(obs.outputs["path"])
    assert path.parent == tmp_path / "backups" and "-staging-" in path.name
    assert obs.outputs["sha256"] == obs.values["sha256"]
    assert "dump_seconds" in obs.evidence and "verify_seconds" in obs.evidence

    run_sql(url, "DELETE FROM notes WHERE id = 1")
    # compare_to as a template renders it: a JSON string
    changed = run_step({"fingerprint": {"url": url, "compare_to": json.dumps(fp)}}, tmp_path)
    assert changed.error is None
    assert changed.failures == ["table notes: 2 rows vs 1 rows"]

    # the deletion is a write since the backup: nobody to ask, so the restore refuses and says so
    refused = run_step({"restore": {"url": url, "file": str(path.relative_to(tmp_path))}}, tmp_path)
    assert refused.values["restored"] is False and refused.evidence["needs_operator"] is True
    assert "notes: 1 removed (keys 1)" in (refused.error or ""), refused.error
    restored = run_step({"restore": {"url": url, "file": str(path.relative_to(tmp_path)),
                                     "accept_loss": "the test damaged it on purpose"}}, tmp_path)
    assert restored.error is None, restored.error
    assert restored.evidence["loss_decision"] == "accepted by the runbook: the test damaged it on purpose"
    assert restored.values["restored"] is True and restored.outputs["seconds"] >= 0

    after = run_step({"fingerprint": {"url": url, "compare_to": fp}}, tmp_path)
    assert after.error is None and after.failures == []
    # a Python-literal rendering (template without | tojson) is accepted too
    again = run_step({"fingerprint": {"url": url, "compare_to": str(fp)}}, tmp_path)
    assert again.failures == []


def test_backup_kind_label_default_and_relative_sqlite(tmp_path: Path) -> None:
    run_sql(f"sqlite:///{tmp_path / 'app.db'}", *SEED)
    obs = run_step({"backup": {"url": "sqlite:///app.db", "dir": "b"}}, tmp_path, environ={})
    assert obs.error is None, obs.error
    assert Path(obs.outputs["path"]).name.startswith("app-default-")


def test_restore_kind_refuses_corrupt_file(tmp_path: Path, sqlite_url: str) -> None:
    run_sql(sqlite_url, *SEED)
    obs = run_step({"backup": {"url": sqlite_url, "dir": "b", "label": "x"}}, tmp_path)
    path = Path(obs.outputs["path"])
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    run_sql(sqlite_url, "DELETE FROM notes")
    bad = run_step({"restore": {"url": sqlite_url, "file": str(path)}}, tmp_path)
    assert bad.error is not None and "corrupt" in bad.error
    assert bad.values["restored"] is False


def test_fingerprint_kind_rejects_bad_compare_to(tmp_path: Path, sqlite_url: str) -> None:
    run_sql(sqlite_url, *SEED)
    obs = run_step({"fingerprint": {"url": sqlite_url, "compare_to": "not a fingerprint"}}, tmp_path)
    assert obs.error is not None and "compare_to is not a fingerprint" in obs.error


def tminus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tminus", "db", *args], capture_output=True, text=True,
                          timeout=60)


def test_cli_backup_fingerprint_restore(url: str, tmp_path: Path) -> None:
    fp = tminus("fingerprint", "--url", url, "--json")
    assert fp.returncode == 0, fp.stderr
    before: dict[str, Any] = json.loads(fp.stdout)
    assert before["notes"]["rows"] == 2

    made = tminus("backup", "--url", url, "--dir", str(tmp_path / "b"), "--label", "cli", "--keep", "3", "--json")
    assert made.returncode == 0, made.stderr
    result = json.loads(made.stdout)
    assert result["verified"] is True and Path(result["path"]).exists()

    run_sql(url, "DROP TABLE notes")
    done = tminus("restore", result["path"], "--url", url)
    assert done.returncode == 0, done.stderr
    assert "restored" in done.stdout
    assert json.loads(tminus("fingerprint", "--url", url, "--json").stdout) == before

    plain = tminus("fingerprint", "--url", url, "--tables", "notes")
    assert plain.returncode == 0 and "notes" in plain.stdout and "2 rows" in plain.stdout


def test_cli_errors_exit_1_with_message(tmp_path: Path, sqlite_url: str) -> None:
    run_sql(sqlite_url, *SEED)
    wrong = tminus("restore", str(tmp_path / "missing.db"), "--url", sqlite_url)
    assert wrong.returncode == 1 and "does not exist" in wrong.stderr
    made = tminus("backup", "--url", sqlite_url, "--dir", str(tmp_path), "--json")
    path = json.loads(made.stdout)["path"]
    refused = tminus("restore", path, "--url", sqlite_url, "--sha256", "ab" * 32)
    assert refused.returncode == 1 and "nothing was restored" in refused.stderr
    bad_url = tminus("fingerprint", "--url", "mysql://u:hunter2@h/db")
    assert bad_url.returncode == 1 and "PostgreSQL and SQLite" in bad_url.stderr
    assert "hunter2" not in bad_url.stderr
