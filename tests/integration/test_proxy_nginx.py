"""The `proxy` kind against a real nginx (/usr/sbin/nginx) in front of real loopback backends: switch
under load with no failed request, canary weights measured, maintenance under load, a broken release
stopped at preview with no user-facing error, drain, an `nginx -t` refusal, the derived undo."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers_kinds import make_ctx, run_step
from tests.servers.backend import Backend, backends
from tests.servers.load import Load
from tests.servers.nginx import NGINX, Nginx, nginx

from tminus.kinds import registry
from tminus.kinds.base import Execution

pytestmark = pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason=f"{NGINX} is not installed")


@pytest.fixture
def blue_green(tmp_path: Path) -> Iterator[tuple[Nginx, dict[str, Backend]]]:
    with backends("blue", "green") as b, nginx(tmp_path / "nginx", {n: [x.address] for n, x in b.items()},
                                                "blue") as ng:
        yield ng, b


def _release(url: str) -> str | None:
    return httpx.get(url, timeout=5).headers.get("x-release")


def test_switch_blue_to_green_under_load_fails_no_request(blue_green: Any, tmp_path: Path) -> None:
    ng, _b = blue_green
    load = Load("127.0.0.1", ng.port, threads=4).start()
    load.wait(500)
    obs = run_step({"proxy": ng.spec(action="switch", to="green", prove={
        "url": ng.url, "requests": 20, "expect": ['header "X-Release" == "green"']})}, tmp_path)
    passed_at = time.time()
    load.wait(max(3000, len(load.answers) + 1000))
    load.stop()
    assert obs.error is None, obs.error
    assert load.not_ok() == [], load.not_ok()[:3]  # not one request failed
    served = [a.release for a in load.answers]
    assert served[0] == "blue" and served[-1] == "green"
    # once the step passed, the old configuration took no new request
    assert [a for a in load.answers if a.release == "blue" and a.sent > passed_at] == []
    assert obs.evidence["before"]["weights"] == {"blue": 100, "green": 0}
    assert obs.evidence["after"]["weights"] == {"blue": 0, "green": 100}
    assert obs.evidence["proof"]["passed"] == 20
    assert _release(ng.url) == "green"


def test_canary_weights_10_90_measured_over_1000_requests(blue_green: Any, tmp_path: Path) -> None:
    ng, _b = blue_green
    obs = run_step({"proxy": ng.spec(action="weights", weights={"blue": 10, "green": 90},
                                     prove={"url": ng.url, "requests": 5})}, tmp_path)
    assert obs.error is None, obs.error
    counts: Counter[str] = Counter()
    with httpx.Client(timeout=5) as client:  # one keep-alive connection, nginx balances per request
        for _ in range(1000):
            counts[client.get(ng.url).headers["x-release"]] += 1
    assert 50 <= counts["blue"] <= 150, counts  # 10 % +- 5 points
    assert counts["blue"] + counts["green"] == 1000


def test_maintenance_under_load_every_answer_503_with_retry_after(blue_green: Any, tmp_path: Path) -> None:
    ng, _b = blue_green
    page = tmp_path / "maintenance.html"
    page.write_text("<h1>Back soon</h1>\n")
    load = Load("127.0.0.1", ng.port, threads=4).start()
    load.wait(300)
    obs = run_step({"proxy": ng.spec(action="maintenance", maintenance=True, page=str(page), retry_after="30s",
                                     exempt=["/healthz"], prove={"url": ng.url, "requests": 10})}, tmp_path)
    assert obs.error is None, obs.error
    assert obs.evidence["proof"]["statuses"] == {"503": 10}
    passed_at = time.time()
    mark = len(load.answers)
    load.wait(mark + 1000)
    response = httpx.get(ng.url + "/anything")
    assert response.status_code == 503 and response.headers["retry-after"] == "30"
    assert "Back soon" in response.text and response.headers["content-type"].startswith("text/html")
    health = httpx.get(ng.url + "/healthz")  # exempt: still forwarded to the live release
    assert health.status_code == 200 and health.headers["x-release"] == "blue"
    off_started = time.time()
    off = run_step({"proxy": ng.spec(action="maintenance", maintenance=False, prove={"url": ng.url, "requests": 5})},
                   tmp_path)
    assert off.error is None, off.error
    off_at = time.time()
    after = len(load.answers)
    load.wait(after + 300)
    load.stop()
    assert load.errors == [], load.errors[:3]  # never a connection error
    during = [a for a in load.answers if passed_at < a.sent and a.at < off_started]
    assert len(during) >= 900
    assert {(a.status, a.retry_after) for a in during} == {(503, "30")}
    assert {a.status for a in load.answers if a.sent > off_at} == {200}
    assert _release(ng.url) == "blue"


def test_a_broken_green_fails_at_preview_with_no_user_facing_error(blue_green: Any, tmp_path: Path) -> None:
    ng, b = blue_green
    b["green"].status = 500  # the broken release
    load = Load("127.0.0.1", ng.port, threads=4).start()
    load.wait(200)
    obs = run_step({"proxy": ng.spec(action="preview", to="green", prove={
        "url": ng.preview_url, "requests": 10, "expect": ["status == 200"]})}, tmp_path)
    assert obs.error is not None and "10 of 10 requests" in obs.error, obs.error
    assert "status == 200" in obs.evidence["proof"]["failures"][0]
    mark = len(load.answers)
    load.wait(mark + 300)
    load.stop()
    assert load.not_ok() == [] and {a.release for a in load.answers} == {"blue"}  # users stayed on blue
    # header routing reaches the same preview
    routed = httpx.get(ng.url + "/routed/", headers={"X-Tminus-Preview": "1"})
    assert routed.headers["x-release"] == "green" and routed.status_code == 500
    assert httpx.get(ng.url + "/routed/").headers["x-release"] == "blue"


def test_nginx_t_refusal_fails_the_step_and_the_old_config_serves(tmp_path: Path) -> None:
    with backends("blue", "green") as b:
        upstreams = {"blue": [b["blue"].address], "green": [b["green"].address]}
        with nginx(tmp_path / "nginx", upstreams, "blue") as ng:
            before = ng.config.read_text()
            workers = ng.workers()
            bad = {**upstreams, "green": ["no-such-host.invalid:80"]}
            obs = run_step({"proxy": ng.spec(action="switch", to="green", upstreams=bad)}, tmp_path)
            assert obs.error is not None and "nginx -t" in obs.error and "no-such-host.invalid" in obs.error
            assert "the previous one still serves" in obs.error
            assert ng.config.read_text() == before  # the file says what nginx serves
            assert ng.workers() == workers  # no reload happened
            assert _release(ng.url) == "blue"


def test_a_pid_file_naming_another_process_is_refused_without_a_signal(blue_green: Any, tmp_path: Path) -> None:
    ng, _b = blue_green
    fake = tmp_path / "fake.pid"
    fake.write_text(f"{os.getpid()}\n")  # this test process: must not get a SIGHUP
    before = signal.getsignal(signal.SIGHUP)
    obs = run_step({"proxy": ng.spec(action="switch", to="green", pid_file=str(fake))}, tmp_path)
    assert obs.error is not None and "is not an nginx master" in obs.error
    assert signal.getsignal(signal.SIGHUP) == before
    assert _release(ng.url) == "blue" and "green" not in ng.config.read_text().split("tminus-state")[1][:80]


def test_drain_counts_a_connection_held_to_the_upstream(tmp_path: Path) -> None:
    """A backend that answers slowly holds nginx's connection: drain sees 1 until it answered."""
    import threading

    release = threading.Event()
    blue = Backend("blue")
    handler = blue.server.RequestHandlerClass
    original = handler.do_GET  # type: ignore[attr-defined]

    def slow_get(self: Any) -> None:
        if self.path.startswith("/slow"):
            release.wait(20)
        original(self)

    handler.do_GET = slow_get  # type: ignore[attr-defined]
    blue.start()
    try:
        with backends("green") as b:
            upstreams = {"blue": [blue.address], "green": [b["green"].address]}
            with nginx(tmp_path / "nginx", upstreams, "blue") as ng:
                answers: list[int] = []
                waiting = threading.Thread(target=lambda: answers.append(
                    httpx.get(ng.url + "/slow", timeout=30).status_code))
                waiting.start()
                spec = ng.spec(action="drain", **{"from": "blue"}, drain_timeout="300ms")
                deadline = time.monotonic() + 10
                while True:  # until nginx holds the connection to blue
                    held = run_step({"proxy": spec}, tmp_path)
                    if held.error is not None or time.monotonic() > deadline:
                        break
                assert held.error is not None and "connections remain" in held.error, held.error
                assert held.evidence["connections"] == {"blue": 1}
                release.set()
                waiting.join(timeout=20)
                assert answers == [200]
                drained = run_step({"proxy": {**spec, "drain_timeout": "10s"}}, tmp_path)
                assert drained.error is None and drained.evidence["connections"] == {"blue": 0}
    finally:
        release.set()
        blue.stop()


