"""examples/metrics-subsystem end to end: the real runbook, service and migrations on a fresh
PostgreSQL database: cutover, rollback of the completed run, roll forward, a blocked production run."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import rehearsal_passed, run_json, tminus

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "metrics-subsystem"
RUNBOOK = str(EXAMPLE / "runbook.yaml")
API_KEY = "sk-tascade-test"
METRICS_TABLES = {
    "metrics_summary", "metrics_trend_point", "metrics_breakdown_point", "metrics_drilldown",
    "metrics_job_checkpoint", "metrics_state_transition_counter", "metrics_job_run", "metrics_alert",
}
ENDPOINTS = ("summary", "trends", "breakdown", "drilldown", "jobs", "alerts", "actions")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _query(pg_url: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        return conn.execute(sql).fetchall()


def _metrics_tables(pg_url: str) -> set[str]:
    rows = _query(pg_url, r"SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                          r" AND tablename LIKE 'metrics\_%'")
    return {r[0] for r in rows}


def _versions(pg_url: str) -> list[str]:
    return [r[0] for r in _query(pg_url, "SELECT version FROM schema_migrations ORDER BY version")]


def _get(url: str, token: str | None = API_KEY) -> tuple[int, dict[str, str], dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, dict(resp.headers), json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"{}")


@pytest.fixture
def service_env(pg_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """What the runbook and the stand-in service read; the service is stopped afterwards."""
    env = {
        "TASCADE_DATABASE_URL": pg_url,
        "TASCADE_API_KEY": API_KEY,
        "TASCADE_AUTH_DISABLED": "",
        "TASCADE_PORT": str(_free_port()),
        "TASCADE_STATE": str(tmp_path / "state"),
        "TASCADE_PYTHON": sys.executable,
        "TMINUS_LEDGER": f"sqlite:///{tmp_path / 'ledger.db'}",
    }
    try:
        yield env
    finally:
        subprocess.run([sys.executable, str(EXAMPLE / "service" / "svc.py"), "stop", "--state", env["TASCADE_STATE"]],
                       capture_output=True, timeout=20, check=False)


def _events(run_id: str, cwd: Path, env: dict[str, str]) -> list[dict]:
    code, shown = run_json("show", run_id, cwd=cwd, env=env)
    assert code == 0, shown
    return shown["events"]


def test_the_runbook_validates(tmp_path: Path) -> None:
    proc = tminus("validate", RUNBOOK, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid" in proc.stdout


def test_cutover_rollback_and_roll_forward(pg_url: str, tmp_path: Path, service_env: dict[str, str]) -> None:
    env, base = service_env, f"http://127.0.0.1:{service_env['TASCADE_PORT']}"

    # the cutover: base schema and 0005-0008 on an empty database, the service deployed, smoke checks pass
    code, result = run_json("run", RUNBOOK, "-e", "staging", "--yes", cwd=tmp_path, env=env)
    assert code == 0, result
    run_id = result["run_id"]
    assert _metrics_tables(pg_url) == METRICS_TABLES
    assert _versions(pg_url)[-1] == "0008"
    verified = {e["data"]["name"]: e["data"]["status"] for e in _events(run_id, tmp_path, env)
                if e["type"] == "step.finished" and e["data"].get("section") == "verify"}
    assert {f"GET /v1/metrics/{name}" for name in ENDPOINTS} <= verified.keys()
    assert set(verified.values()) == {"ok"}, verified
    status, headers, body = _get(f"{base}/v1/metrics/summary?project_id=demo")
    assert (status, headers["X-API-Version"], body["summary"]["tasks_total"]) == (200, "1.0", 3)
    assert _get(f"{base}/v1/metrics/summary?project_id=demo", token=None)[0] == 401  # auth is on
    assert list((Path(env["TASCADE_STATE"]) / "backups").glob("*-staging-*.dump"))

    # 004 section 8: rolling the completed run back reverts 0008..0005; the base schema stays
    code, result = run_json("rollback", run_id, "--reason", "test", cwd=tmp_path, env=env)
    assert code == 11, result
    assert _metrics_tables(pg_url) == set()
    assert _versions(pg_url) == ["0001", "0002", "0003", "0004"]
    reverts = [e for e in _events(run_id, tmp_path, env)
               if e["type"] == "step.finished" and (e["step_key"] or "").endswith(".undo[auto]")]
    assert [v["proof"] for v in reverts[0]["data"]["evidence"]["versions"]] == ["proven"] * 4
    assert _get(f"{base}/health", token=None)[2] == {"status": "ok"}
    status, headers, body = _get(f"{base}/v1/metrics/alerts?project_id=demo")
    assert (status, headers["X-API-Version"]) == (503, "1.0"), body

    # and forward again
    code, result = run_json("run", RUNBOOK, "-e", "staging", "--yes", cwd=tmp_path, env=env)
    assert code == 0, result
    assert _metrics_tables(pg_url) == METRICS_TABLES
    assert _versions(pg_url)[-4:] == ["0005", "0006", "0007", "0008"]
    for name in ENDPOINTS:
        status, headers, _ = _get(f"{base}/v1/metrics/{name}?project_id=demo")
        assert (name, status, headers["X-API-Version"]) == (name, 200, "1.0")


def test_production_with_auth_disabled_is_blocked(pg_url: str, tmp_path: Path, service_env: dict[str, str]) -> None:
    env = {**service_env, "TASCADE_AUTH_DISABLED": "1"}
    code, result = run_json("run", RUNBOOK, "-e", "production", "--yes", cwd=tmp_path, env=env)
    assert code == 10, result
    assert result["status"] == "blocked"
    events = _events(result["run_id"], tmp_path, env)
    notes = [e["data"]["message"] for e in events if e["type"] == "note"]
    assert any("TASCADE_AUTH_DISABLED" in n and "production" in n for n in notes), notes
    assert all(e["data"].get("section", "").startswith("gate") for e in events if e["type"] == "step.started")
    # nothing changed: no table, no backup, no service
    assert _query(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    assert not (Path(env["TASCADE_STATE"]) / "backups").exists()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", int(env["TASCADE_PORT"]))) != 0


def test_killed_while_migrating_then_rolled_back(pg_url: str, tmp_path: Path, service_env: dict[str, str]) -> None:
    """Issue 10: kill -9 while 'Apply 0005-0008' runs, after 0005 and 0006 committed (0007's
    CREATE INDEX CONCURRENTLY waits for a lock this test holds), then `resume --rollback`: the
    automatic revert undoes 0006 and 0005 although the step never finished."""
    import os
    import signal
    import time

    import psycopg
    from tests.helpers import spawn, wait_for

    env = service_env
    done = tminus("db", "migrate", str(EXAMPLE / "migrations"), "--url", pg_url, "--to", "0004", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    before = _query(pg_url, "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                            " WHERE n.nspname = 'public' ORDER BY 1")
    holder = psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://", 1))
    try:
        # blocks the index build, not the backup's pg_dump (ACCESS SHARE)
        holder.execute("LOCK TABLE event_log IN SHARE UPDATE EXCLUSIVE MODE")
        proc = spawn("run", RUNBOOK, "-e", "staging", "--yes", cwd=tmp_path, env=env)
        try:
            wait_for(lambda: "0006" in _versions(pg_url) or proc.poll() is not None, timeout=60)
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.5)  # 0007 is waiting for the lock
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert _versions(pg_url)[-2:] == ["0005", "0006"] and len(_metrics_tables(pg_url)) == 7
        # the killed run's server session waits on until its lock_timeout: released after it gave
        # up, the lock must not let an orphaned CREATE INDEX go on
        wait_for(lambda: _query(pg_url, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                        " AND datname = current_database()") == [(0,)], timeout=30)
    finally:
        holder.close()
    _code, runs = run_json("history", cwd=tmp_path, env=env)
    run_id = runs[0]["id"]
    code, result = run_json("resume", run_id, "--rollback", "--no-input", cwd=tmp_path, env=env)
    assert code == 11 and result["status"] == "rolled_back", result
    assert _metrics_tables(pg_url) == set()
    assert _versions(pg_url) == ["0001", "0002", "0003", "0004"]
    after = _query(pg_url, "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                           " WHERE n.nspname = 'public' ORDER BY 1")
    assert after == before  # tables, sequences, indexes: what 0001-0004 made, nothing of 0005-0007
    reverts = [e for e in _events(run_id, tmp_path, env)
               if e["type"] == "step.finished" and (e["step_key"] or "").endswith(".undo[auto]")]
    assert [e["data"]["outputs"]["reverted"] for e in reverts] == [["0006", "0005"]]
    # each revert proven against the schema recorded before its version, across the kill
    assert [v["proof"] for v in reverts[0]["data"]["evidence"]["versions"]] == ["proven", "proven"]


def _at_0004(pg_url: str, tmp_path: Path) -> None:
    """The database Tascade runs today: the base schema, 0001-0004."""
    done = tminus("db", "migrate", str(EXAMPLE / "migrations"), "--url", pg_url, "--to", "0004", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rehearsal_rolls_the_metrics_migrations_and_the_whole_deploy_back(
        pg_url: str, tmp_path: Path, service_env: dict[str, str]) -> None:
    """004 section 9 as `tminus rehearse --at migrate --roll-forward`: a failure right after 0005-0008,
    then the full deploy rolled back; the database fingerprinted before and after each: as at 0004."""
    env = service_env
    _at_0004(pg_url, tmp_path)
    code, record = run_json("rehearse", RUNBOOK, "-e", "staging", "--yes", "--at", "migrate", "--roll-forward",
                            cwd=tmp_path, env=env)
    assert code == 0, record
    failed, forward = rehearsal_passed(record, 2)
    assert (failed["fault"], failed["at"]) == ("fail", "metrics migrations")
    assert (forward["fault"], forward["rehearsed_as"]) == ("roll_forward", "roll_forward_only")
    # the backup's and the migrations' database is one source, fingerprinted with all its tables
    assert [(s["source"], s["tables"]) for s in failed["fingerprints"]["sources"]] == [("backup", None)]
    assert _versions(pg_url) == ["0001", "0002", "0003", "0004"] and _metrics_tables(pg_url) == set()
    base = f"http://127.0.0.1:{env['TASCADE_PORT']}"
    assert _get(f"{base}/health", token=None)[2] == {"status": "ok"}
    assert _get(f"{base}/v1/metrics/summary?project_id=demo")[0] == 503
    # the metrics phase's undo checked what 004's script checks, after the revert
    names = [e["data"]["name"] for e in _events(failed["run_id"], tmp_path, env)
             if e["type"] == "step.finished" and e["data"]["status"] == "ok"
             and (e["step_key"] or "").startswith("phases[2].undo[")]
    assert names == ["No metrics_% table remains", "schema_migrations has no 0005-0008 rows"]


def test_rehearsing_on_a_database_without_the_base_schema_names_what_the_rollback_keeps(
        pg_url: str, tmp_path: Path, service_env: dict[str, str]) -> None:
    """On an empty database the base schema phase creates 0001-0004 and, by design (004 section 8),
    the rollback keeps it: the rehearsal says so table by table, exit 12. The rehearsal is meant for
    a database at 0004, as the docs page runs it."""
    code, record = run_json("rehearse", RUNBOOK, "-e", "staging", "--yes", "--at", "base",
                            cwd=tmp_path, env=service_env)
    assert code == 12, record
    (cycle,) = record["cycles"]
    # the rollback itself passed: only the fingerprints say what it left
    assert cycle["status"] == "rolled_back" and not cycle["undo_failed"] and not cycle["ok"]
    differences = cycle["fingerprints"]["differences"]
    assert "table project is new (not in the earlier fingerprint)" in differences, differences
    assert not any("metrics_" in d for d in differences), differences  # 0005-0008 never ran
    assert record["reason"].startswith("1 of 1 cycle(s) failed") and "state not restored" in record["reason"]
