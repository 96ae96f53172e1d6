#!/usr/bin/env python3
"""Stand-in for the dashboard portal of spec 001 (standard library only).

    python3 portal.py start|stop|serve [--port N] [--state DIR]   (else $PORTAL_PORT, $PORTAL_STATE)

The navigation shell is `iframe` (legacy) or `spa`; POST /admin/nav {"shell": "iframe"} is the
kill switch (kept in STATE/nav.json, so a restart keeps it). POST /admin/legacy {"enabled": false}
decommissions the iframe pages. A watchdog thread reloads the worker when STATE/run/restart.flag
appears (POST /admin/worker/reload writes it). POST /control {"break_route": "wip"} makes a
critical route fail under the SPA shell, {"break_live_route": "wip"} only once the SPA is live (not
in a ?shell=spa preview); {"reset": true} clears them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROUTES = ("wip", "resource-history", "job-query")
DRAWER = ["WIP overview", "Resource history", "Job query", "Admin"]
DRILLS = {"pool_exhausted": ("DB_POOL_EXHAUSTED", 5), "circuit_open": ("CIRCUIT_BREAKER_OPEN", 30)}


class Portal:
    def __init__(self, state: Path) -> None:
        self.state, self.generation, self.sim = state, 0, {}  # type: ignore[var-annotated]
        self.flag = state / "run" / "restart.flag"
        self.flag.parent.mkdir(parents=True, exist_ok=True)

    def settings(self) -> dict[str, Any]:
        path = self.state / "nav.json"
        return {"shell": "iframe", "legacy": True, **(json.loads(path.read_text()) if path.exists() else {})}

    def save(self, **changes: Any) -> dict[str, Any]:
        settings = {**self.settings(), **changes}
        (self.state / "nav.json").write_text(json.dumps(settings))
        return settings

    def watchdog(self) -> None:
        while True:
            if self.flag.exists():
                self.flag.unlink()
                self.generation += 1
            time.sleep(0.05)

    def page(self, route: str, shell: str, preview: bool) -> tuple[int, str]:
        if shell == "spa":
            if self.sim.get("break_route") == route or (self.sim.get("break_live_route") == route and not preview):
                return 500, f'<div id="app" data-shell="spa" data-route="{route}">render error</div>'
            return 200, f'<div id="app" data-shell="spa" data-route="{route}"><nav>{"|".join(DRAWER)}</nav></div>'
        if not self.settings()["legacy"]:
            return 410, "legacy portal decommissioned"
        return 200, f'<iframe data-route="{route}" src="/legacy/{route}.html"></iframe>'


def handler(portal: Portal, port: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def reply(self, status: int, body: Any, headers: dict | None = None) -> None:
            text = body if isinstance(body, str) else json.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if isinstance(body, str) else "application/json")
            for k, v in (headers or {}).items():
                self.send_header(k, str(v))
            self.send_header("Content-Length", str(len(text.encode())))
            self.end_headers()
            self.wfile.write(text.encode())

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            settings = portal.settings()
            shell = query.get("shell", [settings["shell"]])[0]
            drill = self.headers.get("X-Fault-Drill", "")
            if drill in DRILLS:
                code, retry = DRILLS[drill]
                return self.reply(503, {"error": {"code": code}}, {"Retry-After": retry})
            if url.path == "/health":
                return self.reply(200, {"status": "ok", "shell": settings["shell"], "legacy": settings["legacy"],
                                        "bind": f"127.0.0.1:{port}", "worker": {"generation": portal.generation,
                                                                                "pid": os.getpid()}})
            if url.path == "/api/drawer":
                return self.reply(200, {"shell": shell, "items": DRAWER})
            if url.path == "/api/kpis":
                a, p, q = 0.8819, 0.9409, 0.9723
                if query.get("source", ["frontend"])[0] == "backend":
                    a, p, q = 0.882, 0.941, 0.972
                return self.reply(200, {"availability": a, "performance": p, "quality": q, "oee": round(a * p * q, 4)})
            route = url.path.strip("/") or "wip"
            if route in ROUTES:
                return self.reply(*portal.page(route, shell, "shell" in query))
            self.reply(404, {"error": {"code": "NOT_FOUND"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path == "/admin/nav":
                return self.reply(200, portal.save(shell=body["shell"]))
            if self.path == "/admin/legacy":
                return self.reply(200, portal.save(legacy=bool(body["enabled"])))
            if self.path == "/admin/worker/reload":
                portal.flag.write_text(str(time.time()))
                return self.reply(202, {"requested": True, "generation": portal.generation})
            if self.path == "/control":
                portal.sim.clear() if body.pop("reset", False) else portal.sim.update(body)
                return self.reply(200, portal.sim)
            self.reply(404, {"error": {"code": "NOT_FOUND"}})

    return Handler


def up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
            return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["start", "stop", "serve"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORTAL_PORT", "8791")))
    parser.add_argument("--state", type=Path, default=Path(os.environ.get("PORTAL_STATE", Path(__file__).parent / "state")))
    args = parser.parse_args()
    args.state.mkdir(parents=True, exist_ok=True)
    pidfile = args.state / "portal.pid"
    if args.command == "serve":
        portal = Portal(args.state)
        threading.Thread(target=portal.watchdog, daemon=True).start()
        server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(portal, args.port))
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        pidfile.write_text(str(os.getpid()))
        server.serve_forever()
    if args.command == "start" and not up(args.port):
        subprocess.Popen([sys.executable, __file__, "serve", "--port", str(args.port), "--state", str(args.state)],
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if args.command == "stop" and pidfile.exists():
        try:
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass
        pidfile.unlink()
    for _ in range(100):
        if up(args.port) == (args.command == "start"):
            return 0
        time.sleep(0.05)
    return 1


if __name__ == "__main__":
    sys.exit(main())
