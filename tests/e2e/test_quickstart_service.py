"""The quickstart sample service (examples/quickstart): svc.py driven as real subprocesses, a real
HTTP server on a free loopback port, a real SQLite database in a temporary state directory."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers import rehearsal_passed, run_json

from tminus.expect import parse
from tminus.runbook.loader import load_runbook
from tminus.templating.templater import Templater

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"
SVC = QUICKSTART / "service" / "svc.py"
SEED = ["T-10: gates are green", "T-5: backup taken", "T-0: cutover"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """svc.py with its own state directory and port."""

    def __init__(self, state: Path, port: int) -> None:
        self.state = state
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "QUICKSTART_STATE": str(state), "QUICKSTART_PORT": str(port),
                    "QUICKSTART_WARMUP": "0"}

    def __call__(self, *args: str, ok: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, str(SVC), *args], env={**self.env, **env},
                              capture_output=True, text=True, timeout=30)
        if ok:
            assert proc.returncode == 0, f"svc.py {' '.join(args)}: {proc.returncode}\n{proc.stderr}"
        return proc

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5)

    def post(self, path: str, payload: Any) -> httpx.Response:
        return httpx.post(self.url + path, json=payload, timeout=5)

    def pid(self) -> int:
        return int((self.state / "svc.pid").read_text())

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.state / "notes.db")


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    service = Service(tmp_path / "state", free_port())
    service("init")
    try:
        yield service
    finally:
        service("stop", ok=False)  # never leave a server behind, whatever the test did


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    # A reparented server that exited may linger as a zombie until its new parent reaps it.
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def columns(svc: Service) -> list[str]:
    with svc.db() as conn:
        return [row[1] for row in conn.execute("PRAGMA table_info(notes)")]


# --- the service -------------------------------------------------------------------------------


def test_v1_serves_health_readiness_version_and_notes(svc: Service) -> None:
    assert svc("current").stdout == "v1\n"
    svc("start")
    health = svc.get("/health").json()
    assert health == {"status": "ok", "version": "v1", "schema": {"version": 1, "needs": 1},
                      "db": {"notes": 3}}
    ready = svc.get("/readyz")
    assert (ready.status_code, ready.json()["ready"]) == (200, True)
    version = svc.get("/version")
    assert version.json() == {"service": "quickstart", "version": "v1"}
    assert version.headers["X-Release"] == "v1"

    notes = svc.get("/api/notes").json()
    assert [n["body"] for n in notes["notes"]] == SEED
    assert "author" not in notes["notes"][0]
    created = svc.post("/api/notes", {"body": "hello"})
    assert created.status_code == 201 and created.json()["body"] == "hello"
    assert svc.get("/api/notes").json()["count"] == 4
    assert svc.post("/api/notes", {"text": "no body"}).status_code == 400
    assert svc.get("/nope").status_code == 404

    status = svc("status")
    assert "release: v1" in status.stdout and "health:  ok (v1)" in status.stdout


def test_readyz_is_503_while_warming_up_and_when_the_schema_is_behind(svc: Service) -> None:
    svc("start", QUICKSTART_WARMUP="30")
    warming = svc.get("/readyz")
    assert (warming.status_code, warming.json()["reason"]) == (503, "warming up")
    svc("stop")

    svc("switch", "v2")  # without its migration
    svc("start")
    behind = svc.get("/readyz")
    assert behind.status_code == 503
    assert "needs 2" in behind.json()["reason"]
    assert svc.get("/health").json()["status"] == "degraded"


def test_migrate_up_and_down_keeps_the_notes(svc: Service) -> None:
    assert svc("migrate").stdout == "1\n"
    assert svc("migrate", "--to", "3").stdout == "3\n"
    assert columns(svc) == ["id", "body", "created_at", "author", "pinned"]
    assert svc("migrate", "--to", "3").stdout == "3\n"  # idempotent

    newer = svc("migrate", "--to", "2", ok=False)
    assert newer.returncode == 1 and "--down-to 2" in newer.stderr
    assert svc("migrate", "--to", "9", ok=False).returncode == 1

    assert svc("migrate", "--down-to", "1").stdout == "1\n"
    assert columns(svc) == ["id", "body", "created_at"]
    with svc.db() as conn:
        assert [r[0] for r in conn.execute("SELECT body FROM notes ORDER BY id")] == SEED
        assert [r[0] for r in conn.execute("SELECT version FROM schema_version")] == [1]


def test_switch_to_v2_after_its_migration(svc: Service) -> None:
    svc("start")
    svc("migrate", "--to", "2")
    assert svc("switch", "v2").stdout == "v1\n"  # the previous release, for an undo step
    assert svc.get("/version").json()["version"] == "v1"  # until restarted
    svc("stop")
    svc("start")

    assert svc.get("/version").json()["version"] == "v2"
    assert svc.get("/readyz").status_code == 200
    notes = svc.get("/api/notes").json()["notes"]
    assert [(n["body"], n["author"]) for n in notes] == [(b, "anonymous") for b in SEED]
    assert svc.post("/api/notes", {"body": "signed", "author": "ops"}).json()["author"] == "ops"
    assert svc.get("/health").json()["status"] == "ok"


def test_v3_starts_and_is_ready_but_its_notes_api_fails(svc: Service) -> None:
    svc("migrate", "--to", "3")
    svc("switch", "v3")
    svc("start")

    assert svc.get("/readyz").status_code == 200
    notes = svc.get("/api/notes")
    assert notes.status_code == 500
    assert "priority" in notes.json()["error"]
    health = svc.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"


def test_backup_then_destroy_then_restore_brings_the_notes_back(svc: Service, tmp_path: Path) -> None:
    svc("start")
    svc.post("/api/notes", {"body": "written before the backup"})
    out = svc("backup", "--out", str(tmp_path / "b" / "before.db")).stdout.strip()
    assert out == str(tmp_path / "b" / "before.db") and Path(out).is_file()

    svc("migrate", "--to", "3")
    with svc.db() as conn:
        conn.execute("DELETE FROM notes")
    assert svc.get("/api/notes").json()["count"] == 0

    svc("restore", "--from", out)  # while the server runs
    assert svc("migrate").stdout == "1\n"
    notes = svc.get("/api/notes").json()
    assert [n["body"] for n in notes["notes"]] == [*SEED, "written before the backup"]

    (tmp_path / "junk.db").write_text("not a database")
    assert svc("restore", "--from", str(tmp_path / "junk.db"), ok=False).returncode == 1
    assert svc("restore", "--from", str(tmp_path / "missing.db"), ok=False).returncode == 1
    assert svc.get("/api/notes").json()["count"] == 4


def test_stop_leaves_no_process_and_is_idempotent(svc: Service) -> None:
    svc("start")
    pid = svc.pid()
    again = svc("start")  # already running: a no-op
    assert "already running" in again.stderr and svc.pid() == pid

    svc("stop")
    assert not running(pid)
    assert not (svc.state / "svc.pid").exists()
    with pytest.raises(httpx.ConnectError):
        svc.get("/health")
    assert "not running" in svc("stop").stderr
    assert svc("status", ok=False).returncode == 3


def test_start_refuses_a_port_in_use_and_reports_a_crash(svc: Service) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", svc.port))
        other.listen()
        taken = svc("start", ok=False)
    assert taken.returncode == 1 and "in use" in taken.stderr
    assert not (svc.state / "svc.pid").exists()

    (svc.state / "notes.db").unlink()  # the server exits at once: start says so
    crashed = svc("start", ok=False)
    assert crashed.returncode == 1 and "init" in crashed.stderr
    assert not (svc.state / "svc.pid").exists()


def test_switch_to_an_unknown_release_fails(svc: Service) -> None:
    bad = svc("switch", "v9", ok=False)
    assert bad.returncode == 1 and "v1, v2, v3" in bad.stderr
    assert svc("current").stdout == "v1\n"


# --- the runbook -------------------------------------------------------------------------------


def test_runbook_validates_and_every_expectation_parses() -> None:
    rb = load_runbook(QUICKSTART / "runbook.yaml").runbook
    assert set(rb.environments) == {"local", "production"}
    assert rb.environments["production"].env.forbidden == {"QUICKSTART_DEBUG": "1"}
    templater = Templater(vars=rb.vars, environ={}, secrets=[], run={"id": "r1"})
    outputs = {"previous": {"json": {"version": "v1"}}, "notes_before": {"scalar": 3},
               "backup": {"path": "/b.db"}, "notes_content": {"scalar": "1:a"}}
    for step in rb.all_steps():
        templater.render_config(step.config, outputs)
        for text in step.expect or []:
            parse(templater.render(text, outputs))
    version_check = next(s for s in rb.verify if s.http and s.http.url.endswith("/version"))
    assert version_check.after_rollback is False


def test_runbook_cuts_over_to_v2_then_rolls_v3_back(svc: Service, tmp_path: Path) -> None:
    """The demo's two runs, through the real `tminus run`, on a copy of the quickstart folder whose
    state/ is the service's: the backup the undo looks at must lie inside the runbook's folder."""
    shutil.copytree(QUICKSTART, tmp_path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("state", ".tminus", "__pycache__"))
    assert svc.state.parent == tmp_path
    svc("start")
    args = ["run", str(tmp_path / "runbook.yaml"), "-e", "local", "--yes",
            "--ledger", f"sqlite:///{tmp_path / 'ledger.db'}",
            "--var", f"python={sys.executable}", "--var", f"port={svc.port}", "--var", f"state={svc.state}"]

    fast = {"QUICKSTART_WARMUP": "0.1"}  # the servers the runbook starts: still a real wait, shorter
    code, result = run_json(*args, cwd=tmp_path, env=fast)
    assert (code, result["status"]) == (0, "completed"), result
    assert svc.get("/version").json()["version"] == "v2"

    code, result = run_json(*args, "--var", "release=v3", cwd=tmp_path, env=fast)
    assert (code, result["status"]) == (11, "rolled_back"), result
    assert "degraded" in result["reason"]
    assert svc("current").stdout == "v2\n"
    assert svc("migrate").stdout == "2\n"
    notes = svc.get("/api/notes").json()
    assert notes["version"] == "v2" and [n["body"] for n in notes["notes"]] == SEED
    assert len(list((svc.state / "backups").glob("notes-before_*.db"))) == 2


def test_a_note_written_during_the_run_stops_the_rollback_before_it_is_lost(svc: Service, tmp_path: Path) -> None:
    """The old release serves while the schema migrates: a note added through it (HTTP 201) after
    the backup would vanish with the restore. The rollback stops and names it instead (--no-input:
    exit 15), the database keeps the note, and the ledger records why."""
    shutil.copytree(QUICKSTART, tmp_path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("state", ".tminus", "__pycache__"))
    book = tmp_path / "runbook.yaml"
    text = book.read_text()
    anchor = "      - name: The schema is at the version the release needs\n"
    write = ("      - name: A user adds a note through the serving release\n"
             "        http:\n"
             "          url: \"http://127.0.0.1:{{ vars.port }}/api/notes\"\n"
             "          method: POST\n"
             "          json: {body: \"written during the run\"}\n"
             "        expect:\n"
             "          - status == 201\n")
    assert anchor in text
    book.write_text(text.replace(anchor, write + anchor))
    svc("start")
    args = ["run", str(book), "-e", "local", "--no-input",
            "--ledger", f"sqlite:///{tmp_path / 'ledger.db'}",
            "--var", f"python={sys.executable}", "--var", f"port={svc.port}", "--var", f"state={svc.state}",
            "--var", "release=v3"]
    code, result = run_json(*args, cwd=tmp_path, env={"QUICKSTART_WARMUP": "0.1"})
    assert (code, result["status"]) == (15, "needs_operator"), result
    assert "1 row(s) written since the backup" in result["reason"], result["reason"]
    assert "notes: 1 added (keys 4)" in result["reason"], result["reason"]
    assert "maintenance" in result["reason"]
    bodies = [r[0] for r in svc.db().execute("SELECT body FROM notes ORDER BY id")]
    assert bodies == [*SEED, "written during the run"]  # not restored: the note is still there


# --- the rehearsal ------------------------------------------------------------------------------

RESTORE = """\
        undo:
          - name: Restore the database from the backup
