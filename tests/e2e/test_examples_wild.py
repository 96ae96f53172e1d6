"""examples/runbooks-in-the-wild: the five seed runbooks as tminus runbooks, against their stand-ins.

Each validates and plans as it ships. Each runs end to end on a copy against its stand-in and, where it
has one, the local PostgreSQL and Redis, and a forced failure rolls back (exit 11) leaving the stand-in
as it was. A copy, because the stand-ins write their state beside them; the production windows (the
monitor's, a health gate's timeout) are shortened with --var, as a rehearsal would.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import run_json, tminus, wait_for

WILD = Path(__file__).resolve().parents[2] / "examples" / "runbooks-in-the-wild"
EXAMPLES = {  # folder: the environment its plan and runs use
    "000-mes-dashboard": "rehearsal",
    "001-migration-gates-spec": None,
    "002-mge-v2-migration": "production",
    "003-recall-api-cutover": "production",
    "004-metrics-subsystem": "staging",
}
PY = sys.executable


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int) -> None:
    wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, timeout=10)


def _drill(name: str, tmp: Path) -> Path:
    """A copy of the example, without any state a demo left beside it."""
    target = tmp / name
    shutil.copytree(WILD / name, target, ignore=shutil.ignore_patterns("state", "__pycache__"))
    return target


SHORT = ("--var", "watch=2s", "--var", "probe_every=500ms")  # the monitor window of a rehearsal


def _http(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw.startswith(b"{") else raw.decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _sql(pg_url: str, query: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
        cur = conn.execute(query)
        return cur.fetchall() if cur.description else []


def _psql_file(pg_url: str, path: Path) -> None:
    subprocess.run(["psql", pg_url.replace("postgresql+psycopg://", "postgresql://", 1), "-q", "-v",
                    "ON_ERROR_STOP=1", "-f", str(path)], check=True, capture_output=True, timeout=30)


def _run(folder: Path, env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    code, result = run_json("run", "runbook.yaml", *args, "--yes", "--no-input", cwd=folder, env=env)
    return code, result


def _steps(folder: Path, env: dict[str, str], run_id: str) -> dict[str, str]:
    """name -> status of every finished step of a run (the last one of a name wins)."""
    code, shown = run_json("show", run_id, cwd=folder, env=env)
    assert code == 0, shown
    return {e["data"].get("name") or "": e["data"]["status"] for e in shown["events"] if e["type"] == "step.finished"}


# --- every example validates and plans as it ships ----------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_validates_and_plans(name: str, tmp_path: Path) -> None:
    runbook = str(WILD / name / "runbook.yaml")
    proc = tminus("validate", runbook, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    env_args = ["-e", EXAMPLES[name]] if EXAMPLES[name] else []
    code, plan = run_json("plan", runbook, *env_args, cwd=tmp_path)
    assert code == 0, plan
    assert plan["phases"] and all(p["steps"] for p in plan["phases"])


# --- 000: the MES dashboard -------------------------------------------------------------------------------


@pytest.fixture
def mes(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    folder = _drill("000-mes-dashboard", tmp_path)
    env = {"MES_PORT": str(_free_port()), "MES_STATE": str(tmp_path / "state"),
           "TMINUS_LEDGER": f"sqlite:///{tmp_path / 'ledger.db'}"}
    subprocess.run([PY, "app.py", "start"], cwd=folder, env={**_base_env(), **env}, check=True, timeout=20)
    try:
        yield folder, env
    finally:
        subprocess.run([PY, "app.py", "stop"], cwd=folder, env={**_base_env(), **env}, timeout=20, check=False)


def _base_env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_000_cutover_completes(mes: tuple[Path, dict[str, str]]) -> None:
    folder, env = mes
    code, result = _run(folder, env, "-e", "rehearsal", "--var", f"python={PY}", *SHORT, "--var", "baseline=1s")
    assert code == 0, result
    status, health = _http(f"http://127.0.0.1:{env['MES_PORT']}/health")
    assert (status, health["version"], health["degraded_reason"]) == (200, "2.0.0", "")
    steps = _steps(folder, env, result["run_id"])
    assert steps["the portal renders the SPA shell on the same origin and port"] == "ok"
    assert steps["focused test subset (contracts, parity, client retry policy)"] == "ok"
    assert (Path(env["MES_STATE"]) / "systemd" / "mes-dashboard-watchdog.service").exists()


def test_000_degraded_release_rolls_back_to_the_known_good_build(mes: tuple[Path, dict[str, str]]) -> None:
    folder, env = mes
    base = f"http://127.0.0.1:{env['MES_PORT']}"
    _http(f"{base}/control", {"degrade_release": "2.0.0"})  # 2.0.0 reports itself degraded once served
    code, result = _run(folder, env, "-e", "rehearsal", "--var", f"python={PY}", *SHORT, "--var", "baseline=1s")
    assert code == 11, result
    status, health = _http(f"{base}/health")
    assert (status, health["version"], health["degraded_reason"]) == (200, "1.9.0", "")
    assert (Path(env["MES_STATE"]) / "current").resolve().name == "1.9.0"
    assert not (Path(env["MES_STATE"]) / "systemd").exists()
    assert "<iframe" in _http(f"{base}/")[1]


def test_000_a_restart_that_lets_the_port_go_is_caught_by_the_guard(mes: tuple[Path, dict[str, str]]) -> None:
    folder, env = mes
    base = f"http://127.0.0.1:{env['MES_PORT']}"
    _http(f"{base}/control", {"restart_mode": "rebind"})  # the restart closes the port for 0.5 s
    code, result = _run(folder, env, "-e", "rehearsal", "--var", f"python={PY}", *SHORT, "--var", "baseline=1s")
    assert code == 11, result
    # the port closed: the bind rule reads it closed, or the portal's probe is refused twice first
    # (which one sees it first is the race of two probes against a 0.5 s gap; either is the guard)
    assert "fired during phase 'deploy single-port'" in result["reason"], result["reason"]
    assert any(f"guard '{rule}'" in result["reason"]
               for rule in ("single-port bind stable", "portal answers during the restart")), result["reason"]
    assert _http(f"{base}/health")[1]["version"] == "1.9.0"


# --- 001: the migration-gates spec --------------------------------------------------------------------------


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    folder = _drill("001-migration-gates-spec", tmp_path)
    env = {"PORTAL_PORT": str(_free_port()), "PORTAL_STATE": str(tmp_path / "state"),
           "TMINUS_LEDGER": f"sqlite:///{tmp_path / 'ledger.db'}"}
    subprocess.run([PY, "portal.py", "start"], cwd=folder, env={**_base_env(), **env}, check=True, timeout=20)
    try:
        yield folder, env
    finally:
        subprocess.run([PY, "portal.py", "stop"], cwd=folder, env={**_base_env(), **env}, timeout=20, check=False)


def test_001_cutover_then_the_kill_switch(portal: tuple[Path, dict[str, str]]) -> None:
    folder, env = portal
    base = f"http://127.0.0.1:{env['PORTAL_PORT']}"
    # a rollback target no rollback can meet, so the deadline's alert shows (the runbook says 5m)
    code, result = _run(folder, env, "--var", f"python={PY}", "--var", "rollback_target=10ms")
    assert code == 0, result
    health = _http(f"{base}/health")[1]
    assert (health["shell"], health["legacy"], health["worker"]["generation"]) == ("spa", False, 1)
    # the kill switch: `tminus rollback` of the completed cutover brings the iframe navigation back
    code, rolled = run_json("rollback", result["run_id"], "--reason", "kill switch drill", cwd=folder, env=env)
    assert code == 11, rolled
    health = _http(f"{base}/health")[1]
    assert (health["shell"], health["legacy"]) == ("iframe", True)
    assert _steps(folder, env, result["run_id"])["Portal usable on the iframe navigation"] == "ok"
    deadlines = {d["id"]: d for d in run_json("show", result["run_id"], cwd=folder, env=env)[1]["deadlines"]}
    assert deadlines["rollback"]["state"] == "exceeded", deadlines  # the rollback measured against its target


def test_001_the_kill_switch_section_on_its_own(portal: tuple[Path, dict[str, str]]) -> None:
    """`tminus kill-switch`: no gates, no rollback of the run, timed against the rollback target."""
    folder, env = portal
    base = f"http://127.0.0.1:{env['PORTAL_PORT']}"
    code, result = _run(folder, env, "--var", f"python={PY}")
    assert code == 0, result
    assert _http(f"{base}/health")[1]["shell"] == "spa"
    code, switched = run_json("kill-switch", "runbook.yaml", "--reason", "nav broken", "--var", f"python={PY}",
                              cwd=folder, env=env)
    assert code == 0, switched
    assert switched["within_target"] is True and switched["target"] == 300, switched
    health = _http(f"{base}/health")[1]
    assert (health["shell"], health["legacy"]) == ("iframe", True)


def test_001_a_failing_parity_gate_blocks_and_a_failing_live_route_rolls_back(
        portal: tuple[Path, dict[str, str]]) -> None:
    folder, env = portal
    base = f"http://127.0.0.1:{env['PORTAL_PORT']}"
    _http(f"{base}/control", {"break_route": "job-query"})
    code, result = _run(folder, env, "--var", f"python={PY}")
    assert code == 10, result  # "all required migration gates MUST pass or cutover SHALL be blocked"
    assert _http(f"{base}/health")[1]["worker"]["generation"] == 0  # nothing ran: not even the rehearsal
    _http(f"{base}/control", {"reset": True})
    _http(f"{base}/control", {"break_live_route": "wip"})  # fine in preview, broken once live
    code, result = _run(folder, env, "--var", f"python={PY}")
    assert code == 11, result
    health = _http(f"{base}/health")[1]
    assert (health["shell"], health["legacy"]) == ("iframe", True)
    assert _http(f"{base}/wip")[0] == 200


# --- 002: the MGE V2 migration day ---------------------------------------------------------------------------


class _Devmatrix:
    def __init__(self, tmp: Path, pg_url: str) -> None:
        self.folder = _drill("002-mge-v2-migration", tmp)
        self.pg_url, self.queue = pg_url, f"wild-002-{uuid.uuid4().hex[:10]}"
        self.env = {
            "DEVMATRIX_DATABASE_URL": pg_url, "DEVMATRIX_REDIS_URL": "redis://127.0.0.1:6379/0",
            "DEVMATRIX_QUEUE": self.queue, "DEVMATRIX_PORT": str(_free_port()),
            "DEVMATRIX_NOTIFY_PORT": str(_free_port()), "DEVMATRIX_STATE": str(tmp / "state"),
            "DEVMATRIX_TEST_TOKEN": "test-token", "DEVMATRIX_ADMIN_TOKEN": "admin-token", "DEVMATRIX_PYTHON": PY,
            "TMINUS_LEDGER": f"sqlite:///{tmp / 'ledger.db'}",
        }
        _psql_file(pg_url, self.folder / "seed.sql")
        (tmp / "state").mkdir()
        self.sink = subprocess.Popen([PY, "notify_sink.py"], cwd=self.folder, env={**_base_env(), **self.env})
        _wait_port(int(self.env["DEVMATRIX_NOTIFY_PORT"]))
        self.compose("up")

    def compose(self, *args: str) -> str:
        proc = subprocess.run([PY, "compose.py", *args], cwd=self.folder, env={**_base_env(), **self.env},
                              capture_output=True, text=True, timeout=30, check=True)
        return proc.stdout

    def stages(self) -> None:
        """The T-48h and T-2h stages, each recorded as its stage's gate run (the day's run requires them)."""
        for stage in ("T-48h", "T-2h"):
            code, gated = run_json("gate", "runbook.yaml", "-e", "production", "--stage", stage, cwd=self.folder,
                                   env=self.env)
            assert code == 0, gated

    def redis(self, *args: str) -> str:
        return subprocess.run(["redis-cli", "-n", "0", *args], capture_output=True, text=True, timeout=10).stdout

    def messages(self) -> list[dict[str, str]]:
        path = Path(self.env["DEVMATRIX_STATE"]) / "messages.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def tables(self) -> set[str]:
        return {r[0] for r in _sql(self.pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}

    def close(self) -> None:
        subprocess.run([PY, "compose.py", "stop"], cwd=self.folder, env={**_base_env(), **self.env}, timeout=30,
                       check=False)
        self.sink.terminate()
        self.sink.wait(timeout=10)
        self.redis("DEL", self.queue)


@pytest.fixture
def devmatrix(tmp_path: Path, pg_url: str) -> Iterator[_Devmatrix]:
    stand_in = _Devmatrix(tmp_path, pg_url)
    try:
        yield stand_in
    finally:
        stand_in.close()


def test_002_migration_day_completes(devmatrix: _Devmatrix) -> None:
    dm = devmatrix
    dm.redis("LPUSH", dm.queue, "job-1", "job-2")  # the MVP worker drains them before it is stopped
    dm.stages()
    code, result = _run(dm.folder, dm.env, "-e", "production", *SHORT)
    assert code == 0, result
    assert {"atomic_units", "human_review_queue", "execution_waves"} <= dm.tables()
    assert _sql(dm.pg_url, "SELECT count(*) FROM masterplan_tasks WHERE NOT EXISTS "
                           "(SELECT 1 FROM atomic_units u WHERE u.task_id = masterplan_tasks.task_id)") == [(0,)]
    status, health = _http(f"http://127.0.0.1:{dm.env['DEVMATRIX_PORT']}/api/v1/health")
    assert (status, health["release"]) == (200, "v2")  # maintenance off, V2 serving
    assert {"to": "status", "text": "Operational: MGE V2 upgrade complete!"} in dm.messages()
    backups = Path(dm.env["DEVMATRIX_STATE"])
    assert list((backups / "offsite").glob("*.dump.sha256")) and list((backups / "backups").glob("*pre_v2*.dump"))
    assert _steps(dm.folder, dm.env, result["run_id"])["Run atomization (800 atoms)"] == "ok"


def test_002_failed_data_integrity_restores_the_database_and_the_mvp(devmatrix: _Devmatrix) -> None:
    dm = devmatrix
    _sql(dm.pg_url, "INSERT INTO masterplan_tasks (masterplan_id, description) VALUES (1, '')")  # unmigratable
    before = _sql(dm.pg_url, "SELECT task_id, description FROM masterplan_tasks ORDER BY task_id")
    code, result = _run(dm.folder, dm.env, "-e", "production", *SHORT)
    assert code == 10, result  # the T-48h and T-2h stages never ran: blocked, nothing changed
    assert "backend  Up" in dm.compose("ps") and not (Path(dm.env["DEVMATRIX_STATE"]) / "backups").exists()
    dm.stages()
    assert [m["text"] for m in dm.messages()].count("Upcoming Maintenance") == 1  # the T-2h status page
    code, result = _run(dm.folder, dm.env, "-e", "production", *SHORT)
    assert code == 11, result
    assert dm.tables() == {"masterplans", "masterplan_tasks"}  # the pre-migration backup restored
    assert _sql(dm.pg_url, "SELECT task_id, description FROM masterplan_tasks ORDER BY task_id") == before
    status, health = _http(f"http://127.0.0.1:{dm.env['DEVMATRIX_PORT']}/api/v1/health")
    assert (status, health["release"]) == (200, "mvp")  # MVP code, services up, maintenance off
    assert "backend  Up" in dm.compose("ps") and "celery  Up" in dm.compose("ps")
    assert dm.messages()[-1] == {"to": "team", "text": "ROLLBACK COMPLETE - MVP restored"}


# --- 003: the Recall API blue/green cutover ------------------------------------------------------------------


class _Sink(BaseHTTPRequestHandler):
    received: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["text"])
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def recall(tmp_path: Path, pg_url: str) -> Iterator[tuple[Path, dict[str, str], list[str]]]:
    folder = _drill("003-recall-api-cutover", tmp_path)
    _psql_file(pg_url, folder / "seed.sql")
    sink = ThreadingHTTPServer(("127.0.0.1", 0), type("Sink", (_Sink,), {"received": []}))
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    state = tmp_path / "state"
    env = {"RECALL_DATABASE_URL": pg_url, "RECALL_SECRET_KEY": "s3cret-key", "RECALL_STATE": str(state),
           "RECALL_BLUE_PORT": str(_free_port()), "RECALL_GREEN_PORT": str(_free_port()),
           "RECALL_PROXY_PORT": str(_free_port()), "RECALL_ANNOUNCE_URL": f"http://127.0.0.1:{sink.server_port}/",
           "DEPLOY_HOST": "recall.example.com", "DEPLOY_USER": "deploy", "DEPLOY_KEY": "key",
           "DEPLOY_PATH": "/srv/recall",
           "TMINUS_LEDGER": f"sqlite:///{tmp_path / 'ledger.db'}"}
    # CI.4, the server deploy the cutover requires: Blue behind the proxy, a run in the ledger
    code, deployed = run_json("run", "ci4.yaml", "-e", "production", "--no-input", cwd=folder, env=env)
    assert code == 0, deployed
    try:
        yield folder, env, sink.RequestHandlerClass.received  # type: ignore[attr-defined]
    finally:
        for project in ("recall_green", "recall_blue", "proxy"):
            subprocess.run([PY, "stack.py", "down", "--project", project], cwd=folder, env={**_base_env(), **env},
                           timeout=20, check=False)
        sink.shutdown()


def _columns(pg_url: str) -> list[str]:
    return [r[0] for r in _sql(pg_url, "SELECT column_name FROM information_schema.columns "
                                       "WHERE table_name = 'notes' ORDER BY ordinal_position")]


def test_003_green_takes_over(recall: tuple[Path, dict[str, str], list[str]], pg_url: str) -> None:
    folder, env, announced = recall
    code, result = _run(folder, env, "-e", "production", *SHORT)
    assert code == 0, result
    version = _http(f"http://127.0.0.1:{env['RECALL_PROXY_PORT']}/version")[1]
    assert (version["project"], version["version"]) == ("recall_green", "sha-1b2c3d4")
    assert _columns(pg_url) == ["id", "body", "source"]
    assert any("sha-1b2c3d4" in text for text in announced)
    assert "s3cret-key" not in json.dumps(run_json("show", result["run_id"], cwd=folder, env=env)[1])
    # the finalize phase, after the window (T+15m): Blue disabled, the notice out, writes open again
    assert not (Path(env["RECALL_STATE"]) / "writes_frozen").exists()
    assert not (Path(env["RECALL_STATE"]) / "recall_blue.pid").exists()
    assert announced[-1] == "Recall API sha-1b2c3d4 is live: cutover complete."
    sections = [e["data"].get("section") for e in run_json("show", result["run_id"], cwd=folder, env=env)[1]["events"]
                if e["type"] == "section.started"]
    assert sections.index("finalize:T+15m finish") > sections.index("monitor")
    # the release ledger: what is live in production, through which run
    code, releases = run_json("releases", "runbook.yaml", "-e", "production", cwd=folder, env=env)
    assert code == 0, releases
    assert json.dumps(releases).count("sha-1b2c3d4") >= 1 and result["run_id"] in json.dumps(releases), releases


def test_003_an_image_that_never_gets_ready_leaves_blue_serving(
        recall: tuple[Path, dict[str, str], list[str]], pg_url: str) -> None:
    folder, env, _ = recall
    (Path(env["RECALL_STATE"]) / "broken_images").write_text("sha-1b2c3d4\n")
    code, result = _run(folder, env, "-e", "production", *SHORT, "--var", "ready_timeout=3s")
    assert code == 11, result
    version = _http(f"http://127.0.0.1:{env['RECALL_PROXY_PORT']}/version")[1]
    assert (version["project"], version["version"]) == ("recall_blue", "sha-0a1b2c3")
    assert _columns(pg_url) == ["id", "body"]  # the migration reverted
    assert not (Path(env["RECALL_STATE"]) / "writes_frozen").exists()
    assert not (Path(env["RECALL_STATE"]) / "recall_green.pid").exists()


# --- 004: the metrics subsystem ------------------------------------------------------------------------------


@pytest.fixture
def tascade(tmp_path: Path, pg_url: str) -> Iterator[tuple[Path, dict[str, str]]]:
    folder = _drill("004-metrics-subsystem", tmp_path)
    env = {"TASCADE_DATABASE_URL": pg_url, "TASCADE_API_KEY": "sk-tascade-test", "TASCADE_PORT": str(_free_port()),
           "TASCADE_STATE": str(tmp_path / "state"), "TASCADE_PYTHON": PY,
           "TMINUS_LEDGER": f"sqlite:///{tmp_path / 'ledger.db'}"}
    # the previous release (p5m2) runs: its startup applied 0001-0004
    subprocess.run([PY, "app/svc.py", "start"], cwd=folder, env={**_base_env(), **env}, check=True, timeout=30)
    try:
        yield folder, env
    finally:
        subprocess.run([PY, "app/svc.py", "stop"], cwd=folder, env={**_base_env(), **env}, timeout=30, check=False)


def _versions(pg_url: str) -> list[str]:
    return [r[0][:4] for r in _sql(pg_url, "SELECT version FROM schema_migrations ORDER BY version")]


def test_004_deploy_then_the_rollback_rehearsal(tascade: tuple[Path, dict[str, str]], pg_url: str) -> None:
    folder, env = tascade
    code, result = _run(folder, env, "-e", "staging")
    assert code == 0, result
    assert _versions(pg_url) == ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008"]
    steps = _steps(folder, env, result["run_id"])
    assert steps["smoke_test_metrics.py - seven endpoints, 200, X-API-Version 1.0, body shape"] == "ok"
    # section 9: roll the deployed release back; the tables go, the application answers again
    code, rolled = run_json("rollback", result["run_id"], "--reason", "staging rollback rehearsal", cwd=folder, env=env)
    assert code == 11, rolled
    assert _versions(pg_url) == ["0001", "0002", "0003", "0004"]
    assert _http(f"http://127.0.0.1:{env['TASCADE_PORT']}/health") == (200, {"status": "ok"})


def test_004_failed_smoke_test_rolls_back(tascade: tuple[Path, dict[str, str]], pg_url: str) -> None:
    folder, env = tascade
    code, result = _run(folder, env, "-e", "staging", "--var", "project_id=no-such-project")
    assert code == 11, result
    assert _versions(pg_url) == ["0001", "0002", "0003", "0004"]
    assert _sql(pg_url, r"SELECT count(*) FROM pg_tables WHERE tablename LIKE 'metrics\_%'") == [(0,)]
    assert (Path(env["TASCADE_STATE"]) / "release").read_text() == "p5m2"
    assert _http(f"http://127.0.0.1:{env['TASCADE_PORT']}/health") == (200, {"status": "ok"})


def test_004_production_refuses_auth_disabled(tascade: tuple[Path, dict[str, str]], pg_url: str) -> None:
    folder, env = tascade
    env = {**env, "TASCADE_AUTH_DISABLED": "1", "VITE_API_BASE_URL": "https://t.example.com", "VITE_API_TOKEN": "x"}
    code, result = _run(folder, env, "-e", "production")
    assert code == 10, result
    assert _versions(pg_url) == ["0001", "0002", "0003", "0004"]


# --- `tminus rehearse` on each, as its seed asks (issue 13) --------------------------------------------------
# Cut to keep them short (docs/examples/runbooks-in-the-wild.md shows the full commands): the monitor
# windows (--var watch), 000 to its monitor cycle (no --roll-forward), 001 to the cutover and the kill
# switch, 002 to the data migration (whose rollback restores the backup), 003 to the proxy switch (--at).


def _rehearse(folder: Path, env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    return run_json("rehearse", "runbook.yaml", *args, "--yes", "--no-input", cwd=folder, env=env)


def _rehearsal_note(folder: Path, env: dict[str, str], result: dict[str, Any]) -> str:
    """The message of the run's decision.require_rehearsal note."""
    code, shown = run_json("show", result["run_id"], cwd=folder, env=env)
    assert code == 0, shown
    notes = [e["data"] for e in shown["events"]
             if e["type"] == "note" and e["data"].get("action") == "rehearsal-required"]
    assert len(notes) == 1, notes
    return str(notes[0]["message"])


