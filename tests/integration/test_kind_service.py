"""The `service` kind against real parts: gunicorn serving tests/servers/wsgi_app.py, real processes
and signals, a stand-in `systemctl` (systemd is not PID 1 here) managing real processes, and Docker
only where its daemon answers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.servers import systemctl
from tests.servers.gunicorn import command, free_port, get

from helpers_kinds import execute, make_ctx
from tminus.kinds import registry
from tminus.kinds.base import Execution, Observation, StepContext
from tminus.kinds.transport import group_alive, process_start_time
from tminus.runbook.models import Step


def nested_runner(parent: StepContext) -> Any:
    """The engine's nested runner in small: run the check, pass on no error, no failure, and a 2xx."""

    def run_nested(step: Step, remaining: float | None) -> tuple[bool, str, Observation]:
        ctx = make_ctx(step, parent.base_dir, timeout=remaining, environ=parent.environ, shared=parent.shared)
        obs = execute(ctx)
        if obs.error or obs.failures:
            return False, obs.error or obs.failures[0], obs
        status = obs.values.get("status")
        ok = status is None or 200 <= int(status) < 300
        return ok, f"status {status}", obs

    return run_nested


class Run:
    """One step executed as the engine would: nested checks, effects recorded in order."""

    def __init__(self, spec: dict[str, Any], base: Path, environ: dict[str, str] | None = None,
                 timeout: float | None = 60) -> None:
        self.step = Step.model_validate({"name": spec.get("name", "svc"), "service": spec})
        self.step._key = "phases[0].steps[0]"
        self.step._path = ("phases", 0, "steps", 0)
        self.effects: list[dict[str, Any]] = []
        ctx = make_ctx(self.step, base, environ=environ, timeout=timeout)
        ctx.run_nested = nested_runner(ctx)
        ctx.effect_sink = lambda kind, details: self.effects.append({"effect": kind, **details})
        self.obs = execute(ctx)

    def execution(self, status: str | None = "ok") -> Execution:
        return Execution(self.step.key, effects=self.effects, status=status, evidence=self.obs.evidence)

    def undo(self, status: str | None = "ok") -> list[Step] | None:
        return registry.get("service").derive_undo(self.step, self.execution(status))  # type: ignore[misc]


def run_undo(undo: Step, base: Path, environ: dict[str, str] | None = None) -> Observation:
    ctx = make_ctx(undo, base, environ=environ, timeout=60)
    ctx.run_nested = nested_runner(ctx)
    return execute(ctx)


def gunicorn_spec(port: int, release: str = "v2", **kw: Any) -> dict[str, Any]:
    return {"action": "start", "name": "green", "command": command(port), "env": {"RELEASE": release},
            "log": "logs/green.log", "pid_file": "run/green.pid", "stop_timeout": "5s",
            "health": {"http": f"http://127.0.0.1:{port}/healthz"}, "health_interval": "100ms",
            "health_timeout": "30s", **kw}


@pytest.fixture
def reaper(tmp_path: Path) -> Iterator[list[int]]:
    """Process groups a test started (and the stand-in's units): killed at the end whatever happened."""
    groups: list[int] = []
    yield groups
    groups += [int(p.read_text()) for p in (tmp_path / "units").glob("*.pid") if p.read_text().strip().isdigit()]
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def test_start_is_gated_on_health_and_its_undo_stops_exactly_it(tmp_path: Path, reaper: list[int]) -> None:
    port = free_port()
    run = Run(gunicorn_spec(port), tmp_path)
    assert run.obs.error is None, run.obs
    pid = run.obs.values["pid"]
    reaper.append(pid)
    assert run.obs.values["healthy"] is True and run.obs.values["attempts"] >= 1
    assert [e["effect"] for e in run.effects] == ["service_started", "service_healthy"]
    started = run.effects[0]
    assert started["pid"] == pid and started["started"] == process_start_time(pid)
    assert (tmp_path / "run/green.pid").read_text().strip() == str(pid)
    assert get(f"http://127.0.0.1:{port}/")[1] == "v2"
    assert os.getsid(pid) == pid  # its own session: it outlives tminus
    (undo,) = run.undo() or []
    assert undo.key.endswith(".undo[auto]") and undo.service is not None
    assert undo.service.action == "stop" and undo.service.target is not None
    assert undo.service.target["pid"] == pid
    stopped = run_undo(undo, tmp_path)
    assert stopped.error is None, stopped
    assert "terminated (SIGTERM)" in stopped.values["stopped"]
    assert not group_alive(pid) and not (tmp_path / "run/green.pid").exists()
    assert get(f"http://127.0.0.1:{port}/healthz")[0] == 0


