#!/usr/bin/env python3
"""Stand-in for the DevMatrix FastAPI backend of runbook 002 (stdlib + psycopg), on 127.0.0.1:$DEVMATRIX_PORT.

The release it serves is STATE/release (`mvp` or `v2`, written by `compose.py checkout`).
Maintenance mode is the file STATE/maintenance (`python3 backend.py maintenance on|off`, the stand-in
for `set_maintenance_mode(...)`): then every request answers 503 except the load balancer's
/healthz and requests with the test token (the smoke tests). POST /control sets the numbers the
metrics endpoints report ({"precision": 0.85}); they are kept in STATE/sim.json.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from common import PORT, STATE, db, redis

TEST_TOKEN = os.environ.get("DEVMATRIX_TEST_TOKEN", "test-token")
V2_HEALTH = {f"/api/v2/{n}/health" for n in ("atoms", "graphs", "validation", "execution", "review")} | {"/api/v2/health"}
METRICS = {"executions/recent": ("p95_hours", 1.2), "precision/recent": ("precision", 0.985),
           "users/active": ("active", 12), "errors/recent": ("error_rate", 0.002)}


def release() -> str:
    path = STATE / "release"
    return path.read_text().strip() if path.exists() else "mvp"


def sim() -> dict[str, Any]:
    path = STATE / "sim.json"
    return json.loads(path.read_text()) if path.exists() else {}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt: str, *args: Any) -> None:
        print(time.strftime("%H:%M:%S"), "INFO", fmt % args, flush=True)

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def blocked(self) -> bool:
        if self.path == "/healthz" or self.headers.get("Authorization") == f"Bearer {TEST_TOKEN}":
            return False
        if (STATE / "maintenance").exists():
            self.reply(503, {"detail": "Maintenance: MGE V2 upgrade in progress"})
            return True
        return False

    def do_GET(self) -> None:
        if self.blocked():
            return
        path, v2 = self.path.split("?")[0], release() == "v2"
        if path in ("/healthz", "/api/v1/health", "/"):
            return self.reply(200, {"status": "ok", "release": release()})
        if path == "/api/v1/health/db":
            with db() as conn:
                return self.reply(200, {"status": "ok", "db": conn.execute("SELECT 1").fetchone()[0]})
        if path == "/api/v1/health/redis":
            return self.reply(200, {"status": "ok", "redis": redis("PING")})
        if path == "/api/v1/health/chromadb":
            return self.reply(200, {"status": "ok", "collections": 3})
        if v2 and path in V2_HEALTH:
            return self.reply(200, {"status": "ok"})
        if v2 and path.startswith("/api/v2/metrics/"):
            key, default = METRICS[path[len("/api/v2/metrics/"):]]
            return self.reply(200, {key: sim().get(key, default)})
        if v2 and path.startswith(("/api/v2/execution/status/", "/api/v2/execution/results/")):
            plan = int(path.rsplit("/", 1)[1])
            with db() as conn:
                done = conn.execute("SELECT count(*) FROM execution_waves WHERE masterplan_id = %s", (plan,)).fetchone()[0]
            return self.reply(200, {"status": "completed", "atoms_completed": 15 * done, "precision": sim().get("precision", 0.985)})
        self.reply(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        if self.blocked():
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path == "/control":
            (STATE / "sim.json").write_text(json.dumps({**sim(), **body}))
            return self.reply(200, sim())
        if release() != "v2":
            return self.reply(404, {"detail": "Not Found"})
        with db() as conn:
            if self.path == "/api/v2/masterplans":
                row = conn.execute("INSERT INTO masterplans (user_request, user_id) VALUES (%s, %s) RETURNING masterplan_id",
                                   (body["user_request"], body["user_id"])).fetchone()
                return self.reply(201, {"masterplan_id": row[0]})
            plan = int(body["masterplan_id"])
            if self.path == "/api/v2/atomization/decompose":
                conn.execute("INSERT INTO masterplan_tasks (masterplan_id, description) "
                             "SELECT %s, 'generated task ' || g FROM generate_series(1, 100) g", (plan,))
                conn.execute("INSERT INTO atomic_units (task_id, name, estimated_loc, complexity, context_json) "
                             "SELECT t.task_id, 'atom ' || a, 10, 1.0, '{\"completeness_score\": 0.97}' "
                             "FROM masterplan_tasks t, generate_series(1, 8) a WHERE t.masterplan_id = %s", (plan,))
                atoms = conn.execute("SELECT count(*) FROM atomic_units u JOIN masterplan_tasks t USING (task_id) "
                                     "WHERE t.masterplan_id = %s", (plan,)).fetchone()[0]
                return self.reply(200, {"masterplan_id": plan, "atoms": atoms})
            if self.path == "/api/v2/graphs/build":
                row = conn.execute("INSERT INTO dependency_graphs (masterplan_id, waves) VALUES (%s, 9) RETURNING graph_id",
                                   (plan,)).fetchone()
                return self.reply(200, {"graph_id": row[0], "waves": 9})
            if self.path == "/api/v2/execution/start":
                for wave in range(int(body.get("max_waves", 1))):
                    conn.execute("INSERT INTO execution_waves (masterplan_id, wave) VALUES (%s, %s)", (plan, wave + 1))
                return self.reply(202, {"masterplan_id": plan, "started": True})
        self.reply(404, {"detail": "Not Found"})


def main() -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:2] == ["maintenance"]:
        flag = STATE / "maintenance"
        flag.touch() if sys.argv[2] == "on" else flag.unlink(missing_ok=True)
        print(f"maintenance mode {'enabled' if flag.exists() else 'disabled'}")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(time.strftime("%H:%M:%S"), "INFO", f"backend {release()} listening on 127.0.0.1:{PORT}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
