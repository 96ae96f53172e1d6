"""Helpers for the step-kind tests: build contexts, execute kinds, serve HTTP on loopback."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tminus.kinds import registry
from tminus.kinds.base import Approvals, Observation, StepContext
from tminus.runbook.models import Step


def make_ctx(
    step: dict[str, Any] | Step,
    base_dir: Path,
    *,
    timeout: float | None = None,
    environ: Mapping[str, str] | None = None,
    cancel: threading.Event | None = None,
    approvals: Approvals | None = None,
    shared: dict[str, Any] | None = None,
    key: str = "phase:test/0",
    roots: tuple[str, ...] = (),
) -> StepContext:
    parsed = step if isinstance(step, Step) else Step.model_validate(step)
    parsed._key = key
    return StepContext(
        step=parsed,
        base_dir=base_dir,
        timeout=timeout,
        cancel=cancel or threading.Event(),
        environ=dict(os.environ) if environ is None else environ,
        approvals=approvals,
        shared={} if shared is None else shared,
        roots=roots,
    )


def execute(ctx: StepContext) -> Observation:
    """Run the context's step through the registry, as the engine would."""
    return registry.get(ctx.step.kind).execute(ctx.step.config, ctx)


def run_step(step: dict[str, Any], base_dir: Path, **kwargs: Any) -> Observation:
    return execute(make_ctx(step, base_dir, **kwargs))


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --- a real HTTP server ---------------------------------------------------------------------

Route = Callable[[BaseHTTPRequestHandler, bytes], tuple[int, dict[str, str], bytes]]


class _Handler(BaseHTTPRequestHandler):
    routes: dict[tuple[str, str], Route] = {}
    log: list[tuple[str, str, dict[str, str], bytes]] = []

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.log.append((self.command, self.path, dict(self.headers), body))
        route = self.routes.get((self.command, self.path.split("?")[0]))
        if route is None:
            status, headers, payload = 404, {"Content-Type": "text/plain"}, b"not found"
        else:
            status, headers, payload = route(self, body)
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # concurrency tests connect many clients at once


class Server:
    def __init__(self, httpd: ThreadingHTTPServer, handler: type[_Handler]):
        self.httpd = httpd
        self.handler = handler

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str], bytes]]:
        return self.handler.log

    def route(self, method: str, path: str) -> Callable[[Route], Route]:
        def deco(fn: Route) -> Route:
            self.handler.routes[(method, path)] = fn
            return fn

        return deco


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """`handler` served by a ThreadingHTTPServer on 127.0.0.1 (a free port) until the block ends."""
    httpd = _Httpd(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def http_server() -> Iterator[Server]:
    """A ThreadingHTTPServer on 127.0.0.1, port 0, with routes added by the test."""
    handler = type("Handler", (_Handler,), {"routes": {}, "log": []})
    with serving(handler) as httpd:
        yield Server(httpd, handler)


def json_response(status: int, data: Any, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode()
