"""The HAProxy driver against a real HAProxy 2.6: switch, weights, maintenance and drain under a real
load, refusals in HAProxy's words, the socket gone, and a recorded state restored exactly."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.helpers import wait_for
from tests.servers.backend import Backend, backends
from tests.servers.haproxy import PAGE, PREVIEW_HEADER, RETRY_AFTER, Haproxy, haproxy

from tminus.kinds.proxy_drivers.base import ProxyError, RoutingState
from tminus.kinds.proxy_drivers.haproxy import Driver

pytestmark = pytest.mark.skipif(shutil.which("haproxy", path="/usr/sbin:/usr/bin") is None,
                                reason="HAProxy is not installed (.ci/run installs it)")


@dataclass
class Spec:
    """Stands for the proxy kind's rendered spec: only the fields the driver reads."""

    socket: str
    backend: str = "app"
    servers: dict[str, str | list[str]] = field(default_factory=lambda: {"blue": "blue", "green": "green"})
    preview_backend: str | None = "app_preview"
    maintenance_map: str | None = None
    socket_timeout: str | None = None


def driver(h: Haproxy, **fields: object) -> Driver:
    fields.setdefault("maintenance_map", h.map)
    return Driver(Spec(socket=h.socket, **fields), h.folder)  # type: ignore[arg-type]


@dataclass
class Result:
    started: float
    ended: float
    status: int | None = None
    release: str | None = None
    retry_after: str | None = None
    body: bytes = b""
    error: str | None = None


class Load:
    """`threads` clients sending GETs (a new connection each) until stopped or `limit` requests."""

    def __init__(self, port: int, *, threads: int = 4, limit: int = 4000, path: str = "/") -> None:
        self.port, self.path, self.limit = port, path, limit
        self.results: list[Result] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _one(self) -> Result:
        result = Result(started=time.monotonic(), ended=0.0)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request("GET", self.path, headers={"Connection": "close"})
            response = conn.getresponse()
            result.body = response.read()
            result.status = response.status
            result.release = response.getheader("X-Release")
            result.retry_after = response.getheader("Retry-After")
        except (OSError, http.client.HTTPException) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()
            result.ended = time.monotonic()
        return result

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if len(self.results) >= self.limit:
                    return
            result = self._one()
            with self._lock:
                self.results.append(result)

    def after(self, moment: float) -> list[Result]:
        with self._lock:
            return [r for r in self.results if r.started > moment]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.error is not None]


def get(h: Haproxy, path: str = "/", headers: dict[str, str] | None = None) -> tuple[int, str | None, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=15)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("X-Release"), response.read()
    finally:
        conn.close()


@pytest.fixture
def blue_green(tmp_path: Path) -> Iterator[tuple[Haproxy, dict[str, Backend]]]:
    with backends("blue", "green") as b, haproxy(tmp_path, {n: x.address for n, x in b.items()},
                                                 tcp_socket=True) as h:
        yield h, b


def test_read_reports_the_configured_state(blue_green: tuple[Haproxy, dict[str, Backend]]) -> None:
    h, _ = blue_green
    state = driver(h).read()
    assert state == RoutingState({"blue": 100, "green": 0}, maintenance=False, preview=None)
    assert Driver(Spec(socket=h.tcp_address, maintenance_map=h.map), h.folder).read() == state  # TCP socket


def test_switch_under_load_fails_no_request(blue_green: tuple[Haproxy, dict[str, Backend]]) -> None:
    h, _ = blue_green
    drv = driver(h)
    with Load(h.port, limit=4000) as load:
        wait_for(lambda: len(load.after(0)) >= 300, timeout=60)
        account = drv.apply(RoutingState({"blue": 0, "green": 100}))
        switched = time.monotonic()
        wait_for(lambda: len(load.after(switched)) >= 1000, timeout=60)
    assert load.failures == []
    assert {r.status for r in load.results} == {200}
    assert {r.release for r in load.after(switched)} == {"green"}
    assert {r.release for r in load.results if r.ended < switched - 0.5} <= {"blue"}
    assert drv.read() == RoutingState({"blue": 0, "green": 100})
    assert "no reload" in account and "green 100" in account


def test_weights_10_90_measured_over_1000_requests(blue_green: tuple[Haproxy, dict[str, Backend]]) -> None:
    h, _ = blue_green
    drv = driver(h)
    drv.apply(RoutingState({"blue": 10, "green": 90}))
    with Load(h.port, threads=4, limit=1000) as load:
        wait_for(lambda: len(load.after(0)) >= 1000, timeout=60)
    assert load.failures == []
    share = 100 * sum(r.release == "blue" for r in load.results) / len(load.results)
    assert 5 <= share <= 15, share
    assert drv.read().weights == {"blue": 10, "green": 90}


