"""SQLite fingerprint: `sqlite_master` (tables, indexes, views, triggers), the columns, the
AUTOINCREMENT counters (`sqlite_sequence`), `user_version` and `application_id`, and each table's
rows (md5 of each row's Python repr, summed as two 64-bit halves: order-independent, streamed)."""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

from tminus.db import pgtools
from tminus.db.fingerprint.diff import SCHEMA_KEY, Fingerprint, short
from tminus.db.fingerprint.select import combine, is_own_table, select_tables

_BATCH = 1000  # rows fetched at a time: memory stays flat whatever the table size


def sqlite_fingerprint(conn: sqlite3.Connection, tables: list[str] | None = None, *,
                       include_tminus: bool = False, rows: bool = True) -> Fingerprint:
    """`rows=False`: the schema only (each table's entry is empty; no row is read)."""
    master = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        " ORDER BY type, name").fetchall()
    names = [n for t, n, _, _ in master if t == "table" and (include_tminus or not is_own_table(n))]
    found = {n: ("main", n) for n in names}
    chosen = select_tables(found, tables)
    result: Fingerprint = {}
    for table in chosen:
        if not rows:
            result[table] = {}
            continue
        count = hi = lo = 0
        cursor = conn.execute(f"SELECT * FROM {pgtools.ident(table)}")
        while batch := cursor.fetchmany(_BATCH):
            for row in batch:
                digest = hashlib.md5(repr(tuple(row)).encode(), usedforsecurity=False).digest()
                hi += int.from_bytes(digest[:8], "big", signed=True)
                lo += int.from_bytes(digest[8:], "big", signed=True)
            count += len(batch)
        result[table] = {"rows": count, "checksum": combine(count, hi, lo)}
    result[SCHEMA_KEY] = _schema(conn, master, set(chosen), whole=tables is None)
    return result


def _schema(conn: sqlite3.Connection, master: list[Any], chosen: set[str], *,
            whole: bool) -> dict[str, dict[str, dict[str, Any]]]:
    kinds: dict[str, dict[str, dict[str, Any]]] = {}

    def put(kind: str, name: str, **attrs: Any) -> None:
        kinds.setdefault(kind, {})[name] = {k: short(v) for k, v in attrs.items()}

    views = {name for typ, name, _, _ in master if typ == "view"}
    for typ, name, table, sql in master:
        if typ == "table":
            if name not in chosen:
                continue
            put("table", name, sql=sql)
            for cid, col, ctype, notnull, default, pk, hidden in conn.execute(
                    f"PRAGMA table_xinfo({pgtools.ident(name)})").fetchall():
                put("column", f"{name}.{col}", position=int(cid) + 1, type=ctype, not_null=bool(notnull),
                    default=default, primary_key=int(pk), hidden=int(hidden))
        elif table in chosen or (whole and table in views):
            # an index or trigger follows its table; views (and their triggers) are database-wide
            put(typ, name, table=table, sql=sql)
    has_sequence = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone()
    if has_sequence:
        for name, seq in conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall():
            if name in chosen:
                put("sequence", name, last_value=seq)
    if whole:
        for pragma in ("user_version", "application_id"):
            put("pragma", pragma, value=conn.execute(f"PRAGMA {pragma}").fetchone()[0])
    return kinds
