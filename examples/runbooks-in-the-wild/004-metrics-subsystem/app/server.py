#!/usr/bin/env python3
"""Stand-in for the Tascade API of runbook 004 (stdlib; psql for migrations, psycopg for queries).

The release checked out is STATE/release (p5m2, the previous one, ships 0001-0004; p5m3 ships
0001-0008). On startup init_db() applies that release's docs/db/migrations/*.sql that
schema_migrations (version = file name, applied_at) does not list, each with `psql -v ON_ERROR_STOP=1 -1 -f`, then serves /health, the seven
/v1/metrics endpoints (header X-API-Version: 1.0) and /v1/projects/<id>, behind Bearer
$TASCADE_API_KEY unless TASCADE_AUTH_DISABLED=1. Port: $TASCADE_PORT (else 8000).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parents[1]
MIGRATIONS = Path(os.environ.get("TASCADE_DB_MIGRATIONS_DIR") or HERE / "docs" / "db" / "migrations")
RELEASES = {"p5m2": "0004", "p5m3": "0008"}  # the last migration each release ships
STATE = Path(os.environ.get("TASCADE_STATE", HERE / "state"))
ENDPOINTS = ("summary", "trends", "breakdown", "drilldown", "jobs", "alerts", "actions")


def release() -> str:
    path = STATE / "release"
    return path.read_text().strip() if path.exists() else "p5m2"


def conninfo() -> str:
    return os.environ["TASCADE_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://", 1)


def psql(*args: str) -> str:
    proc = subprocess.run(["psql", conninfo(), "-v", "ON_ERROR_STOP=1", "-qAt", *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"Postgres migration failed: {proc.stderr.strip()}")
    return proc.stdout


def init_db() -> None:
    psql("-c", "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
    applied = set(psql("-c", "SELECT version FROM schema_migrations").split())
    last = RELEASES[release()]
    for path in sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        if path.name not in applied and path.name[:4] <= last:
            psql("-1", "-f", str(path), "-c", f"INSERT INTO schema_migrations (version) VALUES ('{path.name}')")
            print(f"applied {path.name}", flush=True)


def query(sql: str, *params: Any) -> list[tuple]:
    import psycopg

    with psycopg.connect(conninfo()) as conn:
        return conn.execute(sql, params).fetchall()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if self.path.startswith("/v1/metrics/"):
            self.send_header("X-API-Version", "1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/health":
            return self.reply(200, {"status": "ok"})
        key = os.environ.get("TASCADE_API_KEY", "")
        if os.environ.get("TASCADE_AUTH_DISABLED") != "1" and self.headers.get("Authorization") != f"Bearer {key}":
            return self.reply(401, {"detail": "unauthorized"})
        project = parse_qs(url.query).get("project_id", [""])[0]
        if url.path.startswith("/v1/projects/"):
            found = query("SELECT id, name FROM projects WHERE id = %s", url.path.rsplit("/", 1)[1])
            return self.reply(200 if found else 404, {"id": found[0][0], "name": found[0][1]} if found else {})
        name = url.path[len("/v1/metrics/"):]
        if url.path.startswith("/v1/metrics/") and name in ENDPOINTS:
            try:
                if name == "summary":
                    rows = query("SELECT tasks_total, tasks_done FROM metrics_summary WHERE project_id = %s", project)
                    if not rows:
                        return self.reply(404, {"detail": "project not found"})
                    return self.reply(200, {"project_id": project, "summary": {"tasks_total": rows[0][0], "tasks_done": rows[0][1]}})
                query(f"SELECT 1 FROM {'metrics_alert' if name in ('alerts', 'actions') else 'metrics_job_run'} LIMIT 1")
            except SystemExit:
                raise
            except Exception as exc:  # the tables are gone after a rollback: empty, as 004 accepts
                return self.reply(404, {"detail": f"metrics unavailable: {type(exc).__name__}"})
            return self.reply(200, {"project_id": project, "items": []})
        self.reply(404, {"detail": "not found"})


def main() -> int:
    init_db()
    port = int(os.environ.get("TASCADE_PORT", "8000"))
    print(f"listening on 127.0.0.1:{port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