def _why(record: dict[str, Any]) -> str:
    """What went wrong, for an assertion's message: each cycle's problems and differences."""
    return json.dumps([{k: c.get(k) for k in ("at", "fault", "status", "problems", "fingerprints", "undo_failed")}
                       for c in record.get("cycles", [])], indent=1)[:6000]


def _cycles_ok(record: dict[str, Any], *, state: bool) -> list[dict[str, Any]]:
    """Every cycle ok and timed; where there is state (a database), fingerprinted and equal after the rollback."""
    cycles = record["cycles"]
    assert cycles and all(c["ok"] for c in cycles), json.dumps(cycles, indent=1)[:4000]
    for cycle in cycles:
        assert cycle["rto_s"] is not None and cycle["rto_s"] > 0, cycle
        fingerprints = cycle["fingerprints"]
        if state:
            assert fingerprints["sources"] and fingerprints["equal"] is True, fingerprints
            assert not fingerprints["differences"], fingerprints
        else:
            assert fingerprints["equal"] is None and not fingerprints["sources"], fingerprints
    return cycles


def test_000_rehearse_a_monitor_alert_rolls_back_to_the_known_good_build(mes: tuple[Path, dict[str, str]]) -> None:
    """000's rehearsal checklist: a failure (a monitor alert forced to fire), stop/restore/start, checks, timings."""
    folder, env = mes
    code, record = _rehearse(folder, env, "-e", "rehearsal", "--var", f"python={PY}", "--var", "watch=1s",
                             "--var", "probe_every=250ms", "--var", "baseline=500ms", "--fault", "monitor")
    assert code == 0, _why(record)
    cycles = _cycles_ok(record, state=False)
    assert [c["fault"] for c in cycles] == ["monitor"]
    assert record["cycles"][0]["problems"] == []
    assert all(c["verify_s"] is not None for c in cycles)  # /health and the CSV export after the rollback
    health = _http(f"http://127.0.0.1:{env['MES_PORT']}/health")[1]
    assert (health["version"], health["degraded_reason"]) == ("1.9.0", "")  # left on the known-good build


