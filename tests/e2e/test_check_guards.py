"""Hostile checks through the real `tminus` (issue 9, items 11 and 12): a sql check that tries to
commit and delete, a file check that reads /etc/passwd, refused before a run or failed by it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.helpers import run_json, tminus, write_runbook

EXPLOIT = """
    name: exploit
    gates:
      - name: readiness
        checks:
          - sql: {url: "URL", query: "SELECT 1; COMMIT; DELETE FROM items"}
          - file: {path: ../../../../etc/passwd, contains: root}
    phases:
      - name: change
        steps:
          - run: "touch changed.txt"
"""


def test_validate_refuses_the_exploits_at_their_lines(tmp_path: Path) -> None:
    write_runbook(tmp_path, EXPLOIT.replace("URL", "sqlite:///app.db"))
    proc = tminus("validate", "runbook.yaml", cwd=tmp_path)
    assert proc.returncode == 78, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "runbook.yaml:5:" in out and "one statement" in out
    assert "runbook.yaml:6:" in out and "outside" in out
    assert "Traceback" not in out


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = "sqlite:///app.db"
        with sqlite3.connect(tmp_path / "app.db") as conn:
            conn.executescript("CREATE TABLE items (id INTEGER); INSERT INTO items VALUES (1), (2);")
        return url
    url = str(request.getfixturevalue("pg_url"))
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id INTEGER); INSERT INTO items VALUES (1), (2)")
    engine.dispose()
    return url


def _count(url: str, tmp_path: Path) -> int:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url if not url.startswith("sqlite") else f"sqlite:///{tmp_path / 'app.db'}")
    with engine.connect() as conn:
        n = conn.exec_driver_sql("SELECT count(*) FROM items").scalar_one()
    engine.dispose()
    return int(n)


def test_a_templated_exploit_fails_its_gate_and_deletes_nothing(url: str, tmp_path: Path) -> None:
    """Written where validation cannot see it (a SQL file, a templated path), the run refuses it."""
    (tmp_path / "check.sql").write_text("SELECT 1; COMMIT; DELETE FROM items; COMMIT;\n")
    write_runbook(tmp_path, f"""
        name: exploit
        vars: {{up: ../../../..}}
        gates:
          - name: readiness
            checks:
              - sql: {{url: "{url}", file: check.sql}}
              - file: {{path: "{{{{ vars.up }}}}/etc/passwd", contains: root}}
        phases:
          - name: change
            steps:
              - run: "touch changed.txt"
    """)
    code, result = run_json("run", "runbook.yaml", "--ledger", f"sqlite:///{tmp_path / 'ledger.db'}",
                            cwd=tmp_path)
    assert (code, result["status"]) == (10, "blocked"), result
    assert _count(url, tmp_path) == 2  # "nothing was changed" is true
    assert not (tmp_path / "changed.txt").exists()
    text = "\n".join(result["failures"])
    assert "one statement" in text and "check.sql" in text
    assert "outside" in text
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    shown = tminus("show", "--evidence", "--ledger", ledger, result["run_id"], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "nothing was changed" in shown.stdout and "outside" in shown.stdout
    assert "root:x:0:0" not in shown.stdout  # nothing of /etc/passwd reached the ledger
