"""Release v1: notes are a body and a timestamp."""

from __future__ import annotations

import sqlite3
from typing import Any

from releases import body_of

VERSION = "v1"
SCHEMA = 1


def list_notes(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT id, body, created_at FROM notes ORDER BY id")
    return [dict(r) for r in rows]


def add_note(conn: sqlite3.Connection, data: object) -> dict[str, Any]:
    cur = conn.execute("INSERT INTO notes (body) VALUES (?) RETURNING id, body, created_at", (body_of(data),))
    return dict(cur.fetchall()[0])  # fetchall: the INSERT completes, so it commits