def test_maintenance_on_and_off_under_load(blue_green: tuple[Haproxy, dict[str, Backend]]) -> None:
    h, _ = blue_green
    drv = driver(h)
    with Load(h.port, limit=6000) as load:
        wait_for(lambda: len(load.after(0)) >= 100, timeout=60)
        drv.apply(RoutingState({"blue": 100, "green": 0}, maintenance=True))
        on = time.monotonic()
        wait_for(lambda: len(load.after(on)) >= 400, timeout=60)
        assert get(h, "/healthz")[:2] == (200, "blue")  # exempt: forwarded during maintenance
        assert drv.read().maintenance is True
        turning_off = time.monotonic()
        drv.apply(RoutingState({"blue": 100, "green": 0}, maintenance=False))
        off = time.monotonic()
        wait_for(lambda: len(load.after(off)) >= 200, timeout=60)
    assert load.failures == []  # never a connection error, in or out of maintenance
    during = [r for r in load.results if r.started > on and r.ended < turning_off]
    assert len(during) >= 300
    assert {(r.status, r.retry_after, r.body) for r in during} == {(503, RETRY_AFTER, PAGE.encode())}
    assert {(r.status, r.release) for r in load.after(off)} == {(200, "blue")}
    assert drv.read() == RoutingState({"blue": 100, "green": 0})


def test_preview_routes_the_header_to_green_only(blue_green: tuple[Haproxy, dict[str, Backend]]) -> None:
    h, _ = blue_green
    drv = driver(h)
    assert get(h, headers={PREVIEW_HEADER: "1"})[0] == 503  # nothing previewed: the preview backend is empty
    drv.apply(RoutingState({"blue": 100, "green": 0}, preview="green"))
    assert {get(h, headers={PREVIEW_HEADER: "1"})[1] for _ in range(20)} == {"green"}
    assert {get(h)[1] for _ in range(20)} == {"blue"}  # users still on blue
    assert drv.read().preview == "green"
    drv.apply(RoutingState({"blue": 100, "green": 0}, preview=None))
    assert drv.read().preview is None


class Holding:
    """A backend that holds `/hold` open until released, so a connection stays on it."""

    def __init__(self, name: str) -> None:
        self.release = threading.Event()
        holding = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path == "/hold":
                    holding.release.wait(30)
                body = name.encode()
                self.send_response(200)
                self.send_header("X-Release", name)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_drain_waits_for_a_held_connection(tmp_path: Path) -> None:
    blue = Holding("blue")
    try:
        with backends("green") as b, haproxy(tmp_path, {"blue": blue.address, "green": b["green"].address}) as h:
            drv = driver(h)
            held: list[tuple[int, str | None, bytes]] = []
            client = threading.Thread(target=lambda: held.append(get(h, "/hold")), daemon=True)
            client.start()
            wait_for(lambda: drv.connections("blue") == 1, timeout=30)
            drv.apply(RoutingState({"blue": 0, "green": 100}))
            assert drv.connections("blue") == 1  # the held request is still on blue
            assert get(h)[1] == "green"  # new traffic is not
            assert drv.connections("green") == 0
            blue.release.set()
            wait_for(lambda: drv.connections("blue") == 0, timeout=30)
            client.join(timeout=30)
            assert held == [(200, "blue", b"blue")]
    finally:
        blue.stop()


def test_unknown_server_or_backend_is_refused_with_what_haproxy_has(
        blue_green: tuple[Haproxy, dict[str, Backend]]) -> None:
    h, _ = blue_green
    with pytest.raises(ProxyError, match=r"backend 'app' has no server nosuch .*its servers: blue, green"):
        driver(h, servers={"blue": "blue", "green": "nosuch"}).read()
    with pytest.raises(ProxyError, match=r"no backend 'nope'.*backends: app, app_preview"):
        driver(h, backend="nope").read()
    with pytest.raises(ProxyError, match=r"cannot read the map /no/such\.map: HAProxy answered 'Unknown map"):
        driver(h, maintenance_map="/no/such.map").read()
    drv = driver(h)
    with pytest.raises(ProxyError, match=r"haproxy refused 'set weight app/nosuch 10': No such server\."):
        drv.api.set("set weight app/nosuch 10")
    with pytest.raises(ProxyError, match="no upstream red"):
        drv.apply(RoutingState({"red": 100}))
    with pytest.raises(ProxyError, match=r"weights are 0\.\.256"):
        drv.apply(RoutingState({"blue": 300, "green": 0}))
    assert drv.read() == RoutingState({"blue": 100, "green": 0})  # nothing changed


