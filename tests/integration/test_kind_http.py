"""The `http` kind against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from helpers_kinds import Server, http_server, json_response, make_ctx, run_step
from tminus.kinds import registry
from tminus.kinds.http import client_for, close_shared


@pytest.fixture
def server() -> Iterator[Server]:
    with http_server() as srv:

        @srv.route("GET", "/health")
        def health(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            return json_response(200, {"status": "ok", "version": "1.2"}, **{"X-Version": "1.2"})

        @srv.route("GET", "/busy")
        def busy(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            return 503, {"Retry-After": "30", "Content-Type": "text/plain"}, b"overloaded"

        @srv.route("GET", "/slow")
        def slow(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            time.sleep(3)
            return 200, {}, b"late"

        @srv.route("POST", "/items")
        def create(h: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
            return json_response(201, {"received": json.loads(body), "type": h.headers["Content-Type"]})

        @srv.route("GET", "/moved")
        def moved(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            return 302, {"Location": "/health"}, b""

        @srv.route("GET", "/big")
        def big(_h: BaseHTTPRequestHandler, _b: bytes) -> tuple[int, dict[str, str], bytes]:
            return 200, {"Content-Type": "text/plain"}, b"y" * 10_000

        yield srv


def http(spec: Any, tmp_path: Path, **kw: Any) -> Any:
    return run_step({"http": spec}, tmp_path, **kw)


def test_registered_with_default_expectation() -> None:
    assert registry.get("http").default_expect == ("status < 400",)


def test_json_response(server: Server, tmp_path: Path) -> None:
    obs = http(f"{server.url}/health", tmp_path)
    assert obs.error is None
    assert obs.values["status"] == 200
    assert obs.values["json"] == {"status": "ok", "version": "1.2"}
    assert obs.values["headers"]["x-version"] == "1.2"  # names are lower-cased
    assert obs.values["duration"] > 0
    assert obs.outputs["json"]["version"] == "1.2"
    assert obs.evidence["method"] == "GET"
    assert obs.evidence["status"] == 200
    assert '"ok"' in obs.evidence["body"]


def test_503_is_observed_not_an_error(server: Server, tmp_path: Path) -> None:
    obs = http(f"{server.url}/busy", tmp_path)
    assert obs.error is None
    assert obs.values["status"] == 503
    assert obs.values["headers"]["retry-after"] == "30"
    assert obs.values["body"] == "overloaded"
    assert "json" not in obs.values


def test_post_json_body(server: Server, tmp_path: Path) -> None:
    obs = http({"url": f"{server.url}/items", "method": "post", "json": {"name": "a", "n": 1}}, tmp_path)
    assert obs.values["status"] == 201
    assert obs.values["json"] == {"received": {"name": "a", "n": 1}, "type": "application/json"}
    assert obs.evidence["method"] == "POST"


def test_raw_body_and_headers_sent_and_credentials_redacted(server: Server, tmp_path: Path) -> None:
    spec = {
        "url": f"{server.url}/items",
        "method": "POST",
        "body": '{"raw": true}',
        "headers": {"Authorization": "Bearer s3cr3t", "Content-Type": "application/json"},
    }
    obs = http(spec, tmp_path)
    assert obs.values["json"]["received"] == {"raw": True}
    _, _, headers, _ = server.requests[-1]
    assert headers["Authorization"] == "Bearer s3cr3t"
    assert obs.evidence["request_headers"]["Authorization"] == "***"
    assert "s3cr3t" not in json.dumps(obs.evidence)


def test_redirects_followed_only_when_asked(server: Server, tmp_path: Path) -> None:
    assert http(f"{server.url}/moved", tmp_path).values["status"] == 302
    obs = http({"url": f"{server.url}/moved", "follow_redirects": True}, tmp_path)
    assert obs.values["status"] == 200
    assert obs.evidence["final_url"].endswith("/health")


def test_slow_response_times_out(server: Server, tmp_path: Path) -> None:
    start = time.monotonic()
    obs = http(f"{server.url}/slow", tmp_path, timeout=0.5)
    assert time.monotonic() - start < 2.5
    assert obs.timed_out
    assert obs.error is not None and "/slow" in obs.error and "timed out after 0.5s" in obs.error


def test_connection_refused_names_url_and_cause(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/health"
    obs = http(url, tmp_path, timeout=5)
    assert obs.error is not None
    assert url in obs.error and "refused" in obs.error
    assert not obs.timed_out


def test_invalid_url_is_an_error(tmp_path: Path) -> None:
    obs = http("localhost-no-scheme/health", tmp_path)
    assert obs.error is not None and "invalid URL" in obs.error


def test_body_excerpt_is_bounded(server: Server, tmp_path: Path) -> None:
    obs = http(f"{server.url}/big", tmp_path)
    assert len(obs.values["body"]) == 10_000
    assert len(obs.evidence["body"]) < 2100 and "truncated" in obs.evidence["body"]


def test_one_client_per_run_created_once_under_concurrency(server: Server, tmp_path: Path) -> None:
    shared: dict[str, Any] = {}
    ctxs = [make_ctx({"http": f"{server.url}/health"}, tmp_path, shared=shared) for _ in range(8)]
    results: list[int] = []
    barrier = threading.Barrier(len(ctxs))

    def go(ctx: Any) -> None:
        barrier.wait()
        results.append(registry.get("http").execute(ctx.step.config, ctx).values["status"])

    threads = [threading.Thread(target=go, args=(c,)) for c in ctxs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [200] * 8
    client = shared["http.client"]
    assert client_for(shared, verify=True) is client
    assert client_for(shared, verify=False) is not client
    close_shared(shared)
    assert client.is_closed and not shared
