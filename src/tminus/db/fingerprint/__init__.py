"""Schema-aware fingerprints: per table, the row count and an order-independent content checksum,
and every schema object by kind (columns, indexes, constraints, sequences and their values, views,
functions, triggers, comments, grants...), to prove a restore, a migration or its revert kept the
database as it was, and to name each difference when it did not.

tminus's own tables (migration tracking, ledger) are left out unless `include_tminus`: every apply
and revert adds rows to them. See diff.py for the format, postgres.py and sqlite.py for what is read.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tminus.db import pgtools
from tminus.db.fingerprint.diff import SCHEMA_KEY, Difference, Fingerprint, compare, differences, digests, tables_of
from tminus.db.fingerprint.postgres import pg_fingerprint
from tminus.db.fingerprint.select import FingerprintError, is_own_table
from tminus.db.fingerprint.sqlite import sqlite_fingerprint

__all__ = ["SCHEMA_KEY", "Difference", "Fingerprint", "FingerprintError", "compare", "differences", "digests",
           "fingerprint", "is_own_table", "pg_fingerprint", "sqlite_fingerprint", "tables_of"]


def fingerprint(url: str, tables: list[str] | None = None, *, base_dir: Path | None = None,
                include_tminus: bool = False, rows: bool = True) -> Fingerprint:
    """Fingerprint every user table (or only `tables`) of the database at `url`, with its schema.

    PostgreSQL objects in schema public are named plainly (`notes`), others qualified
    (`audit.events`), so one fingerprint format serves both engines and `tables` reads naturally.
    `rows=False` takes the schema only: no row is read (each table's entry is empty).
    """
    if pgtools.backend(url) == "sqlite":
        path = pgtools.sqlite_path(url, base_dir)
        if not path.exists():
            raise FingerprintError(f"SQLite database {path} does not exist; check the URL's path")
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                return sqlite_fingerprint(conn, tables, include_tminus=include_tminus, rows=rows)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise FingerprintError(f"cannot fingerprint SQLite database {path}: {exc}") from None
    import psycopg

    target = pgtools.pg_target(url)
    try:
        with pgtools.connect(target) as pg:
            # One snapshot for all tables: a consistent picture even while others write.
            pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                return pg_fingerprint(pg, tables, include_tminus=include_tminus, rows=rows)
            finally:
                pg.execute("ROLLBACK")
    except psycopg.Error as exc:
        raise FingerprintError(f"cannot fingerprint {target.display()}: {exc}") from None