def test_a_refusal_part_way_restores_what_was_served(tmp_path: Path) -> None:
    # static-rr takes no runtime weight but 0% and 100% of the configured one: green comes back (it
    # gains, so it goes first) and then blue 100 -> 50 is refused; green must be drained again.
    with backends("blue", "green") as b, haproxy(tmp_path, {n: x.address for n, x in b.items()},
                                                 balance="static-rr", weights={"blue": 100, "green": 100}) as h:
        drv = driver(h)
        drv.apply(RoutingState({"blue": 100, "green": 0}))
        before = drv.read()
        with pytest.raises(ProxyError) as refused:
            drv.apply(RoutingState({"blue": 50, "green": 100}))
        message = str(refused.value)
        assert "refused 'set weight app/blue 50': Backend is using a static LB algorithm" in message
        assert message.endswith(". The previous state was restored (weights blue 100, green 0; maintenance off).")
        assert drv.read() == before
        assert {get(h)[1] for _ in range(10)} == {"blue"}


def test_socket_not_admin_level_says_so(tmp_path: Path) -> None:
    with backends("blue", "green") as b, haproxy(tmp_path, {n: x.address for n, x in b.items()},
                                                 level="operator") as h:
        drv = driver(h)
        assert drv.read().weights == {"blue": 100, "green": 0}
        with pytest.raises(ProxyError) as refused:
            drv.apply(RoutingState({"blue": 0, "green": 100}))
        assert str(refused.value) == ("haproxy refused 'set weight app/green 100': Permission denied (the stats "
                                      "socket needs `level admin`). Nothing was changed.")


def test_socket_gone_is_a_clear_error(blue_green: tuple[Haproxy, dict[str, Backend]]) -> None:
    h, _ = blue_green
    drv = driver(h)
    drv.apply(RoutingState({"blue": 50, "green": 50}))
    h.kill()
    with pytest.raises(ProxyError, match=r"nothing answers on the stats socket .*admin\.sock"):
        drv.read()
    with pytest.raises(ProxyError, match="nothing answers"):
        drv.apply(RoutingState({"blue": 0, "green": 100}))
    with pytest.raises(ProxyError, match="nothing answers"):
        drv.connections("blue")
    os.unlink(h.socket)
    with pytest.raises(ProxyError, match=r"stats socket .*admin\.sock does not exist: is HAProxy running"):
        drv.read()


def test_a_socket_that_never_answers_times_out(tmp_path: Path) -> None:
    path = tmp_path / "silent.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(4)
    try:
        drv = Driver(Spec(socket="silent.sock", socket_timeout="300ms"), tmp_path)  # relative to base_dir
        started = time.monotonic()
        with pytest.raises(ProxyError, match=r"no answer to 'show' on .*silent\.sock within 0\.3s"):
            drv.read()
        assert time.monotonic() - started < 5
    finally:
        listener.close()


def test_restoring_a_recorded_state_is_exact(blue_green: tuple[Haproxy, dict[str, Backend]]) -> None:
    h, _ = blue_green
    drv = driver(h)
    drv.apply(RoutingState({"blue": 30, "green": 70}, preview="blue"))
    recorded = drv.read()
    for state in (RoutingState({"blue": 0, "green": 100}, maintenance=True, preview="green"),
                  RoutingState({"blue": 100, "green": 0}), RoutingState({"blue": 7, "green": 0})):
        drv.apply(state)
        assert drv.read() == state
    drv.apply(recorded)
    assert drv.read() == recorded
    assert "already serving" in drv.apply(recorded)
    assert {get(h, headers={PREVIEW_HEADER: "1"})[1] for _ in range(10)} == {"blue"}


DOC = Path(__file__).resolve().parents[2] / "docs" / "proxy-haproxy.md"


def documented_config(h: Haproxy) -> str:
    """docs/proxy-haproxy.md's haproxy.cfg, with this test's socket, files, port and backends."""
    found = re.search(r"```text\n(global\n.*?)```", DOC.read_text(), re.S)
    assert found, "docs/proxy-haproxy.md: the haproxy.cfg block is gone"
    text = found.group(1)
    for documented, here in {"/run/haproxy/admin.sock": h.socket, "/etc/haproxy/tminus.map": h.map,
                             "/etc/haproxy/maintenance.html": str(h.page), "bind :80": f"bind 127.0.0.1:{h.port}",
                             "127.0.0.1:8001": h.upstreams["blue"], "127.0.0.1:8002": h.upstreams["green"]}.items():
        assert documented in text, documented
        text = text.replace(documented, here)
    return text