def test_000_rehearse_refused_where_nothing_precedes_the_point_of_no_return(
        mes: tuple[Path, dict[str, str]]) -> None:
    folder, env = mes
    code = tminus("rehearse", "runbook.yaml", "-e", "rehearsal", "--var", f"python={PY}", "--no-input",
                  cwd=folder, env=env)
    assert code.returncode == 2 and "point of no return" in code.stderr, code.stderr


def test_001_rehearse_the_cutover_and_the_kill_switch_within_its_target(
        portal: tuple[Path, dict[str, str]]) -> None:
    """001: the kill switch restores service within the rollback target; the cutover rolls back."""
    folder, env = portal
    code, record = _rehearse(folder, env, "--var", f"python={PY}", "--at", "cutover")
    assert code == 0, _why(record)
    cycles = _cycles_ok(record, state=False)
    assert [(c["fault"], c["at"]) for c in cycles] == [("fail", "cutover"), ("kill_switch", None)]
    switch = cycles[-1]["kill_switch"]
    assert (switch["status"], switch["target_s"], switch["within"]) == ("completed", 300, True), switch
    assert 0 < switch["actual_s"] < 300
    assert all(c["verify_s"] is not None for c in cycles)  # the three routes answer after every rollback
    health = _http(f"http://127.0.0.1:{env['PORTAL_PORT']}/health")[1]
    assert (health["shell"], health["legacy"]) == ("iframe", True)
    # a target no kill switch can meet fails the rehearsal (exit 17), the figure beside the cycle's RTO.
    # The runbook gives its last step the target as its timeout, which at 1ms it may use up under load
    # (the switch then ends `aborted`, not late): here the step keeps wait's own default instead
    runbook = folder / "runbook.yaml"
    tied = '      timeout: "{{ vars.rollback_target }}"  # no step may outlast the whole switch\n'
    assert tied in runbook.read_text()
    runbook.write_text(runbook.read_text().replace(tied, ""))
    code, record = _rehearse(folder, env, "--var", f"python={PY}", "--var", "rollback_target=1ms",
                             "--at", "cutover")
    switch = record["cycles"][-1]["kill_switch"]
    assert switch and (switch["status"], switch["within"], switch["target_s"]) == ("completed_late", False, 0.001), \
        (code, switch)
    assert code == 17 and record["verdict"] == "failed", (code, record["reason"])
    assert any("over its target of 0.001s" in p for p in record["cycles"][-1]["problems"])


