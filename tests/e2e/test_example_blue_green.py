"""examples/blue-green end to end: the real runbook, real nginx, real gunicorn slots, PostgreSQL, and
the example's own load generator, on a copy of the example with free loopback ports, its own schema
and a temporary ledger.

The runbook validates and plans (always). Under a steady, bounded load through nginx: v2 goes live
(preview, canary weights with a watch, switch, drain, verify, monitor, the old slot retired) with no
failed request, and the kill switch brings v1 back within its target; the broken v3 is stopped at
the preview (exit 11) with no failed request, and v1 still serves every user."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import rehearsal_passed, tminus, wait_for

from tminus.engine.exitcodes import Exit

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "blue-green"
NGINX = "/usr/sbin/nginx"
GUNICORN = Path(sys.executable).parent / "gunicorn"
DATABASE_URL = os.environ.get("BG_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
LOAD = ["--connections", "4", "--rate", "100", "--count", "4000", "--duration", "60"]  # bounded either way


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_runbook_validates_and_plans(tmp_path: Path) -> None:
    runbook = str(EXAMPLE / "runbook.yaml")
    done = tminus("validate", runbook, cwd=tmp_path, env={"TMINUS_LEDGER": f"sqlite:///{tmp_path}/ledger.db"})
    assert done.returncode == 0, done.stdout + done.stderr
    done = tminus("plan", runbook, "-e", "local", cwd=tmp_path, env={"TMINUS_LEDGER": f"sqlite:///{tmp_path}/l.db"})
    assert done.returncode == 0, done.stdout + done.stderr
    plan = " ".join(done.stdout.split())
    for said in ("route the preview to green", "set weights", "watch the canary", "switch all traffic to green",
                 "stop process blue", "kill switch"):
        assert said.lower() in plan.lower(), f"the plan does not mention {said!r}:\n{done.stdout}"


def test_the_docs_page_quotes_the_real_runbook() -> None:
    page = (EXAMPLE.parents[1] / "docs" / "examples" / "blue-green.md").read_text()
    runbook = (EXAMPLE / "runbook.yaml").read_text()
    blocks = re.findall(r"^```yaml\n(.*?)^```", page, re.S | re.M)
    assert len(blocks) >= 7
    for body in blocks:
        assert body in runbook, f"docs/examples/blue-green.md: not a verbatim excerpt of runbook.yaml:\n{body}"


@dataclass
class Stack:
    """A copy of the example, its stack up (nginx, v1 in the blue slot), and a ledger of its own."""

    root: Path
    state: Path
    env: dict[str, str]
    port: int
    ports: dict[str, int]

    @property
    def runbook(self) -> str:
        return str(self.root / "runbook.yaml")

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return tminus(*args, "--var-file", str(self.state / "vars.json"), cwd=self.root, env=self.env,
                      timeout=timeout)

    def under_load(self, name: str) -> Load:
        return Load(self, name)

    def get(self, path: str = "/") -> tuple[int, str | None]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                return resp.status, resp.headers.get("X-Release")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("X-Release")


class Load:
    """The example's loadgen.py through nginx, stopped by its stop file; its JSON summary."""

    def __init__(self, stack: Stack, name: str) -> None:
        self.stop_file = stack.state / f"{name}.stop"
        self.summary_file = stack.state / f"{name}.json"
        started = stack.state / f"{name}.started"
        self.proc = subprocess.Popen(
            [sys.executable, str(stack.root / "loadgen.py"), f"http://127.0.0.1:{stack.port}/", *LOAD,
             "--stop-file", str(self.stop_file), "--summary", str(self.summary_file),
             "--started-file", str(started)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: started.exists() or self.proc.poll() is not None, timeout=30)  # the load is on
        assert started.exists(), f"the load generator exited {self.proc.returncode} before its first answer"

    def __enter__(self) -> Load:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)

    def stop(self) -> dict[str, Any]:
        self.stop_file.touch()
        _out, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        return dict(json.loads(self.summary_file.read_text()))


@pytest.fixture
def stack(tmp_path: Path, short_path: Path) -> Iterator[Stack]:
    if not os.access(NGINX, os.X_OK):
        pytest.skip(f"{NGINX} is not installed (.ci/run installs it)")
    if not GUNICORN.exists():
        pytest.skip(f"{GUNICORN} is not installed (the dev extras: scripts/bootstrap.sh)")
    root = short_path / "blue-green"  # nginx's socket beside routing.conf: a short path (conftest.py)
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("state", "__pycache__"))
    state = root / "state"
    ports = {"blue": _free_port(), "green": _free_port()}
    port, preview = _free_port(), _free_port()
    env = {"TMINUS_LEDGER": f"sqlite:///{tmp_path}/ledger.db", "TMINUS_OPERATOR": "tester"}
    stack_py = [sys.executable, str(root / "stack.py"), "--state", str(state)]
    up = subprocess.run([*stack_py, "up", "--port", str(port), "--preview-port", str(preview),
                         "--blue-port", str(ports["blue"]), "--green-port", str(ports["green"]),
                         "--schema", f"bg_{uuid.uuid4().hex[:12]}", "--database-url", DATABASE_URL,
                         "--gunicorn", str(GUNICORN), "--release", "v1"],
                        capture_output=True, text=True, timeout=90)
    try:
        assert up.returncode == 0, up.stderr
        yield Stack(root, state, env, port, ports)
    finally:
        down = subprocess.run([*stack_py, "down"], capture_output=True, text=True, timeout=90)
        assert down.returncode == 0, down.stderr