def test_the_documented_config_works(tmp_path: Path) -> None:
    with backends("blue", "green") as b, haproxy(tmp_path, {n: x.address for n, x in b.items()},
                                                 render=documented_config) as h:
        drv = driver(h)
        assert drv.read() == RoutingState({"blue": 100, "green": 0})
        drv.apply(RoutingState({"blue": 100, "green": 0}, preview="green"))
        assert {get(h, headers={PREVIEW_HEADER: "1"})[1] for _ in range(10)} == {"green"}
        drv.apply(RoutingState({"blue": 0, "green": 100}, maintenance=True, preview="green"))
        status, _, body = get(h)
        assert (status, body) == (503, PAGE.encode())
        assert get(h, "/healthz")[:2] == (200, "green")
        drv.apply(RoutingState({"blue": 0, "green": 100}))
        assert {get(h)[1] for _ in range(10)} == {"green"}


def test_apply_converges_from_a_switch_cut_short(blue_green: tuple[Haproxy, dict[str, Backend]]) -> None:
    # tminus killed after the first runtime command of a switch: green already up, blue not yet drained.
    h, _ = blue_green
    drv = driver(h)
    before = drv.read()
    target = RoutingState({"blue": 0, "green": 100})
    first = drv._plan(target, drv._rows(), drv._map())[0]
    drv.api.set(first)
    assert drv.read() == RoutingState({"blue": 100, "green": 100})  # both serve: no request fails meanwhile
    assert "1 runtime commands" in drv.apply(target)  # resume: only what is left is done
    assert drv.read() == target
    drv.apply(before)  # and the undo restores what was recorded before the cut-short step
    assert drv.read() == before


def test_no_traffic_is_sent_to_an_upstream_haproxy_marks_down(tmp_path: Path) -> None:
    with backends("blue", "green") as b, haproxy(tmp_path, {n: x.address for n, x in b.items()}, check=True) as h:
        drv = driver(h)
        b["green"].stop()
        wait_for(lambda: drv._rows()[("app", "green")].down, timeout=30)
        with pytest.raises(ProxyError, match=r"upstream 'green' has no server up: app/green DOWN by the health check"):
            drv.apply(RoutingState({"blue": 0, "green": 100}))
        assert drv.read() == RoutingState({"blue": 100, "green": 0})
        assert {get(h)[1] for _ in range(10)} == {"blue"}
        drv.apply(RoutingState({"blue": 100, "green": 0}, maintenance=True))  # what does not route there still works


def test_maintenance_key_missing_from_the_map_is_added(tmp_path: Path) -> None:
    with backends("blue", "green") as b, haproxy(tmp_path, {n: x.address for n, x in b.items()}, map_text="") as h:
        drv = driver(h)
        assert drv.read().maintenance is False
        drv.apply(RoutingState({"blue": 100, "green": 0}, maintenance=True))
        assert get(h)[0] == 503
        drv.apply(RoutingState({"blue": 100, "green": 0}, maintenance=False))
        assert get(h)[:2] == (200, "blue")
        assert drv.read().maintenance is False


def test_haproxy_accepting_but_not_serving_the_state_is_an_error(tmp_path: Path) -> None:
    # app/green tracks app_preview/green (disabled): HAProxy takes `ready`, yet green inherits maintenance.
    def tracking(h: Haproxy) -> str:
        live, tracked = f"server green {h.upstreams['green']} weight 0", f"server green {h.upstreams['green']} disabled"
        config = h.default_config()
        assert live in config and tracked in config
        return config.replace(live, live + " track app_preview/green").replace(tracked, tracked + " check")

    with backends("blue", "green") as b, haproxy(tmp_path, {n: x.address for n, x in b.items()},
                                                 render=tracking) as h:
        drv = driver(h)
        with pytest.raises(ProxyError) as wrong:
            drv.apply(RoutingState({"blue": 0, "green": 100}))
        message = str(wrong.value)
        assert "asked for {'weights': {'blue': 0, 'green': 100}" in message
        assert "HAProxy reports {'weights': {'blue': 0, 'green': 0}" in message
        assert message.endswith("The previous state was restored (weights blue 100, green 0; maintenance off).")
        assert drv.read() == RoutingState({"blue": 100, "green": 0})
        assert {get(h)[1] for _ in range(10)} == {"blue"}
        assert drv._rows()[("app", "green")].held_at_zero  # drained: green stays out if what it tracks comes back
        drv.api.set("set server app_preview/green state ready")
        assert {get(h)[1] for _ in range(10)} == {"blue"}
