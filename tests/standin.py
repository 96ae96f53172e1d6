"""A stand-in service on loopback whose health a test controls while a real monitor probes it.

GET /health answers with the current state as JSON. A test (or a runbook step, like a deploy would)
changes the state with POST /set {json}, or queues exact answers for the next probes with
POST /script [answers...]: each answer is a JSON object to return, "nodata" (the object without the
watched fields: `{"status": "ok"}`), "error" (HTTP 500), or "close" (the connection is dropped, so
the probe fails). The last scripted answer repeats once the script is used up.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.helpers_kinds import serving


class StandIn:
    def __init__(self) -> None:
        self.state: dict[str, Any] = {"status": "ok", "saturation": 0.5, "retries": 10, "restarts": 0}
        self.script: list[Any] = []
        self.served = 0  # /health answers given, in order
        self.lock = threading.Lock()
        self.hooks: list[dict[str, Any]] = []  # webhook deliveries received on POST /hook
        self.hook_failures = 0  # fail this many webhook deliveries first (HTTP 500)

    def next_answer(self) -> Any:
        with self.lock:
            self.served += 1
            if self.script:
                return self.script.pop(0) if len(self.script) > 1 else self.script[0]
            return dict(self.state)


def _handler(service: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != "/health":
                self._reply(404, {"error": "not found"})
                return
            answer = service.next_answer()
            if answer == "close":
                self.close_connection = True
                self.connection.shutdown(2)
            elif answer == "error":
                self._reply(500, {"error": "internal"})
            elif answer == "nodata":
                self._reply(200, {"status": "ok"})
            else:
                self._reply(200, answer)

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(size) or b"null")
            if self.path == "/set":
                with service.lock:
                    service.state.update(body)
                self._reply(200, service.state)
            elif self.path == "/script":
                with service.lock:
                    service.script = list(body)
                self._reply(200, {"queued": len(body)})
            elif self.path == "/hook":
                with service.lock:
                    failing = service.hook_failures > 0
                    service.hook_failures -= 1 if failing else 0
                    service.hooks.append({"body": body, "failed": failing})
                self._reply(500 if failing else 200, {"ok": not failing})
            else:
                self._reply(404, {"error": "not found"})

    return Handler


@contextmanager
def standin() -> Iterator[tuple[StandIn, str]]:
    """A running stand-in and its base URL (http://127.0.0.1:PORT)."""
    service = StandIn()
    with serving(_handler(service)) as server:
        yield service, f"http://127.0.0.1:{server.server_address[1]}"
