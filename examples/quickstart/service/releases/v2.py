"""Release v2: notes have an author (migration 2 adds the column, default 'anonymous')."""

from __future__ import annotations

import sqlite3
from typing import Any

from releases import body_of

VERSION = "v2"
SCHEMA = 2


def list_notes(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT id, body, author, created_at FROM notes ORDER BY id")
    return [dict(r) for r in rows]


def add_note(conn: sqlite3.Connection, data: object) -> dict[str, Any]:
    author = data.get("author") if isinstance(data, dict) else None
    if author is not None and not isinstance(author, str):
        raise ValueError('"author" must be a string')
    cur = conn.execute(
        "INSERT INTO notes (body, author) VALUES (?, coalesce(?, 'anonymous')) "
        "RETURNING id, body, author, created_at",
        (body_of(data), author),
    )
    return dict(cur.fetchall()[0])  # fetchall: the INSERT completes, so it commits
