"""Release v3: pinned notes first. BROKEN ON PURPOSE, to show an automatic rollback.

Migration 3 adds the column `pinned`, but this code was written against a draft that called it
`priority`. Everything that does not read notes works - the migration applies, the process
starts and /readyz answers 200 - but /api/notes fails with 500 and /health says "degraded".
"""

from __future__ import annotations

import sqlite3
from typing import Any

from releases import body_of

VERSION = "v3"
SCHEMA = 3


def list_notes(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, body, author, priority, created_at FROM notes ORDER BY priority DESC, id"
    )
    return [dict(r) for r in rows]


def add_note(conn: sqlite3.Connection, data: object) -> dict[str, Any]:
    pinned = bool(data.get("pinned")) if isinstance(data, dict) else False
    cur = conn.execute(
        "INSERT INTO notes (body, pinned) VALUES (?, ?) RETURNING id, body, author, pinned, created_at",
        (body_of(data), int(pinned)),
    )
    return dict(cur.fetchall()[0])  # fetchall: the INSERT completes, so it commits