def test_an_unhealthy_start_fails_with_its_log_tail_and_leaves_nothing(tmp_path: Path, reaper: list[int]) -> None:
    port = free_port()
    run = Run(gunicorn_spec(port, "broken", health_timeout="3s", env={"RELEASE": "broken", "TOKEN": "hunter2"}),
              tmp_path)
    assert run.obs.error is not None and "not healthy" in run.obs.error
    pid = run.effects[0]["pid"]
    reaper.append(pid)
    assert "release broken: /healthz -> 500" in run.obs.evidence["log_tail"]
    assert run.obs.evidence["stopped_after_failure"].startswith(f"pid {pid} terminated")
    assert not group_alive(pid)
    assert run.undo(status="failed") is None  # stopped already: no second stop


def test_a_release_that_exits_at_boot_fails_fast(tmp_path: Path, reaper: list[int]) -> None:
    port = free_port()
    began = time.monotonic()
    run = Run(gunicorn_spec(port, "crash", env={"RELEASE": "crash"}), tmp_path)
    reaper.append(run.effects[0]["pid"])
    assert run.obs.error is not None and "exited with status" in run.obs.error, run.obs.error
    assert time.monotonic() - began < 25  # not the whole 30 s health timeout
    assert "refusing to boot" in run.obs.evidence["log_tail"]


def test_secrets_in_the_log_tail_are_masked(tmp_path: Path, reaper: list[int]) -> None:
    spec = {"action": "start", "name": "leaky", "command": "echo token=$TOKEN; exit 4", "env": {"TOKEN": "s3cr3t-42"},
            "health": {"file": {"path": "never", "exists": True}}, "health_timeout": "5s"}
    step = Step.model_validate({"service": spec})
    ctx = make_ctx(step, tmp_path)
    ctx.masker.add("s3cr3t-42")
    ctx.run_nested = nested_runner(ctx)
    obs = execute(ctx)
    assert obs.error is not None and "exited with status 4" in obs.error
    assert "token=" in obs.evidence["log_tail"] and "s3cr3t-42" not in obs.evidence["log_tail"]


def test_stop_drains_then_kills_a_process_that_ignores_term(tmp_path: Path, reaper: list[int]) -> None:
    spec = {"action": "start", "name": "stubborn", "command": "trap '' TERM; touch up; while :; do sleep 0.05; done",
            "health": {"file": {"path": "up", "exists": True}}, "health_interval": "50ms", "stop_timeout": "1s"}
    run = Run(spec, tmp_path)
    assert run.obs.error is None, run.obs
    pid = run.obs.values["pid"]
    reaper.append(pid)
    stop = Run({"action": "stop", "name": "stubborn", "stop_timeout": "1s"}, tmp_path)  # found by its pid file
    assert stop.obs.error is None, stop.obs
    assert stop.effects[0]["effect"] == "service_found" and stop.effects[0]["running"]["pid"] == pid
    assert "SIGKILL after SIGTERM and 1s" in stop.obs.values["stopped"]
    assert stop.obs.values["duration"] >= 1000
    assert not group_alive(pid)


