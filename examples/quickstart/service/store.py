"""The service's SQLite database: numbered migrations with up/down SQL, seed data, backup, restore.

The schema version is the highest row of `schema_version`; each migration runs in one
transaction (SQLite DDL is transactional), so a failed migration leaves the previous version.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

# version -> (up, down). Additive changes only, so an older release keeps working on a newer
# schema: that is what lets the deploy happen after the migration.
MIGRATIONS: dict[int, tuple[str, str]] = {
    1: (
        """CREATE TABLE notes (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               body TEXT NOT NULL,
               created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
           )""",
        "DROP TABLE notes",
    ),
    2: (
        "ALTER TABLE notes ADD COLUMN author TEXT NOT NULL DEFAULT 'anonymous'",
        "ALTER TABLE notes DROP COLUMN author",
    ),
    3: (
        "ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE notes DROP COLUMN pinned",
    ),
}
LATEST = max(MIGRATIONS)

SEED_NOTES = (
    "T-10: gates are green",
    "T-5: backup taken",
    "T-0: cutover",
)


class StoreError(Exception):
    """A problem the operator can act on; svc.py prints it and exits 1."""


def connect(db: Path) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions are explicit (BEGIN/COMMIT)."""
    if not db.exists():
        raise StoreError(f"no database at {db}; run `svc.py init` first")
    conn = sqlite3.connect(db, timeout=5, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0])


def create(db: Path) -> None:
    """A new database at schema 1 with a few notes."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
            "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
        _apply(conn, 1, up=True)
        conn.executemany("INSERT INTO notes (body) VALUES (?)", [(n,) for n in SEED_NOTES])
    finally:
        conn.close()


def migrate_to(db: Path, target: int) -> list[int]:
    """Apply the up migrations after the current version up to `target`; returns those applied."""
    if target not in MIGRATIONS:
        raise StoreError(f"no migration {target}; known: 1..{LATEST}")
    with closing(connect(db)) as conn:
        current = schema_version(conn)
        if current > target:
            raise StoreError(f"schema is at {current}, newer than {target}; use --down-to {target}")
        applied = list(range(current + 1, target + 1))
        for version in applied:
            _apply(conn, version, up=True)
        return applied


def migrate_down_to(db: Path, target: int) -> list[int]:
    """Apply the down migrations from the current version to just above `target`."""
    if not 0 <= target <= LATEST:
        raise StoreError(f"no schema version {target}; known: 0..{LATEST}")
    with closing(connect(db)) as conn:
        current = schema_version(conn)
        if current < target:
            raise StoreError(f"schema is at {current}, older than {target}; use --to {target}")
        reverted = list(range(current, target, -1))
        for version in reverted:
            _apply(conn, version, up=False)
        return reverted


def _apply(conn: sqlite3.Connection, version: int, *, up: bool) -> None:
    up_sql, down_sql = MIGRATIONS[version]
    conn.execute("BEGIN IMMEDIATE")
    try:
        if up:
            conn.execute(up_sql)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        else:
            conn.execute(down_sql)
            conn.execute("DELETE FROM schema_version WHERE version = ?", (version,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def backup(db: Path, out: Path) -> Path:
    """A consistent copy through SQLite's online backup API (safe while the service writes)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with closing(connect(db)) as src, closing(sqlite3.connect(out)) as dst:
        src.backup(dst)
    return out.resolve()


def restore(db: Path, source: Path) -> int:
    """Copy a backup over the live database in place; returns the restored schema version.

    The backup API writes into the existing file under SQLite's locks, so a running service
    sees either the old or the restored database, never a half-copied one.
    """
    if not source.is_file():
        raise StoreError(f"no backup at {source}")
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src:
        try:
            version = schema_version(src)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{source} is not a backup of this service: {exc}") from None
        db.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(db, timeout=5)) as dst:
            src.backup(dst)
    return version

