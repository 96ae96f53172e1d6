"""`tminus rehearse` as a command: exit codes, the --json record, the printed report, and the refusal
in an environment that requires rehearsals. The cycles themselves: tests/integration/test_rehearse.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.helpers import run_json, tminus, write_runbook
from tests.helpers_db import run_sql

from tminus.ledger import open_reader

# The column is added; the undo forgets to drop it. Production requires a rehearsal in staging.
RUNBOOK = """
    name: notes-change
    vars:
      db: "{url}"
    environments:
      staging: {{}}
      production: {{}}
    decision:
      mode: auto
      require_rehearsal: {{environment: staging}}
    gates:
      - name: state
        checks:
          - fingerprint: {{url: "{{{{ vars.db }}}}", tables: [notes]}}
    phases:
      - name: schema
        budget: 30s
        steps:
          - name: add column
            sql: {{url: "{{{{ vars.db }}}}", query: "ALTER TABLE notes ADD COLUMN extra text", write: true}}
            undo:
              - run: "true"
      - name: data
        steps:
          - name: add row
            sql: {{url: "{{{{ vars.db }}}}", query: "INSERT INTO notes VALUES (2)", write: true}}
            undo:
              - sql: {{url: "{{{{ vars.db }}}}", query: "DELETE FROM notes WHERE id = 2", write: true}}
"""


@pytest.fixture
def project(tmp_path: Path, pg_url: str) -> Path:
    (tmp_path / "url").write_text(pg_url)
    run_sql(pg_url, "CREATE TABLE notes (id int PRIMARY KEY)", "INSERT INTO notes VALUES (1)")
    # a password in the URL (trust auth ignores it): it must never be printed or recorded
    write_runbook(tmp_path, RUNBOOK.format(url=pg_url.replace("postgres@", "postgres:s3cret-pw@", 1)))
    return tmp_path


@pytest.mark.postgres
def test_an_unrestored_state_exits_12_with_the_record_as_json(project: Path) -> None:
    code, data = run_json("rehearse", "runbook.yaml", "-e", "staging", "--at", "schema", cwd=project)
    assert code == 12, data
    assert (data["status"], data["verdict"], data["exit_code"]) == ("failed", "failed", 12)
    assert data["runbook"] == "notes-change" and data["environment"] == "staging"
    assert set(data["procedure_hashes"]) == {"staging", "production"} and data["all_phases"] is False
    assert data["options"] == {"at": ["schema"], "fault": "fail", "roll_forward": False}
    assert set(data["timing"]) == {"total_s", "runs_s", "fingerprint_s", "overhead_s"}
    assert [c["at"] for c in data["planned"]] == ["schema"]
    (cycle,) = data["cycles"]
    assert cycle["status"] == "rolled_back" and cycle["ok"] is False and cycle["rto_s"] > 0
    assert "column notes.extra is new (not in the earlier fingerprint)" in cycle["fingerprints"]["differences"]
    assert data["rehearsal_id"] and data["kind"] == "rehearsal" and data["ledger"].startswith("sqlite:///")
    assert [s["url"] for s in data["fingerprint_sources"]] == [data["cycles"][0]["fingerprints"]["sources"][0]["url"]]
    assert ":***@" in data["fingerprint_sources"][0]["url"] and "s3cret-pw" not in json.dumps(data)

    # the printed report, and the progress lines on stderr (the same ledger, found in the folder), once
    # the column the faulty undo left behind is dropped (else adding it again fails the first phase)
    run_sql((project / "url").read_text(), "ALTER TABLE notes DROP COLUMN extra")
    proc = tminus("rehearse", "runbook.yaml", "-e", "staging", "--at", "schema", cwd=project)
    assert proc.returncode == 12, proc.stderr
    assert "▶ cycle 1/1: fail after phase 'schema'" in proc.stderr
    assert "✗ cycle 1: rolled_back, RTO " in proc.stderr and "state differs" in proc.stderr
    assert "fingerprints DIFFER (1 source):\n" in proc.stdout, proc.stdout
    assert "  table notes: content differs (1 rows, same count)\n" in proc.stdout, proc.stdout
    assert "1 of 1 cycle(s) failed; cycle 1 (fail after phase 'schema'): state not restored" in proc.stdout
    assert "s3cret-pw" not in proc.stdout + proc.stderr
    with open_reader(f"sqlite:///{project / '.tminus' / 'ledger.db'}") as reader:  # the record's events
        recorded = json.dumps([e.data for e in reader.events(data["rehearsal_id"])], default=str)
    assert "fingerprints" in recorded and "s3cret-pw" not in recorded


def test_refused_in_production_and_for_unknown_phases_with_nothing_recorded(tmp_path: Path) -> None:
    project = tmp_path  # refused before any database is touched: this one does not exist
    write_runbook(project, RUNBOOK.format(url="postgresql+psycopg://postgres@127.0.0.1:5432/nowhere"))
    proc = tminus("rehearse", "runbook.yaml", "-e", "production", cwd=project)
    assert proc.returncode == 2
    assert "rehearse in staging, not production" in proc.stderr
    proc = tminus("rehearse", "runbook.yaml", "-e", "staging", "--at", "nope", cwd=project)
    assert proc.returncode == 2
    assert "--at nope: no such phase; the runbook's phases: 'schema', 'data'" in proc.stderr
    # a first phase without undo: nothing can be failed and rolled back
    write_runbook(project, RUNBOOK.format(url="postgresql+psycopg://postgres@127.0.0.1:5432/nowhere")
                  .replace("            undo:\n              - run: \"true\"\n", ""))
    proc = tminus("rehearse", "runbook.yaml", "-e", "staging", cwd=project)
    assert proc.returncode == 2
    assert "nothing to rehearse: no phase comes before the point of no return" in proc.stderr
    assert "--roll-forward rehearses the full run" in proc.stderr
    assert not (project / ".tminus").exists()  # no ledger created, no run recorded
