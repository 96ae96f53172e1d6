"""Every command that only reads leaves the SQLite ledger byte-identical and never creates one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.helpers import tminus, write_runbook

RUNBOOK = """
    name: readonly
    phases:
      - name: p
        steps:
          - run: "echo hello"
"""


def files(folder: Path) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.iterdir())}


def test_read_commands_leave_the_ledger_byte_identical(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    done = tminus("run", "runbook.yaml", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    ledger_dir = tmp_path / ".tminus"
    before = files(ledger_dir)
    assert list(before) == ["ledger.db"]

    for args, code in ((("show", run_id), 0), (("show", run_id, "--json"), 0), (("history",), 0),
                       (("history", "--json"), 0), (("status",), 0), (("status", "--json"), 0),
                       (("why", run_id), 0), (("why", run_id, "--json"), 0), (("ledger", "verify"), 0),
                       (("ledger", "verify", run_id, "--json"), 0), (("replay", run_id), 1)):
        result = tminus(*args, cwd=tmp_path)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        after = files(ledger_dir)
        assert after["ledger.db"] == before["ledger.db"], args
        wal = ledger_dir / "ledger.db-wal"
        assert not wal.exists() or wal.stat().st_size == 0, args  # SQLite's empty WAL beside a reader

    assert "intact" in tminus("ledger", "verify", cwd=tmp_path).stdout


def test_read_commands_never_create_a_ledger(tmp_path: Path) -> None:
    status = tminus("status", cwd=tmp_path)
    assert status.returncode == 0 and "No active runs" in status.stdout, status.stderr
    assert json.loads(tminus("status", "--json", cwd=tmp_path).stdout) == []
    history = tminus("history", cwd=tmp_path)
    assert history.returncode == 0 and "No runs yet" in history.stdout, history.stderr
    assert json.loads(tminus("history", "--json", cwd=tmp_path).stdout) == []
    for args in (("show", "x"), ("why", "x"), ("replay", "x"), ("ledger", "verify")):
        result = tminus(*args, cwd=tmp_path)
        assert result.returncode == 1, (args, result.stderr)
        assert "no ledger at sqlite:///.tminus/ledger.db" in result.stderr, (args, result.stderr)
    assert list(tmp_path.iterdir()) == []