def test_a_reused_pid_is_never_signalled(tmp_path: Path, reaper: list[int]) -> None:
    """The recorded pid now belongs to another process (another start time): the undo leaves it alone."""
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    reaper.append(other.pid)
    target = {"pid": other.pid, "pgid": other.pid, "started": "some-boot:1", "pid_file": str(tmp_path / "x.pid")}
    stop = Run({"action": "stop", "name": "green", "target": target}, tmp_path)
    assert stop.obs.error is None
    assert "now belongs to another process" in stop.obs.values["stopped"]
    assert other.poll() is None and group_alive(other.pid)
    other.kill()
    other.wait()


def test_a_pid_file_naming_a_process_tminus_did_not_start_is_refused(tmp_path: Path, reaper: list[int]) -> None:
    """Not a group leader (another tool's pid file): stop refuses rather than claim nothing runs."""
    other = subprocess.Popen(["sleep", "60"])  # in the test's own process group
    (tmp_path / "run").mkdir()
    (tmp_path / "run/green.pid").write_text(f"{other.pid}\n")
    stop = Run({"action": "stop", "name": "green", "pid_file": "run/green.pid"}, tmp_path)
    assert stop.obs.error is not None and "does not lead its own process group" in stop.obs.error
    assert other.poll() is None
    other.kill()
    other.wait()


def test_start_refuses_a_second_copy_and_stop_then_undo_starts_it_again(tmp_path: Path, reaper: list[int]) -> None:
    port = free_port()
    first = Run(gunicorn_spec(port), tmp_path)
    assert first.obs.error is None
    reaper.append(first.obs.values["pid"])
    again = Run(gunicorn_spec(port), tmp_path)
    assert again.obs.error is not None and "already running" in again.obs.error and again.effects == []
    stop = Run({**gunicorn_spec(port), "action": "stop"}, tmp_path)
    assert stop.obs.values["was_running"] is True and not group_alive(first.obs.values["pid"])
    (undo,) = stop.undo() or []
    assert undo.service is not None and undo.service.action == "start"
    back = run_undo(undo, tmp_path)
    assert back.error is None and back.values["healthy"] is True
    reaper.append(back.values["pid"])
    assert back.values["pid"] != first.obs.values["pid"]
    assert get(f"http://127.0.0.1:{port}/")[1] == "v2"


def test_restart_replaces_the_release_and_its_undo_restarts_the_previous(tmp_path: Path, reaper: list[int]) -> None:
    port = free_port()
    v1 = Run(gunicorn_spec(port, "v1"), tmp_path)
    assert v1.obs.error is None
    reaper.append(v1.obs.values["pid"])
    restart = Run(gunicorn_spec(port, "v2", action="restart", previous={"env": {"RELEASE": "v1"}}), tmp_path)
    assert restart.obs.error is None, restart.obs
    reaper.append(restart.obs.values["pid"])
    assert [e["effect"] for e in restart.effects] == ["service_found", "service_started", "service_healthy"]
    assert restart.effects[0]["running"]["pid"] == v1.obs.values["pid"]
    assert not group_alive(v1.obs.values["pid"]) and get(f"http://127.0.0.1:{port}/")[1] == "v2"
    (undo,) = restart.undo() or []
    assert undo.service is not None and undo.service.env == {"RELEASE": "v1"}
    back = run_undo(undo, tmp_path)
    assert back.error is None, back
    reaper.append(back.values["pid"])
    assert not group_alive(restart.obs.values["pid"]) and get(f"http://127.0.0.1:{port}/")[1] == "v1"


