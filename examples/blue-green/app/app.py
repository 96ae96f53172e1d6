"""The blue-green example's application: a plain WSGI app (no framework) served by gunicorn.

Which release it is comes from the environment, as a deployment would set it:

    RELEASE        v1, v2 or v3 (v3 is broken, see below)
    DATABASE_URL   PostgreSQL, e.g. postgresql://postgres@127.0.0.1:5432/test
    BG_SCHEMA      the schema holding the `greeting` table (one per demo or test run)

Every answer carries `X-Release`. `GET /healthz` answers 200 without touching the database (the
process is up: what a start waits for). `GET /` runs one real query and answers JSON. v3 reads a
column its migration never added (`greeting.tagline`): it starts and is healthy, but every `/`
answers 500, which is what the runbook's preview must catch before any user sees it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

RELEASE = os.environ.get("RELEASE", "v1")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA = os.environ.get("BG_SCHEMA", "bluegreen")
if not re.fullmatch(r"[a-z_][a-z0-9_]*", SCHEMA):
    raise SystemExit(f"BG_SCHEMA {SCHEMA!r}: lower-case letters, digits and _ only")

# What each release asks the database for. v3's column does not exist: its bug.
QUERIES = {
    "v1": f"SELECT body, 'plain' FROM {SCHEMA}.greeting WHERE id = 1",
    "v2": f"SELECT body, 'with time ' || to_char(now(), 'HH24:MI:SS') FROM {SCHEMA}.greeting WHERE id = 1",
    "v3": f"SELECT body, tagline FROM {SCHEMA}.greeting WHERE id = 1",
}

StartResponse = Callable[..., Any]
_local = threading.local()  # one connection per worker thread, opened on first use


def _connection() -> psycopg.Connection[Any]:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5)
        _local.conn = conn
    return conn


def _query() -> tuple[str, str]:
    sql = QUERIES.get(RELEASE, QUERIES["v1"])
    try:
        row = _connection().execute(sql).fetchone()
    except psycopg.OperationalError:
        _local.conn = None  # the server went away: reconnect once
        row = _connection().execute(sql).fetchone()
    if row is None:
        raise LookupError(f"no greeting in {SCHEMA}.greeting")
    return str(row[0]), str(row[1])


def _answer(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = (json.dumps(body) + "\n").encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                            ("X-Release", RELEASE)])
    return [data]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/healthz":
        return _answer(start_response, "200 OK", {"status": "ok", "release": RELEASE})
    if path != "/":
        return _answer(start_response, "404 Not Found", {"error": "not found", "release": RELEASE})
    try:
        greeting, detail = _query()
    except Exception as exc:  # the bug answers 500, as a real release's would
        return _answer(start_response, "500 Internal Server Error",
                       {"error": f"{type(exc).__name__}: {exc}".strip(), "release": RELEASE})
    return _answer(start_response, "200 OK", {"release": RELEASE, "greeting": greeting, "detail": detail})