@pytest.mark.postgres
def test_v2_goes_live_under_load_without_a_failed_request_then_the_kill_switch_brings_v1_back(
        stack: Stack) -> None:
    assert stack.get() == (200, "v1")
    with stack.under_load("v2") as load:
        done = stack.run("run", stack.runbook, "-e", "local", "--yes", "--var", "release=v2", "--var", "previous=v1",
                         "--var", "color=green", "--var", "live=blue")
        summary = load.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary["failed"] == 0, summary
    assert summary["served"].get("v1", 0) > 0 and summary["served"].get("v2", 0) > 0, summary
    assert summary["switches"][-1][0] == "v2", summary  # the last answers all came from v2
    assert stack.get() == (200, "v2")
    assert not _listening(stack.ports["blue"])  # the old slot was retired once the monitor window passed

    with stack.under_load("kill-switch") as load:
        done = stack.run("kill-switch", stack.runbook, "-e", "local", "--reason", "test", "--var", "release=v2",
                         "--var", "previous=v1", "--var", "color=green", "--var", "live=blue")
        summary = load.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary["failed"] == 0, summary
    assert stack.get() == (200, "v1")

    releases = tminus("releases", stack.runbook, "-e", "local", "--json", cwd=stack.root, env=stack.env)
    assert releases.returncode == 0, releases.stderr
    [local] = json.loads(releases.stdout)
    assert local["live"]["release"] == "v2"
    assert local["live"]["kill_switches"], local  # the kill switch is recorded against the live release


@pytest.mark.postgres
def test_broken_v3_is_stopped_at_the_preview_and_no_user_sees_it(stack: Stack) -> None:
    with stack.under_load("v3") as load:
        done = stack.run("run", stack.runbook, "-e", "local", "--yes", "--var", "release=v3", "--var", "previous=v1",
                         "--var", "color=green", "--var", "live=blue")
        summary = load.stop()
    out = done.stdout + done.stderr
    assert done.returncode == Exit.ROLLED_BACK, out
    assert "smoke-test the release through the preview listener" in out and "expected 200, got 500" in out, out
    assert summary["failed"] == 0, summary
    assert set(summary["served"]) == {"v1"}, summary  # v3 never answered a user
    assert summary["total"] > 100, summary
    assert stack.get() == (200, "v1")
    assert not _listening(stack.ports["green"])  # v3 was stopped by the rollback
    routing = (stack.state / "nginx" / "routing.conf").read_text()
    assert '"preview": null' in routing and '"weights": {"blue": 100, "green": 0}' in routing, routing


@pytest.mark.postgres
def test_rolling_back_the_completed_v2_run_brings_v1_back_under_load(stack: Stack) -> None:
    done = stack.run("run", stack.runbook, "-e", "local", "--yes", "--var", "release=v2", "--var", "previous=v1",
                     "--var", "color=green", "--var", "live=blue")
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = json.loads(tminus("history", "--json", "-n", "1", cwd=stack.root, env=stack.env).stdout)[0]["id"]
    with stack.under_load("rollback") as load:
        # newest first: the finalize step's undo starts v1 in blue again, the proxy steps' derived undo
        # restore the routing each found, the service step's stops v2
        done = tminus("rollback", run_id, "--reason", "test", cwd=stack.root, env=stack.env, timeout=60)
        summary = load.stop()
    assert done.returncode == Exit.ROLLED_BACK, done.stdout + done.stderr
    assert summary["failed"] == 0, summary
    assert summary["switches"][-1][0] == "v1", summary
    assert stack.get() == (200, "v1")
    assert not _listening(stack.ports["green"])


@pytest.mark.postgres
def test_the_rehearsal_fails_after_the_preview_and_pulls_the_kill_switch_mid_cutover_under_load(
        stack: Stack) -> None:
    """`tminus rehearse --at preview`: a failure right after the preview, rolled back; then the kill
    switch pulled after the last phase, while the previous release still runs in its slot (the
    start is skipped, the switch happens), and the stopped run rolled back. The app's table is
    fingerprinted before and after each cycle; no user request fails."""
    with stack.under_load("rehearsal") as load:
        done = stack.run("rehearse", stack.runbook, "-e", "local", "--yes", "--json", "--at", "preview",
                         "--var", "release=v2", "--var", "previous=v1", "--var", "color=green", "--var", "live=blue",
                         timeout=120)
        summary = load.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    failed, switched = rehearsal_passed(json.loads(done.stdout), 2)
    assert (failed["fault"], failed["at"], switched["fault"]) == ("fail", "preview", "kill_switch")
    [source] = failed["fingerprints"]["sources"]
    assert source["tables"] and source["tables"][0].startswith("bg_") and source["tables"][0].endswith(".greeting")
    kill = switched["kill_switch"]
    assert (kill["status"], kill["within"]) == ("completed", True) and kill["actual_s"] < kill["target_s"], kill
    assert summary["failed"] == 0, summary
    assert stack.get() == (200, "v1")
    assert not _listening(stack.ports["green"])  # every cycle stopped what it started