def test_004_production_requires_the_staging_rehearsal(tascade: tuple[Path, dict[str, str]], pg_url: str) -> None:
    """Section 9 before every production deployment: refused without it, rehearsed (rollback and roll-forward,
    the tables proven back), then accepted."""
    folder, env = tascade
    prod = {**env, "VITE_API_BASE_URL": "https://t.example.com", "VITE_API_TOKEN": "x"}
    code, result = _run(folder, prod, "-e", "production")
    assert code == 10, result
    assert "not met: no rehearsal of tascade-metrics-p5m3 in staging" in _rehearsal_note(folder, env, result)
    assert _versions(pg_url) == ["0001", "0002", "0003", "0004"]
    code, record = _rehearse(folder, env, "-e", "staging", "--roll-forward")
    assert code == 0, _why(record)
    cycles = _cycles_ok(record, state=True)
    assert [(c["fault"], c["at"]) for c in cycles] == [
        ("fail", "backup"), ("fail", "deploy"), ("fail", "verify startup"), ("roll_forward", None)]
    forward = cycles[-1]  # deployed after three rollbacks, smoke-tested, rolled back: the tables gone again
    assert forward["status"] == "rolled_back" and forward["verify_s"] is not None
    assert _versions(pg_url) == ["0001", "0002", "0003", "0004"]
    code, result = _run(folder, prod, "-e", "production")
    assert code == 0, result
    assert f"met: rehearsal {record['rehearsal_id']} passed" in _rehearsal_note(folder, env, result)
    assert _versions(pg_url) == ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008"]


