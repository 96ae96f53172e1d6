"""A real HTTP backend on a free loopback port that says which release it is.

Every answer carries `X-Release: <name>` and the body `<name>`; `/healthz` answers 200 unless the
backend was made unhealthy. Requests served are counted, so a test can tell who served what.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Backend:
    def __init__(self, name: str, *, healthy: bool = True, status: int = 200) -> None:
        self.name = name
        self.healthy = healthy
        self.status = status  # what `/` answers (a broken release answers 500)
        self.served = 0
        self._lock = threading.Lock()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.startswith("/healthz"):
                    code = 200 if backend.healthy else 503
                else:
                    code = backend.status
                    with backend._lock:
                        backend.served += 1
                body = backend.name.encode()
                self.send_response(code)
                self.send_header("X-Release", backend.name)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def start(self) -> Backend:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def backends(*names: str) -> Iterator[dict[str, Backend]]:
    """`with backends("blue", "green") as b:` -> {"blue": Backend, "green": Backend}, all serving."""
    started = {name: Backend(name).start() for name in names}
    try:
        yield started
    finally:
        for b in started.values():
            b.stop()