"""


def _rehearse(svc: Service, tmp_path: Path, book: Path, *args: str) -> tuple[int, Any]:
    svc("start")
    return run_json("rehearse", str(book), "-e", "local", "--yes", "--ledger", f"sqlite:///{tmp_path / 'ledger.db'}",
                    "--var", f"python={sys.executable}", "--var", f"port={svc.port}", "--var", f"state={svc.state}",
                    *args, cwd=tmp_path, env={"QUICKSTART_WARMUP": "0.1"})


def test_the_rehearsal_fails_after_the_migration_restores_the_database_and_v1_serves_again(
        svc: Service, tmp_path: Path) -> None:
    """`tminus rehearse --at migrate`: the failure right after the schema migrated, the restore from
    the backup, the database fingerprinted (it is the backup step's URL) equal before and after."""
    shutil.copytree(QUICKSTART, tmp_path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("state", ".tminus", "__pycache__"))
    code, record = _rehearse(svc, tmp_path, tmp_path / "runbook.yaml", "--at", "migrate")
    assert code == 0, record
    (cycle,) = rehearsal_passed(record, 1)
    assert (cycle["fault"], cycle["at"]) == ("fail", "migrate")
    assert [s["source"] for s in cycle["fingerprints"]["sources"]] == ["backup"]
    assert cycle["verify_s"] is not None and cycle["drills"][0]["name"] == "Back up the database"
    assert svc("current").stdout == "v1\n" and svc("migrate").stdout == "1\n"
    assert svc.get("/version").json()["version"] == "v1"
    # the rollback proved it too: its last step compares /version with the release recorded first
    code, shown = run_json("show", cycle["run_id"], "--ledger", f"sqlite:///{tmp_path / 'ledger.db'}", cwd=tmp_path)
    assert code == 0, shown
    checked = [e["data"] for e in shown["events"] if e["type"] == "step.finished" and e["step_key"] == "rollback[3]"]
    assert [d["status"] for d in checked] == ["ok"], checked


def test_a_rehearsal_catches_an_undo_that_forgets_to_restore(svc: Service, tmp_path: Path) -> None:
    """The migrate step's undo only checks the backup is there: the rollback passes its own checks
    (v1 ignores the new column), but the fingerprint names what stayed: exit 12."""
    shutil.copytree(QUICKSTART, tmp_path, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("state", ".tminus", "__pycache__"))
    book = tmp_path / "runbook.yaml"
    text = book.read_text()
    start = text.index(RESTORE)
    end = text.index("            timeout: 30s\n", start) + len("            timeout: 30s\n")
    careless = ("        undo:\n          - name: The backup is there (but nobody restores it)\n"
                "            file: {path: \"{{ steps.backup.path }}\", exists: true}\n")
    book.write_text(text[:start] + careless + text[end:])
    code, record = _rehearse(svc, tmp_path, book, "--at", "migrate")
    assert code == 12, record
    assert (record["status"], record["verdict"]) == ("failed", "failed")
    (cycle,) = record["cycles"]
    assert cycle["status"] == "rolled_back" and not cycle["ok"]  # the run's own rollback saw nothing wrong
    prints = cycle["fingerprints"]
    assert prints["equal"] is False and not prints["expected"]
    assert any("notes.author" in d and "new" in d for d in prints["differences"]), prints["differences"]
    assert any(d.startswith("table schema_version: 1 rows vs 2 rows") for d in prints["differences"]), prints
    assert "state not restored" in " ".join(cycle["problems"])
