#!/usr/bin/env python3
"""Stand-in for the MES dashboard of runbook 000 (standard library only).

    python3 app.py start|stop|status|serve [--port N] [--state DIR]   (else $MES_PORT, $MES_STATE)

It serves the frontend release that STATE/current points at (a symlink into static/dist/), the
KPI API, two CSV exports and the /health telemetry the gates and alert rules read.
POST /admin/api/worker/restart re-reads STATE/current on the same port (a controlled restart);
POST /control simulates trouble: {"degraded_reason": "..."}, {"saturation": 0.95},
{"watchdog_restarts": 3}, {"client_retries": 40}, {"degrade_release": "2.0.0"} (that release
reports itself degraded while it is served), {"restart_mode": "rebind"} (a worker restart lets the
port go for half a second), {"reset": true}.
A request with `X-Fault-Drill: pool_exhausted|circuit_open` alone takes that fault path.
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

HERE = Path(__file__).resolve().parent
DIST = HERE / "static" / "dist"
ROWS = [  # resource-history rows: planned, run minutes, ideal cycle s, output, good
    ("PRESS-01", 480, 420, 30, 800, 776), ("PRESS-02", 480, 450, 28, 900, 873), ("LATHE-07", 480, 400, 45, 500, 490),
]
HEADERS = {"resource-history": "resource_id,planned_min,run_min,ideal_cycle_s,output_units,good_units",
           "job-query": "job_id,resource_id,started_at,finished_at,status,operator"}
DRILLS = {"pool_exhausted": ("DB_POOL_EXHAUSTED", 5), "circuit_open": ("CIRCUIT_BREAKER_OPEN", 30)}
SIM: dict[str, Any] = {}


def kpis(source: str) -> dict[str, float]:
    planned, run = sum(r[1] for r in ROWS), sum(r[2] for r in ROWS)
    ideal = sum(r[3] * r[4] for r in ROWS) / 60
    out, good = sum(r[4] for r in ROWS), sum(r[5] for r in ROWS)
    a, p, q = run / planned, ideal / run, good / out
    if source == "backend":  # the legacy aggregation rounds each factor first
        a, p, q = round(a, 3), round(p, 3), round(q, 3)
    return {"availability": round(a, 4), "performance": round(p, 4), "quality": round(q, 4), "oee": round(a * p * q, 4)}


class App:
    def __init__(self, state: Path, port: int) -> None:
        self.state, self.port, self.release, self.restarts = state, port, "", 0
        self.load()

    def load(self) -> None:
        self.release = json.loads((self.state / "current" / "manifest.json").read_text())["version"]

    def health(self) -> dict[str, Any]:
        degraded = SIM.get("degraded_reason", "")
        if SIM.get("degrade_release") == self.release:
            degraded = degraded or f"release {self.release}: route cache rebuild failing"
        saturation = SIM.get("saturation", 0.27)
        return {
            "status": "degraded" if degraded else "ok", "version": self.release, "degraded_reason": degraded,
            "bind": f"127.0.0.1:{self.port}", "pid": os.getpid(),
            "route_cache": {"mode": os.environ.get("MES_ROUTE_CACHE", "memory"), "degraded": bool(degraded)},
            "database_pool": {"runtime": {"size": 10, "overflow": 5}, "state": {"saturation": saturation}},
            "resource_cache": {"derived_index": {"entries": len(ROWS)}},
            "cache": {"derived_search_index": {"entries": len(ROWS)}},
            "watchdog": {"restarts": SIM.get("watchdog_restarts", 0), "worker_restarts": self.restarts},
            "client": {"retries_per_min": SIM.get("client_retries", 0)},
        }


def handler(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def reply(self, status: int, body: Any, ctype: str = "application/json", headers: dict | None = None) -> None:
            data = body if isinstance(body, bytes) else (json.dumps(body) if ctype == "application/json" else body).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            for k, v in (headers or {}).items():
                self.send_header(k, str(v))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            drill = self.headers.get("X-Fault-Drill", "")
            if drill in DRILLS:
                code, retry = DRILLS[drill]
                return self.reply(503, {"error": {"code": code}}, headers={"Retry-After": retry})
            if url.path == "/health":
                return self.reply(200, app.health())
            if url.path == "/health/deep":
                return self.reply(200, {"route_cache": app.health()["route_cache"], "diagnostics": {
                    "thresholds": {"saturation": 0.9}, "churn": {"restarts_10m": SIM.get("watchdog_restarts", 0)},
                    "recommendation": "none"}})
            if url.path == "/api/kpis":
                return self.reply(200, kpis(query.get("source", ["frontend"])[0]))
            if url.path.startswith("/export/") and url.path.endswith(".csv"):
                name = url.path[len("/export/"):-4]
                if name in HEADERS:
                    return self.reply(200, HEADERS[name] + "\n", "text/csv; charset=utf-8")
            if url.path == "/admin/api/worker/status":
                contract = {k: str(app.state / v) for k, v in (("restart_flag", "run/restart.flag"),
                            ("pid_file", "run/gunicorn.pid"), ("state_file", "lib/watchdog-state.json"))}
                return self.reply(200, {"runtime_contract": contract,
                                        "paths_exist": all(Path(p).parent.is_dir() for p in contract.values())})
            page = "index.html" if url.path in ("/", "/index.html") else url.path.lstrip("/")
            target = (app.state / "current" / page).resolve()
            if target.is_file() and (app.state / "current").resolve() in target.parents:
                return self.reply(200, target.read_bytes(), "text/html" if page.endswith(".html") else "text/javascript")
            self.reply(404, {"error": {"code": "NOT_FOUND"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path == "/admin/api/worker/restart":
                app.load()
                app.restarts += 1
                self.reply(200, {"version": app.release, "bind": f"127.0.0.1:{app.port}"})
                if SIM.get("restart_mode") == "rebind":  # a careless restart: the port is let go
                    threading.Thread(target=self.server.shutdown, daemon=True).start()
                return None
            if self.path == "/control":
                SIM.clear() if body.pop("reset", False) else None
                SIM.update(body)
                return self.reply(200, SIM)
            self.reply(404, {"error": {"code": "NOT_FOUND"}})

    return Handler


def serve(state: Path, port: int) -> None:
    if not (state / "current").exists():
        (state / "current").symlink_to(DIST / "1.9.0")
    app = App(state, port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    (state / "app.pid").write_text(str(os.getpid()))
    while True:  # a shutdown is a restart that let the port go: bind it again a moment later
        server = ThreadingHTTPServer(("127.0.0.1", port), handler(app))
        server.serve_forever()
        server.server_close()
        time.sleep(0.5)


def up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
            return True
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["start", "stop", "status", "serve"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("MES_PORT", "8790")))
    parser.add_argument("--state", type=Path, default=Path(os.environ.get("MES_STATE", HERE / "state")))
    args = parser.parse_args()
    args.state.mkdir(parents=True, exist_ok=True)
    pidfile = args.state / "app.pid"
    if args.command == "serve":
        serve(args.state, args.port)
    elif args.command == "start":
        if up(args.port):
            return 0
        subprocess.Popen([sys.executable, __file__, "serve", "--port", str(args.port), "--state", str(args.state)],
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=open(args.state / "app.log", "a"))
        for _ in range(100):
            if up(args.port):
                return 0
            time.sleep(0.05)
        return 1
    elif args.command == "stop":
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
            pidfile.unlink()
        for _ in range(100):
            if not up(args.port):
                return 0
            time.sleep(0.05)
        return 1
    else:
        print("running" if up(args.port) else "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