def test_002_rehearse_the_restore_from_backup_in_staging(devmatrix: _Devmatrix) -> None:
    """002's rollback, the database restored from the pre-migration backup, rehearsed for real in staging:
    the data proven back after each cycle, the backup's drill figure beside the RTO."""
    dm = devmatrix
    for stage in ("T-48h", "T-2h"):  # staging runs the day as production does, stages first
        code, gated = run_json("gate", "runbook.yaml", "-e", "staging", "--stage", stage, cwd=dm.folder, env=dm.env)
        assert code == 0, gated
    before = _sql(dm.pg_url, "SELECT task_id, description FROM masterplan_tasks ORDER BY task_id")
    # after the data migration: its undo, the migrations', then the restore of the backup, as on the day
    code, record = _rehearse(dm.folder, dm.env, "-e", "staging", "--at", "data migration", *SHORT)
    assert code == 0, _why(record)
    (cycle,) = _cycles_ok(record, state=True)
    assert cycle["at"] == "data migration" and cycle["undo_failed"] == [] and cycle["undo_missing"] == []
    assert [d["name"] for d in cycle["drills"]] == ["Dump PostgreSQL (verified, compressed custom format, rotated)"]
    assert cycle["drills"][0]["drill_seconds"] > 0, cycle["drills"]
    assert dm.tables() == {"masterplans", "masterplan_tasks"}
    assert _sql(dm.pg_url, "SELECT task_id, description FROM masterplan_tasks ORDER BY task_id") == before
    status, health = _http(f"http://127.0.0.1:{dm.env['DEVMATRIX_PORT']}/api/v1/health")
    assert (status, health["release"]) == (200, "mvp")
    assert dm.messages()[-1] == {"to": "team", "text": "ROLLBACK COMPLETE - MVP restored"}


def test_003_rehearse_the_cutover_in_staging(recall: tuple[Path, dict[str, str], list[str]], pg_url: str) -> None:
    """003: the cutover fails on purpose after each phase, in staging (the last right after the proxy
    switched to Green, its guard watching for a failed request); Blue serves again, the migration
    reverted, the database as it was."""
    folder, env, _ = recall
    code, deployed = run_json("run", "ci4.yaml", "-e", "staging", "--no-input", cwd=folder, env=env)
    assert code == 0, deployed  # staging's cutover requires staging's CI.4 deploy
    code, record = _rehearse(folder, env, "-e", "staging", *SHORT)
    assert code == 0, _why(record)
    cycles = _cycles_ok(record, state=True)
    assert [c["at"] for c in cycles][-1] == "T-0 switch the proxy to Green" and len(cycles) == 3
    assert all(c["verify_s"] is not None for c in cycles)  # /readyz through the proxy after each rollback
    version = _http(f"http://127.0.0.1:{env['RECALL_PROXY_PORT']}/version")[1]
    assert (version["project"], version["version"]) == ("recall_blue", "sha-0a1b2c3")
    assert _columns(pg_url) == ["id", "body"]
    assert not (Path(env["RECALL_STATE"]) / "writes_frozen").exists()
