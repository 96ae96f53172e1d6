#!/usr/bin/env python3
"""Stand-ins for runbook 003 (standard library only): the Recall API container, the reverse proxy,
and the `docker compose` commands that start and stop a colour.

    python3 stack.py up --project recall_green --port 8001 --env-file state/.env.green
    python3 stack.py down --project recall_blue
    python3 stack.py ps --project recall_green          # "recall_green  Up (healthy)  sha-..."
    python3 stack.py proxy-switch --to 8001             # the NGINX upstream (STATE/upstream) + reload
    python3 stack.py proxy --port 8080                  # serve the proxy (forwards to STATE/upstream)
    python3 stack.py writes frozen|open                 # freeze writes for the cutover

The API answers /readyz {"ready": true}, /healthz (dependencies and restarts), /version
{"version": IMAGE_TAG, "service": "recall-api"}, /metrics (rss_mb, error_rate) and writes an access
log to STATE/PROJECT.log. POST /notes is a write (409 while writes are frozen). An image tag listed
in STATE/broken_images never gets ready (a bad build). State: $RECALL_STATE, else ./state.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

STATE = Path(os.environ.get("RECALL_STATE", Path(__file__).resolve().parent / "state"))


def env_file(path: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in Path(path).read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def api_handler(project: str, settings: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    started = time.time()

    class Api(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:
            with open(STATE / f"{project}.log", "a") as log:
                log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} INFO {fmt % args}\n")

        def reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            broken = STATE / "broken_images"
            bad = broken.exists() and settings.get("IMAGE_TAG", "") in broken.read_text().split()
            ready = not bad and time.time() - started > 0.2
            if self.path == "/readyz":
                return self.reply(200 if ready else 503, {"ready": ready})
            if self.path == "/healthz":
                return self.reply(200, {"status": "ok", "db": "reachable", "redis": "reachable", "ai": "responsive",
                                        "restarts": 0})
            if self.path == "/version":
                return self.reply(200, {"version": settings.get("IMAGE_TAG", ""), "service": "recall-api",
                                        "project": project})
            if self.path == "/metrics":
                return self.reply(200, {"rss_mb": 120, "cpu": 0.2, "error_rate": float(settings.get("ERROR_RATE", "0"))})
            self.reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            frozen = (STATE / "writes_frozen").exists()
            self.reply(409 if frozen else 201, {"frozen": frozen})

    return Api


def proxy_handler() -> type[BaseHTTPRequestHandler]:
    class Proxy(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            upstream = (STATE / "upstream").read_text().strip()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{upstream}{self.path}", timeout=5) as resp:
                    status, body = resp.status, resp.read()
            except urllib.error.HTTPError as exc:
                status, body = exc.code, exc.read()
            except OSError:
                status, body = 502, b'{"error": "bad gateway"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Proxy


def serve(handler: type[BaseHTTPRequestHandler], port: int, pidfile: Path) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    pidfile.write_text(str(os.getpid()))
    server.serve_forever()


def arg(name: str, default: str | None = None) -> str:
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    if default is None:
        raise SystemExit(f"{name} is required")
    return default


def alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, 0)
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, ValueError):
        return False


def main() -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    command = sys.argv[1]
    if command in ("serve-api", "serve-proxy"):
        if command == "serve-api":
            project = arg("--project")
            serve(api_handler(project, env_file(arg("--env-file"))), int(arg("--port")), STATE / f"{project}.pid")
        serve(proxy_handler(), int(arg("--port")), STATE / "proxy.pid")
    if command in ("up", "proxy"):
        name = arg("--project") if command == "up" else "proxy"
        if not alive(STATE / f"{name}.pid"):
            extra = ["--project", name, "--env-file", arg("--env-file")] if command == "up" else []
            subprocess.Popen([sys.executable, __file__, f"serve-{'api' if command == 'up' else 'proxy'}",
                              "--port", arg("--port"), *extra], start_new_session=True)
            for _ in range(100):
                if alive(STATE / f"{name}.pid"):
                    break
                time.sleep(0.05)
        return 0
    if command == "down":
        pidfile = STATE / f"{arg('--project')}.pid"
        if alive(pidfile):
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
            while alive(pidfile):
                time.sleep(0.05)
        pidfile.unlink(missing_ok=True)
        return 0
    if command == "ps":
        project = arg("--project")
        print(f"{project}  {'Up' if alive(STATE / f'{project}.pid') else 'Exited'}")
        return 0
    if command == "proxy-switch":
        # Atomic, as NGINX's reload is: written beside and renamed over, so a request in flight reads
        # the old upstream or the new one, never a half-written file (that was a 502 during the flip).
        staged = STATE / "upstream.new"
        staged.write_text(arg("--to"))
        os.replace(staged, STATE / "upstream")
        print(f"proxy upstream -> 127.0.0.1:{arg('--to')}")
        return 0
    if command == "writes":
        flag = STATE / "writes_frozen"
        flag.touch() if sys.argv[2] == "frozen" else flag.unlink(missing_ok=True)
        print(f"writes {sys.argv[2]}")
        return 0
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    sys.exit(main())
