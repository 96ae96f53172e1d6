"""examples/dashboard-gates end to end: the real runbook, stand-in service and chat webhook, on a drill
copy of the example (drill.py: a short monitor window) with free ports and a temporary ledger.

The eight gates pass and a broken contract blocks the run; a cutover completes after a quiet
watch; and when the service turns bad during the watch, the rule that reads it fires and the run
rolls back to the frontend it replaced."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import rehearsal_passed, run_json, spawn, tminus, wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dashboard-gates"
GATES = [
    "gate:1 frontend build",
    "gate:2 root execution, no legacy paths",
    "gate:3 KPI compute parity",
    "gate:4 CSV header contracts",
    "gate:5 health telemetry",
    "gate:6 runtime resilience",
    "gate:7 systemd unit consistency",
    "gate:8 documentation alignment",
]
# The drill: a probe every 500 ms and a short degraded period; the watch length is per test.
DRILL = ["--interval", "500ms", "--baseline", "1500ms", "--rule", "sustained degraded state:for=2s"]
QUIET_WATCH = "6s"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Dashboard:
    """A drill copy of the example with its service and chat stand-in running."""

    root: Path
    env: dict[str, str]
    port: int
    chat_port: int

    @property
    def runbook(self) -> str:
        return str(self.root / "runbook.yaml")

    @property
    def current(self) -> Path:
        return Path(self.env["DASHBOARD_STATE"]) / "current"

    def _call(self, port: int, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                         method="GET" if body is None else "POST")
        with urllib.request.urlopen(request, timeout=5) as resp:
            return json.load(resp)

    def health(self) -> dict[str, Any]:
        return self._call(self.port, "/health")

    def control(self, change: dict[str, Any]) -> dict[str, Any]:
        return self._call(self.port, "/control", change)

    def chat(self) -> list[str]:
        return [m["body"]["text"] for m in self._call(self.chat_port, "/messages")]

    def events(self, run_id: str) -> list[dict[str, Any]]:
        code, shown = run_json("show", run_id, cwd=self.root, env=self.env)
        assert code == 0, shown
        return shown["events"]


@pytest.fixture
def start_dashboard(tmp_path: Path) -> Iterator[Callable[[str], Dashboard]]:
    """Makes the drill copy with a watch of the given length and starts its stand-ins (once)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(window: str) -> Dashboard:
        root = tmp_path / "dashboard-gates"
        subprocess.run([sys.executable, str(EXAMPLE / "drill.py"), str(root), "--duration", window, *DRILL],
                       check=True, capture_output=True, timeout=30)
        port, chat_port = _free_port(), _free_port()
        env = {
            "DASHBOARD_PORT": str(port),
            "DASHBOARD_CHAT_PORT": str(chat_port),
            "DASHBOARD_STATE": str(tmp_path / "state"),
            "TMINUS_LEDGER": f"sqlite:///{tmp_path / 'ledger.db'}",
        }
        for script, log in (("service.py", "service.log"), ("chat.py", "chat.log")):
            with open(tmp_path / log, "wb") as out:
                procs.append(subprocess.Popen([sys.executable, str(root / script)], env={**os.environ, **env},
                                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        wait_for(lambda: _listening(port) and _listening(chat_port), timeout=15)
        return Dashboard(root, env, port, chat_port)

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def dashboard(start_dashboard: Callable[[str], Dashboard]) -> Dashboard:
    """A short watch: a run that nothing disturbs completes in a few seconds."""
    return start_dashboard(QUIET_WATCH)


@pytest.fixture
def watched_dashboard(start_dashboard: Callable[[str], Dashboard]) -> Dashboard:
    """A long watch, so a rule has time to fire however late the fault arrives; it ends the run."""
    return start_dashboard("60s")


def test_the_runbook_validates_as_shipped_and_as_a_drill(dashboard: Dashboard) -> None:
    for runbook in (EXAMPLE / "runbook.yaml", Path(dashboard.runbook)):
        proc = tminus("validate", str(runbook), cwd=dashboard.root)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "8 gates, 3 phases" in proc.stdout
    # the shipped runbook keeps the production windows of 000; only the copy is short
    shipped = (EXAMPLE / "runbook.yaml").read_text()
    drill = Path(dashboard.runbook).read_text()
    for line in ("  duration: 30m", "  interval: 15s", "      for: 5m", "window: 10m, at_least: 3", "consecutive: 3"):
        assert line in shipped
    assert f"  duration: {QUIET_WATCH}" in drill and "      for: 2s" in drill and "      for: 5m" not in drill


def test_the_eight_gates_pass_then_broken_contracts_block(dashboard: Dashboard) -> None:
    code, result = run_json("gate", dashboard.runbook, cwd=dashboard.root, env=dashboard.env)
    assert code == 0, result
    finished = [e["data"] for e in dashboard.events(result["run_id"]) if e["type"] == "step.finished"]
    assert sorted({d["section"] for d in finished}) == GATES
    assert len(finished) == 26 and {d["status"] for d in finished} == {"ok"}

    # 001's docs consistency: one word of a phase step changed, RUNBOOK.md not regenerated -> blocked
    runbook = Path(dashboard.runbook)
    shipped = runbook.read_text()
    runbook.write_text(shipped.replace("- name: Maintenance mode on (", "- name: Maintenance mode enabled (", 1))
    try:
        code, result = run_json("gate", dashboard.runbook, cwd=dashboard.root, env=dashboard.env)
    finally:
        runbook.write_text(shipped)
    assert code == 10, result
    failed = [e["data"] for e in dashboard.events(result["run_id"])
              if e["type"] == "step.finished" and e["data"]["status"] != "ok"]
    assert [d["name"] for d in failed] == ["RUNBOOK.md, the operators' page of this runbook, is current"]
    assert "Maintenance mode enabled" in str(failed[0]), failed[0]

    # a legacy path creeps into the sources and the backend renames two export columns
    app_js = dashboard.root / "src" / "frontend" / "app.js"
    app_js.write_text(app_js.read_text() + '// fallback: "/legacy/portal/resource-history.html"\n')
    dashboard.control({"fault": "export_header_drift"})
    code, result = run_json("run", dashboard.runbook, "--yes", cwd=dashboard.root, env=dashboard.env)
    assert code == 10, result
    assert result["status"] == "blocked"
    events = dashboard.events(result["run_id"])
    failed = {e["data"]["name"]: e["data"]["section"] for e in events
              if e["type"] == "step.finished" and e["data"]["status"] != "ok"}
    assert failed == {
        "no source references legacy/": "gate:2 root execution, no legacy paths",
        "resource-history export header": "gate:4 CSV header contracts",
        "job-query export header": "gate:4 CSV header contracts",
    }
    why = tminus("why", result["run_id"], cwd=dashboard.root, env=dashboard.env)
    assert "no source references legacy/" in why.stdout and "good_qty" in why.stdout, why.stdout
    # nothing changed: no phase step ran, the old frontend still serves, no maintenance
    assert all(e["data"]["section"].startswith("gate") for e in events if e["type"] == "step.started")
    assert dashboard.current.resolve().name == "1.9.0"
    health = dashboard.health()
    assert (health["version"], health["maintenance"]) == ("1.9.0", False)


def test_a_cutover_completes_after_a_quiet_watch(dashboard: Dashboard) -> None:
    code, result = run_json("run", dashboard.runbook, "--yes", cwd=dashboard.root, env=dashboard.env)
    assert code == 0, result
    assert dashboard.current.resolve() == dashboard.root / "releases" / "2.0.0"
    health = dashboard.health()
    assert (health["version"], health["status"], health["maintenance"]) == ("2.0.0", "ok", False)
    events = dashboard.events(result["run_id"])
    stages = {e["data"]["stage"]: e["data"] for e in events if e["type"] == "monitor.finished"}
    assert stages["window"]["outcome"] == "passed" and stages["window"]["samples"] >= 10, stages  # 6 s / 500 ms
    assert stages["baseline"]["outcome"] == "passed"
    assert not [e for e in events if e["type"] == "monitor.transition"]
    assert dashboard.chat() == []  # nothing fired, nobody was told


def _wait_for_the_watch(dashboard: Dashboard) -> str:
    """The id of the running run once it decided go: its monitor window is open from then on."""
    found: list[str] = []

    def decided() -> bool:
        if not found:
            _code, runs = run_json("status", cwd=dashboard.root, env=dashboard.env)
            found.extend(r["run_id"] for r in runs[:1])
        return bool(found) and any(e["type"] == "decision" for e in dashboard.events(found[0]))

    wait_for(decided, timeout=30, interval=0.2)
    return found[0]


@pytest.mark.parametrize(
    ("rule", "changes"),
    [
        # the 2.0.0 bundle's polling exhausts the pool; clients retry (a notify rule: the run goes on)
        ("pool saturation pressure", [{"fault": "pool_exhausted", "version": "2.0.0"}, {"client_retries": 12}]),
        ("sustained degraded state", [{"degraded_reason": "route cache rebuild failing", "version": "2.0.0"}]),
        ("worker restart churn", [{"watchdog_restarts": 3}]),
    ],
)
def test_the_service_turning_bad_in_the_watch_rolls_back(
    watched_dashboard: Dashboard, rule: str, changes: list[dict[str, Any]]
) -> None:
    dashboard = watched_dashboard
    proc = spawn("run", dashboard.runbook, "--yes", "--json", cwd=dashboard.root, env=dashboard.env)
    try:
        run_id = _wait_for_the_watch(dashboard)
        assert dashboard.health()["version"] == "2.0.0"  # the cutover is live when it goes bad
        for change in changes:
            dashboard.control(change)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 11, out + err
    result = json.loads(out)
    assert (result["run_id"], result["status"]) == (run_id, "rolled_back")

    # the frontend it replaced serves again, checked by verify after the rollback
    assert dashboard.current.resolve() == dashboard.root / "releases" / "1.9.0"
    health = dashboard.health()
    assert (health["version"], health["maintenance"], health["degraded_reason"]) == ("1.9.0", False, "")
    events = dashboard.events(run_id)
    actions = [(e["data"]["rule"], e["data"]["action"]) for e in events if e["type"] == "monitor.action"]
    assert actions[-1] == (rule, "rollback"), actions
    if len(changes) > 1:
        assert ("client retry pressure", "notify") in actions
    assert [e["data"]["ok"] for e in events if e["type"] == "rollback.finished"] == [True]
    assert any(m.startswith("firing (rollback)") and rule in m for m in dashboard.chat())
    why = tminus("why", run_id, cwd=dashboard.root, env=dashboard.env)
    assert f"monitor rule '{rule}' fired" in why.stdout, why.stdout


RELOAD_UNDO = """    # After the symlink is back: reload again, so the workers serve the old release.
    undo:
      - name: Controlled worker reload onto the previous release
"""


def test_the_rehearsal_fails_after_the_switch_and_the_replaced_frontend_serves_again(dashboard: Dashboard) -> None:
    """No database to fingerprint: what proves the state is back are the rollback's checks (/health
    reports the replaced release) and verify's after_rollback checks, run at the end of the cycle."""
    code, record = run_json("rehearse", dashboard.runbook, "--yes", "--at", "switch frontend",
                            cwd=dashboard.root, env=dashboard.env)
    assert code == 0, record
    (cycle,) = rehearsal_passed(record, 1, fingerprinted=False)
    assert record["fingerprint_sources"] == [] and cycle["at"] == "switch frontend"
    assert cycle["verify_s"] is not None and cycle["within_budget"] is True
    assert dashboard.current.resolve() == dashboard.root / "releases" / "1.9.0"
    health = dashboard.health()
    assert (health["version"], health["status"], health["maintenance"]) == ("1.9.0", "ok", False)
    checked = {e["data"]["name"]: e["data"]["status"] for e in dashboard.events(cycle["run_id"])
               if e["type"] == "step.finished" and e["step_key"] == "rollback[0]"}
    assert checked == {"/health reports the release that was replaced": "ok"}


def test_a_rehearsal_catches_a_rollback_that_leaves_the_new_frontend_serving(dashboard: Dashboard) -> None:
    """With a phase undo that forgets the reload onto the previous release, the symlink goes back but
    the workers keep serving 2.0.0: the rollback's check fails, the cycle's run ends rollback_failed,
    exit 12."""
    book = Path(dashboard.runbook)
    text = book.read_text()
    start = text.index(RELOAD_UNDO)
    end = text.index("\n\n", start)
    # the undo stays (so the phase can still be rolled back), but it only looks: nothing reloads
    careless = (RELOAD_UNDO.replace("Controlled worker reload onto the previous release", "Look at /health")
                + '        http: "http://127.0.0.1:{{ env.DASHBOARD_PORT | default(vars.port) }}/health"\n')
    book.write_text(text[:start] + careless + text[end:])
    # as its author would, with the page the documentation gate holds it to (RUNBOOK.md)
    assert tminus("docs", dashboard.runbook, "-o", "RUNBOOK.md", cwd=dashboard.root, env=dashboard.env).returncode == 0
    code, record = run_json("rehearse", dashboard.runbook, "--yes", "--at", "switch frontend",
                            cwd=dashboard.root, env=dashboard.env)
    assert code == 12, record
    (cycle,) = record["cycles"]
    assert (cycle["status"], cycle["ok"]) == ("rollback_failed", False), cycle
    assert any("rollback" in p for p in cycle["problems"]), cycle["problems"]
    assert dashboard.health()["version"] == "2.0.0"  # what the rehearsal caught, for real
