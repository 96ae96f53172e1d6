"""The `wait` kind, with a test-local nested-step runner and a real HTTP server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from helpers_kinds import Server, execute, http_server, json_response, make_ctx
from tminus.kinds.base import Observation, StepContext
from tminus.runbook.models import Step


def nested_runner(parent: StepContext) -> Any:
    """A minimal stand-in for the engine's: run the nested step, pass on no error/failure and 200."""

    def run_nested(step: Step, remaining: float | None) -> tuple[bool, str, Observation]:
        ctx = make_ctx(step, parent.base_dir, timeout=remaining, environ=parent.environ, shared=parent.shared)
        obs = execute(ctx)
        if obs.error:
            return False, obs.error, obs
        status = obs.values.get("status")
        return status == 200, f"status {status}", obs

    return run_nested


def wait(check: dict[str, Any], tmp_path: Path, interval: str = "50ms", **kw: Any) -> Observation:
    ctx = make_ctx({"wait": {"check": check, "interval": interval}}, tmp_path, **kw)
    ctx.run_nested = nested_runner(ctx)
    return execute(ctx)


@pytest.fixture
def server() -> Iterator[Server]:
    calls = {"n": 0}
    with http_server() as srv:

        @srv.route("GET", "/warming")
        def warming(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            calls["n"] += 1
            if calls["n"] < 4:
                return json_response(503, {"ready": False})
            return json_response(200, {"ready": True, "after": calls["n"]})

        @srv.route("GET", "/never")
        def never(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            return json_response(503, {"ready": False})

        yield srv


def test_becomes_ready_after_a_few_attempts(server: Server, tmp_path: Path) -> None:
    obs = wait({"http": f"{server.url}/warming"}, tmp_path, timeout=10)
    assert obs.error is None and obs.failures == []
    assert obs.evidence["attempts"] == 4
    assert obs.evidence["last"] == "status 200"
    assert obs.evidence["waited_ms"] >= 3 * 50 * 0.9
    assert obs.values["status"] == 200 and obs.values["json"]["after"] == 4
    assert obs.outputs["json"] == {"ready": True, "after": 4}


def test_never_ready_fails_after_the_timeout(server: Server, tmp_path: Path) -> None:
    start = time.monotonic()
    obs = wait({"http": f"{server.url}/never"}, tmp_path, interval="100ms", timeout=0.5)
    elapsed = time.monotonic() - start
    assert 0.4 < elapsed < 3
    assert obs.error is None and len(obs.failures) == 1
    attempts = obs.evidence["attempts"]
    assert attempts >= 2
    assert obs.failures[0] == f"not ready after {attempts} attempts in 0.5s; last: status 503"


def test_unreachable_service_reports_the_last_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    obs = wait({"http": f"http://127.0.0.1:{port}/"}, tmp_path, timeout=0.3)
    assert "refused" in obs.failures[0]


def test_cancel_interrupts_the_sleep(server: Server, tmp_path: Path) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    start = time.monotonic()
    obs = wait({"http": f"{server.url}/never"}, tmp_path, interval="30s", timeout=60, cancel=cancel)
    timer.cancel()
    assert time.monotonic() - start < 5
    assert obs.error is not None and "cancelled" in obs.error


def test_without_nested_runner_is_an_error(tmp_path: Path) -> None:
    ctx = make_ctx({"wait": {"check": {"tcp": {"port": 1}}}}, tmp_path)
    obs = execute(ctx)
    assert obs.error is not None and "run_nested" in obs.error
