"""The HTTP side of the service: one release's code behind /health, /readyz, /version, /api/notes."""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import time
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import store

SERVICE = "quickstart"
MAX_BODY = 64 * 1024


class NotesServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow client never holds up shutdown

    def __init__(self, port: int, release: ModuleType, db: Path, warmup: float) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.release = release
        self.db = db
        # Readiness is not immediate, as with a real service warming caches: that is what the
        # runbook's `wait` step is for.
        self.ready_at = time.monotonic() + warmup


class Handler(BaseHTTPRequestHandler):
    server: NotesServer
    server_version = "quickstart"

    # --- routes ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        routes = {
            "/health": self.health,
            "/readyz": self.readyz,
            "/version": self.version,
            "/api/notes": self.list_notes,
        }
        route = routes.get(self.path.split("?", 1)[0])
        if route is None:
            self.reply(404, {"error": f"no route {self.path}"})
        else:
            self.guarded(route)

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/api/notes":
            self.reply(404, {"error": f"no route POST {self.path}"})
        else:
            self.guarded(self.add_note)

    def health(self) -> None:
        """Liveness plus a self-test: the release's own query. Always 200 while the process runs."""
        release = self.server.release
        info: dict[str, Any] = {"status": "ok", "version": release.VERSION}
        try:
            with closing(store.connect(self.server.db)) as conn:
                schema = store.schema_version(conn)
                info["schema"] = {"version": schema, "needs": release.SCHEMA}
                info["db"] = {"notes": conn.execute("SELECT count(*) FROM notes").fetchone()[0]}
                release.list_notes(conn)
        except (sqlite3.Error, store.StoreError) as exc:
            info.update(status="degraded", error=str(exc))
        self.reply(200, info)

    def readyz(self) -> None:
        release = self.server.release
        if time.monotonic() < self.server.ready_at:
            self.reply(503, {"ready": False, "reason": "warming up"})
            return
        try:
            with closing(store.connect(self.server.db)) as conn:
                schema = store.schema_version(conn)
        except (sqlite3.Error, store.StoreError) as exc:
            self.reply(503, {"ready": False, "reason": f"database: {exc}"})
            return
        if schema < release.SCHEMA:
            reason = f"schema is at {schema}; {release.VERSION} needs {release.SCHEMA} (svc.py migrate)"
            self.reply(503, {"ready": False, "reason": reason})
            return
        self.reply(200, {"ready": True, "version": release.VERSION, "schema": schema})

    def version(self) -> None:
        self.reply(200, {"service": SERVICE, "version": self.server.release.VERSION})

    def list_notes(self) -> None:
        with closing(store.connect(self.server.db)) as conn:
            notes = self.server.release.list_notes(conn)
        self.reply(200, {"version": self.server.release.VERSION, "count": len(notes), "notes": notes})

    def add_note(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 <= length <= MAX_BODY:
                raise ValueError(f"Content-Length must be 0..{MAX_BODY}")
            data = json.loads(self.rfile.read(length) or b"null")
            with closing(store.connect(self.server.db)) as conn:
                note = self.server.release.add_note(conn, data)
        except ValueError as exc:  # a bad length or JSON, or a payload the release rejects
            self.reply(400, {"error": str(exc)})
            return
        self.reply(201, note)

    # --- plumbing --------------------------------------------------------------------------

    def guarded(self, route: Any) -> None:
        """A failing query is a 500 with the reason, as a real service's error handler would do."""
        try:
            route()
        except Exception as exc:
            self.log_message("%s %s failed: %s", self.command, self.path, exc)
            self.reply(500, {"error": str(exc)})

    def reply(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Release", self.server.release.VERSION)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        stamp = time.strftime("%H:%M:%S")
        sys.stderr.write(f"{stamp} {self.server.release.VERSION} {format % args}\n")


def serve(release: ModuleType, port: int, db: Path, warmup: float) -> None:
    """Serve until SIGTERM or Ctrl-C."""
    server = NotesServer(port, release, db, warmup)

    def terminate(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)  # unwinds serve_forever, then the finally closes the socket

    signal.signal(signal.SIGTERM, terminate)
    print(f"{SERVICE} {release.VERSION} listening on http://127.0.0.1:{port} (db {db})", file=sys.stderr)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        print(f"{SERVICE} {release.VERSION} stopped", file=sys.stderr)
