"""The HTTP side of the Tascade stand-in: /health and the seven P5.M3 metrics endpoints.

Every request opens its own connection to $TASCADE_DATABASE_URL (psycopg), so the service notices
at once when a migration adds or a rollback drops the metrics tables: without them the metrics
endpoints answer 503 with a JSON error, as the real service does before its migrations ran.
"""

from __future__ import annotations

import hmac
import json
import os
import signal
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg.rows import dict_row

API_VERSION = "1.0"


def libpq_url(url: str) -> str:
    """TASCADE_DATABASE_URL is a SQLAlchemy URL (postgresql+psycopg://...); psycopg wants postgresql://."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}" if sep else url


class NotFound(Exception):
    pass


class BadRequest(Exception):
    pass


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, database_url: str, api_key: str | None, auth_disabled: bool) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.database_url = libpq_url(database_url)
        self.api_key = api_key
        self.auth_disabled = auth_disabled


class Handler(BaseHTTPRequestHandler):
    server: MetricsServer
    server_version = "tascade-standin"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/health":
            self.reply(200, {"status": "ok"})
            return
        name = url.path.removeprefix("/v1/metrics/")
        endpoint = ENDPOINTS.get(name) if url.path.startswith("/v1/metrics/") else None
        if endpoint is None:
            self.reply(404, {"error": f"no route {url.path}"})
            return
        if not self.authorized():
            self.reply(401, {"error": "missing or wrong Bearer token"}, versioned=True,
                       extra={"WWW-Authenticate": "Bearer"})
            return
        project_id = query.get("project_id")
        try:
            if not project_id:
                raise BadRequest("project_id is required")
            with psycopg.connect(self.server.database_url, connect_timeout=3, row_factory=dict_row) as conn:
                conn.read_only = True
                if conn.execute("SELECT 1 FROM project WHERE id = %s", (project_id,)).fetchone() is None:
                    raise NotFound(f"no project {project_id!r}")
                body = {"project_id": project_id, **endpoint(conn, project_id, query)}
        except BadRequest as exc:
            self.reply(400, {"error": str(exc)}, versioned=True)
        except NotFound as exc:
            self.reply(404, {"error": str(exc)}, versioned=True)
        except psycopg.errors.UndefinedTable as exc:
            self.reply(503, {"error": "the metrics tables are missing: apply migrations 0005-0008",
                             "detail": str(exc).splitlines()[0]}, versioned=True)
        except psycopg.OperationalError as exc:
            self.reply(503, {"error": "database unavailable", "detail": str(exc).strip().splitlines()[0]},
                       versioned=True)
        else:
            self.reply(200, body, versioned=True)

    def authorized(self) -> bool:
        if self.server.auth_disabled:
            return True
        expected = self.server.api_key
        given = self.headers.get("Authorization", "")
        return bool(expected) and hmac.compare_digest(given.encode(), f"Bearer {expected}".encode())

    def reply(self, status: int, body: dict[str, Any], *, versioned: bool = False,
              extra: dict[str, str] | None = None) -> None:
        data = json.dumps(body, default=_json_default).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if versioned:
            self.send_header("X-API-Version", API_VERSION)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# --- the seven endpoints: (connection, project id, query parameters) -> response fields -----------

Query = dict[str, str]


def summary(conn: psycopg.Connection, project: str, q: Query) -> dict[str, Any]:
    row = conn.execute(
        "SELECT tasks_total, tasks_done, cycle_time_p50, computed_at FROM metrics_summary WHERE project_id = %s",
        (project,),
    ).fetchone()
    return {"summary": row or {"tasks_total": 0, "tasks_done": 0, "cycle_time_p50": None, "computed_at": None}}


def trends(conn: psycopg.Connection, project: str, q: Query) -> dict[str, Any]:
    metric = q.get("metric", "cycle_time")
    start, end = q.get("start_date", "1970-01-01"), q.get("end_date", "9999-12-31")
    points = conn.execute(
        "SELECT bucket, value FROM metrics_trend_point WHERE project_id = %s AND metric = %s"
        " AND bucket BETWEEN %s AND %s ORDER BY bucket",
        (project, metric, start, end),
    ).fetchall()
    return {"metric": metric, "granularity": q.get("granularity", "day"), "points": points}


def breakdown(conn: psycopg.Connection, project: str, q: Query) -> dict[str, Any]:
    dimension = q.get("dimension", "state")
    points = conn.execute(
        "SELECT key, value FROM metrics_breakdown_point WHERE project_id = %s AND dimension = %s ORDER BY key",
        (project, dimension),
    ).fetchall()
    return {"dimension": dimension, "points": points}


def drilldown(conn: psycopg.Connection, project: str, q: Query) -> dict[str, Any]:
    metric = q.get("metric", "cycle_time")
    items = conn.execute(
        "SELECT task_id, value FROM metrics_drilldown WHERE project_id = %s AND metric = %s"
        " ORDER BY value DESC LIMIT 50",
        (project, metric),
    ).fetchall()
    return {"metric": metric, "items": items}


def jobs(conn: psycopg.Connection, project: str, q: Query) -> dict[str, Any]:
    checkpoints = conn.execute(
        "SELECT job_name, last_event_id, updated_at FROM metrics_job_checkpoint ORDER BY job_name"
    ).fetchall()
    runs = conn.execute(
        "SELECT job_name, started_at, finished_at, status, events_read FROM metrics_job_run"
        " ORDER BY started_at DESC LIMIT 20"
    ).fetchall()
    counters = conn.execute(
        "SELECT from_state, to_state, count FROM metrics_state_transition_counter WHERE project_id = %s",
        (project,),
    ).fetchall()
    return {"checkpoints": checkpoints, "runs": runs, "transitions": counters}


def alerts(conn: psycopg.Connection, project: str, q: Query) -> dict[str, Any]:
    rows = conn.execute(
        "SELECT id, metric, severity, message, raised_at FROM metrics_alert"
        " WHERE project_id = %s AND resolved_at IS NULL ORDER BY raised_at DESC",
        (project,),
    ).fetchall()
    return {"alerts": rows}


def actions(conn: psycopg.Connection, project: str, q: Query) -> dict[str, Any]:
    rows = conn.execute(
        "SELECT id AS alert_id, action, severity FROM metrics_alert"
        " WHERE project_id = %s AND resolved_at IS NULL AND action IS NOT NULL ORDER BY raised_at DESC",
        (project,),
    ).fetchall()
    return {"actions": rows}


ENDPOINTS: dict[str, Callable[[psycopg.Connection, str, Query], dict[str, Any]]] = {
    "summary": summary, "trends": trends, "breakdown": breakdown, "drilldown": drilldown,
    "jobs": jobs, "alerts": alerts, "actions": actions,
}


def serve(port: int) -> None:
    database_url = os.environ.get("TASCADE_DATABASE_URL")
    if not database_url:
        sys.exit("TASCADE_DATABASE_URL is not set")
    auth_disabled = os.environ.get("TASCADE_AUTH_DISABLED") == "1"
    api_key = os.environ.get("TASCADE_API_KEY") or None
    if not auth_disabled and api_key is None:
        sys.exit("TASCADE_API_KEY is not set (or set TASCADE_AUTH_DISABLED=1 in a test environment)")
    httpd = MetricsServer(port, database_url, api_key, auth_disabled)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"serving on http://127.0.0.1:{port} (auth {'DISABLED' if auth_disabled else 'Bearer'})",
          file=sys.stderr, flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
        print("stopped", file=sys.stderr, flush=True)
