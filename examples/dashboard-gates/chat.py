#!/usr/bin/env python3
"""A stand-in for the team chat's incoming webhook (standard library only).

Prints every message the runbook's `ops` channel posts and keeps them for GET /messages.

    python3 chat.py [--port 8791]      # else $DASHBOARD_CHAT_PORT
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

MAX_BODY = 64 * 1024


class Chat(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: Chat

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(max(length, 0), MAX_BODY))
        try:
            body: Any = json.loads(raw or b"null")
        except ValueError:
            body = raw.decode("utf-8", "replace")
        text = body.get("text") if isinstance(body, dict) else None
        with self.server.lock:
            self.server.messages.append({"path": self.path, "at": time.time(), "body": body})
        print(f"  [chat {self.path}] {text if text is not None else body}", flush=True)
        self.reply(200, {"ok": True})

    def do_GET(self) -> None:
        if self.path != "/messages":
            self.reply(404, {"error": f"no route {self.path}"})
            return
        with self.server.lock:
            self.reply(200, list(self.server.messages))

    def reply(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the messages themselves are the log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("DASHBOARD_CHAT_PORT", 8791)))
    args = parser.parse_args()
    server = Chat(args.port)

    def terminate(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    print(f"chat stand-in listening on http://127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