def test_derived_undo_restores_the_recorded_routing_and_proves_it(blue_green: Any, tmp_path: Path) -> None:
    ng, _b = blue_green
    effects: list[dict[str, Any]] = []
    ctx = make_ctx({"proxy": ng.spec(action="switch", to="green", prove={
        "url": ng.url, "requests": 3, "expect": ['header "X-Release" == "green"']})}, tmp_path)
    ctx.effect_sink = lambda kind, details: effects.append({"effect": kind, **details})
    obs = registry.get("proxy").execute(ctx.step.config, ctx)
    assert obs.error is None and _release(ng.url) == "green"
    assert [e["effect"] for e in effects] == ["proxy_state", "proxy_applied"]
    (undo,) = registry.get("proxy").derive_undo(ctx.step, Execution(ctx.step.key, effects=effects))  # type: ignore[misc]
    assert undo.key.endswith(".undo[auto]") and undo.proxy is not None and undo.proxy.action == "restore"
    assert undo.proxy.prove is not None and undo.proxy.prove.expect is None  # the default proof of the old state
    restored = run_step(undo, tmp_path)
    assert restored.error is None, restored.error
    assert restored.evidence["after"] == {"weights": {"blue": 100, "green": 0}, "maintenance": False,
                                          "preview": None}
    assert _release(ng.url) == "blue"


def test_a_reload_the_master_refuses_puts_the_previous_file_back(blue_green: Any, tmp_path: Path) -> None:
    """`nginx -t` passes but the master cannot load it (a listen address in use): the step fails after
    `reload_timeout`, the previous include is written and loaded again, blue still serves."""
    import socket

    ng, _b = blue_green
    before = ng.config.read_text()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        obs = run_step({"proxy": ng.spec(action="switch", to="green", preview_listen=busy, reload_timeout="2s")},
                       tmp_path)
    assert obs.error is not None and "did not serve the new configuration within 2s" in obs.error, obs.error
    assert ng.config.read_text() == before
    assert _release(ng.url) == "blue"
    assert "Address already in use" in ng.error_log()
