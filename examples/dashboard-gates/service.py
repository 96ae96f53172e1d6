#!/usr/bin/env python3
"""A stand-in for the manufacturing dashboard of runbooks-in-the-wild 000/001 (standard library only).

It serves the frontend release that STATE/current points at (a symlink into releases/), the
resource-history API and CSV exports, and the /health telemetry the migration's gates and alert
rules read. Faults are simulated through POST /control, so a demo or a test can make it go bad.

    python3 service.py [--port 8790] [--state DIR]     # else $DASHBOARD_PORT, $DASHBOARD_STATE, ./state

GET  /health, /health/deep     telemetry; always 200 while the process runs (probes must see values)
GET  /, /assets/NAME           the current frontend release
GET  /api/kpis?source=backend|frontend, /api/resource-history
GET  /export/resource-history.csv, /export/job-query.csv
POST /admin/maintenance        {"enabled": true}: the API and pages answer 503 MAINTENANCE
POST /admin/reload             controlled worker reload: serve what STATE/current points at now
POST /control                  simulate: {"fault": "pool_exhausted"}, {"fault": "circuit_open"},
                               {"fault": "export_header_drift"}, {"clear": "circuit_open"},
                               {"degraded_reason": "redis unreachable"}, {"watchdog_restarts": 3},
                               {"client_retries": 30}, {"reset": true}; with "version": "2.0.0" a
                               fault or degraded reason holds only while that release is served
GET  /control                  the simulation state

A request with the header `X-Fault-Drill: pool_exhausted` or `circuit_open` takes that fault path
alone, so the resilience gate checks the 503 contract without touching anyone else's traffic.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
RELEASES = HERE / "releases"
FIRST_RELEASE = "1.9.0"  # what a fresh state directory serves: the legacy iframe portal
DEFAULT_PORT = 8790
MAX_BODY = 64 * 1024
FAULTS = ("pool_exhausted", "circuit_open", "export_header_drift")
DRILLS = ("pool_exhausted", "circuit_open")
# (status, error code, Retry-After seconds) of each fault path: the contract of gate 5 in 000.
FAULT_REPLY = {
    "pool_exhausted": (503, "DB_POOL_EXHAUSTED", 5),
    "circuit_open": (503, "CIRCUIT_BREAKER_OPEN", 30),
    "maintenance": (503, "MAINTENANCE", 60),
}
POOL_SIZE, POOL_OVERFLOW = 10, 5
NORMAL_CHECKED_OUT = 4  # 4 of 15 connections: saturation 0.27
RETRY_WINDOW = 60.0  # client.retries_per_min counts retries in the last minute

# The stand-in's database: one line's resource history for one day (minutes per state, units).
# Both KPI computations below read these rows; gate 3 holds them to the recorded fixture values.
RESOURCE_HISTORY = [
    # resource_id, line, day, planned_min, run_min, ideal_cycle_s, output_units, good_units
    ("PRESS-01", "L1", "2026-11-20", 480, 402, 30.0, 771, 748),
    ("PRESS-02", "L1", "2026-11-20", 480, 365, 30.0, 689, 662),
    ("WELD-01", "L1", "2026-11-20", 480, 431, 45.0, 547, 541),
    ("PAINT-01", "L1", "2026-11-20", 480, 388, 60.0, 371, 352),
]
RESOURCE_FIELDS = ["resource_id", "line", "day", "planned_min", "run_min", "ideal_cycle_s",
                   "output_units", "good_units"]
JOBS = [
    ("J-7781", "PRESS-01", "2026-11-20T06:02:00Z", "2026-11-20T09:47:00Z", "done", "akira"),
    ("J-7782", "WELD-01", "2026-11-20T06:15:00Z", "2026-11-20T13:20:00Z", "done", "mei"),
    ("J-7790", "PAINT-01", "2026-11-20T10:05:00Z", "", "running", "jun"),
]
JOB_FIELDS = ["job_id", "resource_id", "started_at", "finished_at", "status", "operator"]


def kpis_backend(rows: list[tuple[Any, ...]]) -> dict[str, float]:
    """The legacy server-side aggregation: each factor rounded to 3 places, as its SQL did."""
    planned = sum(r[3] for r in rows)
    run = sum(r[4] for r in rows)
    ideal = sum(r[5] * r[6] for r in rows) / 60.0
    output = sum(r[6] for r in rows)
    good = sum(r[7] for r in rows)
    a, p, q = round(run / planned, 3), round(ideal / run, 3), round(good / output, 3)
    return {"availability": a, "performance": p, "quality": q, "oee": round(a * p * q, 4)}


def kpis_frontend(rows: list[tuple[Any, ...]]) -> dict[str, float]:
    """The 2.0.0 bundle's shared-core compute (src/frontend/kpi.js), ported: per-resource factors
    weighted by planned time, full precision, rounded once at the end. It differs from the
    backend's in the fourth decimal, which is why the parity gate has a tolerance."""
    planned = sum(r[3] for r in rows)
    a = sum((r[4] / r[3]) * r[3] for r in rows) / planned
    run = sum(r[4] for r in rows)
    p = sum((r[5] * r[6] / 60.0 / r[4]) * r[4] for r in rows) / run
    output = sum(r[6] for r in rows)
    q = sum((r[7] / r[6]) * r[6] for r in rows) / output
    return {"availability": round(a, 4), "performance": round(p, 4), "quality": round(q, 4),
            "oee": round(a * p * q, 4)}


