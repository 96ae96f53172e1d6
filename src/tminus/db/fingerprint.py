"""Per-table row counts and order-independent content checksums, to prove a restore or a
migration kept the data.

Each row is hashed from its canonical text (PostgreSQL: `md5(t::text)` on the server, so rows
never travel; SQLite: md5 of the row's Python repr). The row hashes are combined by *summing*
them as two 64-bit halves:
- a sum does not depend on row order (physical order changes with VACUUM, restore, updates);
- unlike XOR, two identical rows do not cancel out, so a duplicated or lost duplicate row shows;
- unlike sorting the hashes, it runs in constant memory on the server, whatever the table size.
The table's checksum is sha256 of "count:sum_hi:sum_lo", truncated to 32 hex digits.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tminus.db import pgtools
from tminus.errors import TminusError

if TYPE_CHECKING:
    import psycopg

Fingerprint = dict[str, dict[str, Any]]  # table -> {"rows": int, "checksum": hex}


class FingerprintError(TminusError):
    """A fingerprint could not be taken (unknown table, unreachable database)."""


def fingerprint(url: str, tables: list[str] | None = None, *, base_dir: Path | None = None) -> Fingerprint:
    """Fingerprint every user table (or only `tables`) of the database at `url`.

    PostgreSQL tables in schema public are named plainly (`notes`), others qualified
    (`audit.events`), so one fingerprint format serves both engines and `tables` reads naturally.
    """
    if pgtools.backend(url) == "sqlite":
        path = pgtools.sqlite_path(url, base_dir)
        if not path.exists():
            raise FingerprintError(f"SQLite database {path} does not exist; check the URL's path")
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                return sqlite_fingerprint(conn, tables)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise FingerprintError(f"cannot fingerprint SQLite database {path}: {exc}") from None
    import psycopg

    target = pgtools.pg_target(url)
    try:
        return _pg_snapshot_fingerprint(target, tables)
    except psycopg.Error as exc:
        raise FingerprintError(f"cannot fingerprint {target.display()}: {exc}") from None


def _pg_snapshot_fingerprint(target: pgtools.PgTarget, tables: list[str] | None) -> Fingerprint:
    with pgtools.connect(target) as pg:
        # One snapshot for all tables: a consistent picture even while others write.
        pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            return pg_fingerprint(pg, tables)
        finally:
            pg.execute("ROLLBACK")


def pg_fingerprint(conn: psycopg.Connection[Any], tables: list[str] | None = None) -> Fingerprint:
    """Fingerprint over an open connection (the caller chooses the snapshot)."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
        " ORDER BY 1, 2"
    ).fetchall()
    found = {(name if schema == "public" else f"{schema}.{name}"): (schema, name) for schema, name in rows}
    result: Fingerprint = {}
    for table in _select(found, tables):
        schema, name = found[table]
        # Split each md5 into two 64-bit signed integers and sum them as numeric (no overflow).
        count, hi, lo = conn.execute(
            "SELECT count(*), coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0),"
            " coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)"
            f" FROM (SELECT md5(t::text) AS h FROM {pgtools.ident(schema)}.{pgtools.ident(name)} t) s"
        ).fetchone() or (0, 0, 0)
        result[table] = {"rows": int(count), "checksum": _combine(int(count), int(hi), int(lo))}
    return result


def sqlite_fingerprint(conn: sqlite3.Connection, tables: list[str] | None = None) -> Fingerprint:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        " ORDER BY name")]
    found = {n: ("main", n) for n in names}
    result: Fingerprint = {}
    for table in _select(found, tables):
        count = hi = lo = 0
        for row in conn.execute(f"SELECT * FROM {pgtools.ident(table)}"):
            digest = hashlib.md5(repr(tuple(row)).encode(), usedforsecurity=False).digest()
            hi += int.from_bytes(digest[:8], "big", signed=True)
            lo += int.from_bytes(digest[8:], "big", signed=True)
            count += 1
        result[table] = {"rows": count, "checksum": _combine(count, hi, lo)}
    return result


def _select(found: dict[str, tuple[str, str]], tables: list[str] | None) -> list[str]:
    if tables is None:
        return sorted(found)
    wanted = [t[len("public."):] if t.startswith("public.") else t for t in tables]
    missing = [t for t in wanted if t not in found]
    if missing:
        raise FingerprintError(
            f"no table {', '.join(missing)} in the database; expected one of: "
            f"{', '.join(sorted(found)) or '(no tables)'}. Fix the 'tables' list"
        )
    return sorted(set(wanted))


def _combine(count: int, hi: int, lo: int) -> str:
    return hashlib.sha256(f"{count}:{hi}:{lo}".encode()).hexdigest()[:32]


def compare(before: Fingerprint, after: Fingerprint) -> list[str]:
    """Human-readable differences between two fingerprints; empty when they are equal."""
    diffs: list[str] = []
    for table in sorted(set(before) | set(after)):
        a, b = before.get(table), after.get(table)
        if b is None:
            diffs.append(f"table {table} missing after")
        elif a is None:
            diffs.append(f"table {table} is new (not in the earlier fingerprint)")
        elif a.get("rows") != b.get("rows"):
            diffs.append(f"table {table}: {a.get('rows')} rows vs {b.get('rows')} rows")
        elif a.get("checksum") != b.get("checksum"):
            diffs.append(f"table {table}: content differs ({a.get('rows')} rows, same count)")
    return diffs
