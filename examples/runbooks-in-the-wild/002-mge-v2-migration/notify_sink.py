#!/usr/bin/env python3
"""Stand-in for the status page, the users' e-mail list and the team chat: every POSTed message is
appended to STATE/messages.jsonl; GET /status gives the status page's current text.

    python3 notify_sink.py [--port N]     # else $DEVMATRIX_NOTIFY_PORT
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from common import STATE


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with open(STATE / "messages.jsonl", "a") as out:
            out.write(json.dumps({"to": self.path.strip("/"), "text": body.get("text", "")}) + "\n")
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:
        lines = (STATE / "messages.jsonl").read_text().splitlines() if (STATE / "messages.jsonl").exists() else []
        status = [json.loads(line)["text"] for line in lines if json.loads(line)["to"] == "status"]
        data = json.dumps({"status": status[-1] if status else "Operational"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    STATE.mkdir(parents=True, exist_ok=True)
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else int(os.environ.get("DEVMATRIX_NOTIFY_PORT", "8009"))
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