@dataclass(frozen=True)
class Scoped:
    """A simulated fault or degraded reason, and the frontend release it is tied to (None: any)."""

    what: str
    version: str | None  # only while this release is served: the new bundle's load, gone on rollback


class Dashboard:
    """Everything the handlers share, behind one lock (requests run on many threads)."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.maintenance = False
        self.faults: set[Scoped] = set()
        self.degraded = Scoped("", None)  # the reason, and the release it is scoped to
        self.restarts = 0
        self.last_restart: str | None = None
        self.retries: deque[float] = deque()
        self.in_flight = 0
        self.release, self.index_html = self._load()

    @property
    def current(self) -> Path:
        return self.state / "current"

    def _load(self) -> tuple[str, bytes]:
        """Read the release STATE/current points at (created on first start: 1.9.0)."""
        self.state.mkdir(parents=True, exist_ok=True)
        if not self.current.is_symlink() and not self.current.exists():
            self.current.symlink_to(RELEASES / FIRST_RELEASE)
        root = self.current.resolve()
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        return str(manifest["version"]), (root / "index.html").read_bytes()

    def reload(self) -> str:
        release, index = self._load()  # outside the lock: a bad release leaves the old one serving
        with self.lock:
            self.release, self.index_html = release, index
        return release

    def active(self, name: str) -> bool:
        return any(f.what == name and f.version in (None, self.release) for f in self.faults)

    @property
    def degraded_reason(self) -> str:
        return self.degraded.what if self.degraded.version in (None, self.release) else ""

    def retries_per_min(self) -> float:
        now = time.monotonic()
        while self.retries and self.retries[0] < now - RETRY_WINDOW:
            self.retries.popleft()
        return float(len(self.retries))

    def health(self) -> dict[str, Any]:
        with self.lock:
            exhausted = self.active("pool_exhausted")
            circuit = "OPEN" if self.active("circuit_open") else "CLOSED"
            checked_out = POOL_SIZE + POOL_OVERFLOW if exhausted else NORMAL_CHECKED_OUT + self.in_flight
            capacity = POOL_SIZE + POOL_OVERFLOW
            return {
                "status": "degraded" if self.degraded_reason else "ok",
                "version": self.release,
                "maintenance": self.maintenance,
                "degraded_reason": self.degraded_reason,
                "route_cache": {"mode": "memory", "entries": 128, "hit_ratio": 0.94},
                "database_pool": {
                    "runtime": {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW, "timeout_s": 30},
                    "state": {"checked_out": min(checked_out, capacity),
                              # 0.97 rather than 1.0 under exhaustion: the real pool reports the
                              # overflow slot it keeps for the health query itself
                              "saturation": 0.97 if exhausted else round(min(checked_out, capacity) / capacity, 2),
                              "waiting": 12 if exhausted else 0},
                },
                "circuit_breaker": {"state": circuit, "failures": 5 if circuit == "OPEN" else 0},
                "watchdog": {"restarts": self.restarts, "last_restart_at": self.last_restart},
                "client": {"retries_per_min": self.retries_per_min()},
                "resource_cache": {"derived_index": {"entries": len(RESOURCE_HISTORY), "stale": False}},
                "cache": {"derived_search_index": {"entries": len(JOBS), "stale": False}},
                "uptime_s": round(time.monotonic() - self.started, 1),
            }

    def control(self, data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if data.get("reset"):
                self.faults.clear()
                self.degraded = Scoped("", None)
                self.retries.clear()
            if "fault" in data:
                name = data["fault"]
                if name not in FAULTS:
                    raise ValueError(f"fault must be one of {', '.join(FAULTS)}, got {name!r}")
                self.faults.add(Scoped(name, data.get("version")))
            if "clear" in data:
                self.faults = {f for f in self.faults if f.what != data["clear"]}
            if "degraded_reason" in data:
                self.degraded = Scoped(str(data["degraded_reason"]), data.get("version"))
            for _ in range(int(data.get("watchdog_restarts", 0))):
                self.restarts += 1
                self.last_restart = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            now = time.monotonic()
            self.retries.extend([now] * int(data.get("client_retries", 0)))
            faults = sorted(self.faults, key=lambda f: (f.what, f.version or ""))
            return {"faults": [{"name": f.what, "version": f.version} for f in faults],
                    "degraded_reason": self.degraded_reason, "watchdog_restarts": self.restarts,
                    "client_retries_per_min": self.retries_per_min(), "version": self.release}


class Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow client never holds up shutdown

    def __init__(self, port: int, dash: Dashboard) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.dash = dash


class Handler(BaseHTTPRequestHandler):
    server: Server
    server_version = "mes-dashboard-standin"

    # --- routes ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        dash = self.server.dash
        if url.path in ("/health", "/health/deep"):
            body = dash.health()
            if url.path == "/health/deep":
                body["diagnostics"] = {
                    "thresholds": {"degraded_for_s": 300, "restart_churn": "3 in 10m",
                                   "pool_saturation": 0.90, "retry_ratio": 2.0},
                    "churn": {"restarts": body["watchdog"]["restarts"]},
                    "recommendation": "rollback" if body["database_pool"]["state"]["saturation"] >= 0.90 else "none",
                }
            self.reply_json(200, body)
            return
        if url.path.startswith("/control"):
            self.reply_json(200, dash.control({}))
            return
        if url.path in ("/", "/index.html"):
            if not self.refused():
                self.reply(200, dash.index_html, "text/html; charset=utf-8")
            return
        if url.path.startswith("/assets/"):
            self.asset(url.path.removeprefix("/assets/"))
            return
        routes = {
            "/api/kpis": lambda: self.kpis(query),
            "/api/resource-history": lambda: self.reply_json(200, {
                "line": "L1", "day": "2026-11-20", "rows": [dict(zip(RESOURCE_FIELDS, r, strict=True))
                                                            for r in RESOURCE_HISTORY]}),
            "/export/resource-history.csv": lambda: self.csv(RESOURCE_FIELDS, RESOURCE_HISTORY),
            "/export/job-query.csv": lambda: self.csv(JOB_FIELDS, JOBS),
        }
        route = routes.get(url.path)
        if route is None:
            self.reply_json(404, {"error": {"code": "NOT_FOUND", "message": f"no route {url.path}"}})
            return
        if self.headers.get("X-Retry-Attempt", "0").strip() not in ("", "0"):
            with dash.lock:
                dash.retries.append(time.monotonic())  # what client.retries_per_min counts
        if self.refused():
            return
        with dash.lock:
            dash.in_flight += 1
        try:
            route()
        finally:
            with dash.lock:
                dash.in_flight -= 1

    def do_POST(self) -> None:
        dash = self.server.dash
        try:
            data = self.read_json()
            path = urlsplit(self.path).path
            if path == "/admin/maintenance":
                with dash.lock:
                    dash.maintenance = bool(data.get("enabled"))
                self.reply_json(200, {"maintenance": dash.maintenance, "version": dash.release})
            elif path == "/admin/reload":
                self.reply_json(200, {"reloaded": True, "version": dash.reload()})
            elif path == "/control":
                self.reply_json(200, dash.control(data))
            else:
                self.reply_json(404, {"error": {"code": "NOT_FOUND", "message": f"no route POST {path}"}})
        except (ValueError, OSError, KeyError) as exc:  # bad JSON, a fault name, a broken release
            self.reply_json(400, {"error": {"code": "BAD_REQUEST", "message": str(exc)}})

    # --- the pieces ------------------------------------------------------------------------

    def refused(self) -> bool:
        """Answer 503 with an error code and Retry-After when a fault (or a drill) applies."""
        dash = self.server.dash
        drill = self.headers.get("X-Fault-Drill", "")
        if drill and drill not in DRILLS:
            self.reply_json(400, {"error": {"code": "BAD_REQUEST",
                                            "message": f"X-Fault-Drill must be one of {', '.join(DRILLS)}"}})
            return True
        with dash.lock:
            cause = next((c for c in ("circuit_open", "pool_exhausted") if drill == c or dash.active(c)), None)
            if cause is None and dash.maintenance:
                cause = "maintenance"
        if cause is None:
            return False
        status, code, retry_after = FAULT_REPLY[cause]
        if cause == "pool_exhausted":
            time.sleep(0.05)  # the pool's checkout timeout; an open circuit fails fast instead
        self.reply_json(status, {"error": {"code": code, "message": cause.replace("_", " "),
                                           "retry_after_s": retry_after}},
                        {"Retry-After": str(retry_after)})
        return True

    def kpis(self, query: dict[str, str]) -> None:
        source = query.get("source", "backend")
        compute = {"backend": kpis_backend, "frontend": kpis_frontend}.get(source)
        if compute is None:
            self.reply_json(400, {"error": {"code": "BAD_REQUEST", "message": "source is backend or frontend"}})
            return
        self.reply_json(200, {"line": "L1", "day": "2026-11-20", "source": source, **compute(RESOURCE_HISTORY)})

    def csv(self, fields: list[str], rows: list[tuple[Any, ...]]) -> None:
        with self.server.dash.lock:
            drift = self.server.dash.active("export_header_drift")
        if drift:  # a renamed column: what the CSV header contract gate exists to catch
            fields = [{"good_units": "good_qty", "operator": "operator_name"}.get(f, f) for f in fields]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(fields)
        writer.writerows(rows)
        self.reply(200, out.getvalue().encode(), "text/csv; charset=utf-8")

    def asset(self, name: str) -> None:
        root = self.server.dash.current.resolve() / "assets"
        path = (root / name).resolve()
        if path.parent != root or not path.is_file():
            self.reply_json(404, {"error": {"code": "NOT_FOUND", "message": f"no asset {name}"}})
            return
        kind = "text/javascript" if path.suffix == ".js" else "application/octet-stream"
        self.reply(200, path.read_bytes(), kind)

    # --- plumbing --------------------------------------------------------------------------

    def read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= MAX_BODY:
            raise ValueError(f"Content-Length must be 0..{MAX_BODY}")
        data = json.loads(self.rfile.read(length) or b"{}")
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    def reply_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.reply(status, json.dumps(payload).encode(), "application/json", headers)

    def reply(self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Frontend-Release", self.server.dash.release)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} {self.server.dash.release} {format % args}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("DASHBOARD_PORT", DEFAULT_PORT)),
                        help=f"port on 127.0.0.1 (default: $DASHBOARD_PORT or {DEFAULT_PORT})")
    parser.add_argument("--state", type=Path, default=Path(os.environ.get("DASHBOARD_STATE", HERE / "state")),
                        help="directory of the `current` symlink (default: $DASHBOARD_STATE or ./state)")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    try:
        dash = Dashboard(args.state.resolve())
        server = Server(args.port, dash)
    except (OSError, ValueError, KeyError) as exc:
        print(f"service.py: error: {exc}", file=sys.stderr)
        return 1
    if args.quiet:
        Handler.log_message = lambda self, format, *a: None  # type: ignore[method-assign]

    def terminate(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)  # unwinds serve_forever, then the finally closes the socket

    signal.signal(signal.SIGTERM, terminate)
    print(f"dashboard {dash.release} listening on http://127.0.0.1:{args.port} (state {dash.state})",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