def test_systemd_backend_against_a_stand_in_systemctl(tmp_path: Path, reaper: list[int]) -> None:
    """systemd is not PID 1 here: `systemctl` is tests/servers/systemctl.py, first on PATH, managing a
    real gunicorn. The undo stops only the invocation it recorded."""
    state = tmp_path / "units"
    state.mkdir()
    port = free_port()
    (state / "green.service").write_text(f"RELEASE=v2 {command(port)}")
    systemctl.install(tmp_path / "bin")
    environ = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "SYSTEMCTL_STANDIN_DIR": str(state)}
    spec = {"action": "start", "backend": "systemd", "name": "green", "unit": "green.service",
            "health": {"http": f"http://127.0.0.1:{port}/healthz"}, "health_interval": "100ms"}
    run = Run(spec, tmp_path, environ)
    assert run.obs.error is None, run.obs
    assert [e["effect"] for e in run.effects] == ["service_starting", "service_started", "service_healthy"]
    started = run.effects[1]
    reaper.append(started["pid"])
    assert started["unit"] == "green.service" and started["invocation_id"] and started["pid"] > 0
    assert get(f"http://127.0.0.1:{port}/")[1] == "v2"
    (undo,) = run.undo() or []
    # the unit was restarted by someone else since: another invocation, left alone
    subprocess.run(["systemctl", "restart", "green.service"], env=environ, check=True)
    now = systemctl_show(environ)
    reaper.append(int(now["MainPID"]))
    assert now["InvocationID"] != started["invocation_id"]
    alone = run_undo(undo, tmp_path, environ)
    assert alone.error is None and "left alone" in alone.values["stopped"]
    assert systemctl_show(environ)["ActiveState"] == "active"
    # the undo of a start of this invocation stops it
    stop = Run({"action": "stop", "backend": "systemd", "name": "green", "unit": "green.service"}, tmp_path, environ)
    assert stop.obs.error is None and "stopped (systemctl stop)" in stop.obs.values["stopped"]
    assert systemctl_show(environ)["ActiveState"] == "inactive"


def test_systemd_unhealthy_start_shows_the_unit_log(tmp_path: Path, reaper: list[int]) -> None:
    state = tmp_path / "units"
    state.mkdir()
    port = free_port()
    (state / "green.service").write_text(f"RELEASE=broken {command(port)}")
    systemctl.install(tmp_path / "bin")
    environ = {**os.environ, "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "SYSTEMCTL_STANDIN_DIR": str(state)}
    spec = {"action": "start", "backend": "systemd", "name": "green", "unit": "green.service",
            "log": "units/green.service.log", "health_timeout": "3s",
            "health": {"http": f"http://127.0.0.1:{port}/healthz"}, "health_interval": "100ms"}
    run = Run(spec, tmp_path, environ)
    reaper.append(run.effects[1]["pid"])
    assert run.obs.error is not None and "not healthy" in run.obs.error
    if shutil.which("journalctl", path=environ["PATH"]) is None:
        assert "release broken: /healthz -> 500" in run.obs.evidence["log_tail"]
    assert systemctl_show(environ)["ActiveState"] == "inactive"  # a failed start is stopped


def systemctl_show(environ: dict[str, str]) -> dict[str, str]:
    out = subprocess.run(["systemctl", "show", "-p", "MainPID", "-p", "InvocationID", "-p", "ActiveState",
                          "green.service"], env=environ, capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def _docker_usable() -> str | None:
    if shutil.which("docker") is None:
        return "no docker command on this machine"
    done = subprocess.run(["docker", "info"], capture_output=True, text=True)
    return None if done.returncode == 0 else f"docker info failed: no usable Docker engine ({done.stderr.strip()[:80]})"


@pytest.mark.skipif(_docker_usable() is not None, reason=str(_docker_usable()))
def test_docker_start_health_and_undo(tmp_path: Path) -> None:  # pragma: no cover - needs a Docker engine
    port = free_port()
    spec = {"action": "start", "backend": "docker", "name": f"tminus-test-{port}", "image": "python:3-alpine",
            "options": ["-p", f"127.0.0.1:{port}:8000"], "command": "python -m http.server 8000",
            "health": {"http": f"http://127.0.0.1:{port}/"}, "health_timeout": "120s"}
    run = Run(spec, tmp_path, timeout=180)
    try:
        assert run.obs.error is None, run.obs
        (undo,) = run.undo() or []
        assert run_undo(undo, tmp_path).error is None
    finally:
        subprocess.run(["docker", "rm", "-f", spec["name"]], capture_output=True)


