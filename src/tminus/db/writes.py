"""What a restore would discard: the rows that differ between the live database and the backup.

A restore puts the database back as it was at the backup, so everything written since is lost:
the run's own changes (intended) and the application's writes made while the run went on (a
note added through the old release during the migration: silent data loss). This module names
what differs, table by table, so the restore can stop before discarding it.

Row level, against the backup itself (no write counters: PostgreSQL's statistics are flushed
asynchronously and count the run's own writes too; SQLite's change counter says only "something").
For each table the backup has, the columns the backup has and the live table still has are
compared; a migration that adds a column (with a default) therefore shows no difference, while a
row added, changed or deleted does. With a primary key rows are matched by it (added, changed,
removed); without one they are compared as multisets (added = only live, removed = only backup).
Tables the backup lacks (created since) are listed with their row count: the restore drops them.

PostgreSQL compares each side's per-row md5 on the server (rows never travel, only their hashes);
memory is one hash per row of a table that differs. SQLite compares rows in Python.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tminus.db import pgtools

if TYPE_CHECKING:
    import psycopg

EXAMPLES = 5  # primary keys named per table and kind of change


@dataclass
class TableLoss:
    table: str
    added: int = 0  # rows now that the backup lacks
    changed: int = 0  # rows whose compared columns differ (matched by primary key)
    removed: int = 0  # rows the backup has that are gone now
    new_table: bool = False  # created after the backup: the restore drops it with its rows
    examples: list[str] = field(default_factory=list)  # some primary keys of the rows concerned

    @property
    def rows(self) -> int:
        return self.added + self.changed + self.removed

    def describe(self) -> str:
        if self.new_table:
            return f"{self.table}: new since the backup, {self.added} rows (the restore drops the table)"
        parts = [f"{n} {what}" for n, what in ((self.added, "added"), (self.changed, "changed"),
                                                (self.removed, "removed")) if n]
        keys = f" (keys {', '.join(self.examples)})" if self.examples else ""
        return f"{self.table}: {', '.join(parts)}{keys}"

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "added": self.added, "changed": self.changed, "removed": self.removed,
                "new_table": self.new_table, "examples": self.examples}


def summary(losses: list[TableLoss]) -> str:
    """One line: 'notes +1 ~0 -0, audit (new) 3 rows'."""
    return "; ".join(t.describe() for t in losses)


# --- the comparison, engine-neutral ----------------------------------------------------------

Rows = Iterable[tuple[Any, Any]]  # (key or None, row value) per row


def _diff(table: str, live: Rows, backup: Rows, keyed: bool) -> TableLoss | None:
    loss = TableLoss(table)
    if keyed:
        now = dict(live)
        then = dict(backup)
        added = [k for k in now if k not in then]
        removed = [k for k in then if k not in now]
        changed = [k for k in now if k in then and now[k] != then[k]]
        loss.added, loss.changed, loss.removed = len(added), len(changed), len(removed)
        loss.examples = [str(k) for k in (added + changed + removed)[:EXAMPLES]]
    else:
        now_c = Counter(v for _, v in live)
        then_c = Counter(v for _, v in backup)
        loss.added = sum((now_c - then_c).values())
        loss.removed = sum((then_c - now_c).values())
    return loss if loss.rows else None


# --- SQLite ----------------------------------------------------------------------------------


def sqlite_losses(live: Path, backup: Path) -> list[TableLoss]:
    """What restoring `backup` over `live` would discard (both SQLite files, read only)."""
    if not live.exists():
        return []
    conn = sqlite3.connect(f"file:{live}?mode=ro", uri=True)
    try:
        conn.execute("ATTACH DATABASE ? AS bk", (f"file:{backup}?mode=ro",))
        conn.execute("BEGIN")  # one read transaction over both: a consistent picture
        then_tables = _sqlite_tables(conn, "bk")
        now_tables = _sqlite_tables(conn, "main")
        losses: list[TableLoss] = []
        for table in sorted(now_tables):
            if table not in then_tables:
                count = conn.execute(f"SELECT count(*) FROM main.{pgtools.ident(table)}").fetchone()[0]
                if count:
                    losses.append(TableLoss(table, added=int(count), new_table=True))
                continue
            cols = [c for c in then_tables[table][0] if c in now_tables[table][0]]
            pk = [c for c in then_tables[table][1] if c in cols]
            keyed = bool(pk) and pk == [c for c in now_tables[table][1] if c in cols]
            loss = _diff(table, _sqlite_rows(conn, "main", table, cols, pk if keyed else []),
                         _sqlite_rows(conn, "bk", table, cols, pk if keyed else []), keyed)
            if loss:
                losses.append(loss)
        conn.execute("ROLLBACK")
        return losses
    finally:
        conn.close()


def _sqlite_tables(conn: sqlite3.Connection, schema: str) -> dict[str, tuple[list[str], list[str]]]:
    """table -> (columns, primary key columns in key order)."""
    names = [r[0] for r in conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")]
    out: dict[str, tuple[list[str], list[str]]] = {}
    for name in names:
        info = conn.execute(f"PRAGMA {schema}.table_info({pgtools.ident(name)})").fetchall()
        out[name] = ([r[1] for r in info], [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]])
    return out


def _sqlite_rows(conn: sqlite3.Connection, schema: str, table: str, cols: list[str], pk: list[str]) -> Rows:
    select = ", ".join(pgtools.ident(c) for c in cols) or "NULL"
    for row in conn.execute(f"SELECT {select} FROM {schema}.{pgtools.ident(table)}"):
        values = dict(zip(cols, row, strict=True))
        key = tuple(values[c] for c in pk) if pk else None
        yield (key[0] if key and len(key) == 1 else key), tuple(row)


# --- PostgreSQL ------------------------------------------------------------------------------


def pg_losses(live: psycopg.Connection[Any], backup: psycopg.Connection[Any]) -> list[TableLoss]:
    """What replacing the database behind `live` by the one behind `backup` (the backup restored
    into a scratch database) would discard. Each connection is read in one snapshot."""
    for conn in (live, backup):
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        then_tables = _pg_tables(backup)
        now_tables = _pg_tables(live)
        losses: list[TableLoss] = []
        for table, (schema, name, now_cols, now_pk) in sorted(now_tables.items()):
            rel = f"{pgtools.ident(schema)}.{pgtools.ident(name)}"
            if table not in then_tables:
                count = live.execute(f"SELECT count(*) FROM {rel}").fetchone()[0]  # type: ignore[index]
                if count:
                    losses.append(TableLoss(table, added=int(count), new_table=True))
                continue
            then_cols, then_pk = then_tables[table][2], then_tables[table][3]
            cols = [c for c in then_cols if c in now_cols]
            pk = [c for c in then_pk if c in cols]
            keyed = bool(pk) and pk == [c for c in now_pk if c in cols]
            if _pg_digest(live, rel, cols) == _pg_digest(backup, rel, cols):
                continue  # the common case: nothing written; no per-row hashes fetched
            loss = _diff(table, _pg_rows(live, rel, cols, pk if keyed else []),
                         _pg_rows(backup, rel, cols, pk if keyed else []), keyed)
            if loss:
                losses.append(loss)
        return losses
    finally:
        for conn in (live, backup):
            conn.execute("ROLLBACK")


def _pg_tables(conn: psycopg.Connection[Any]) -> dict[str, tuple[str, str, list[str], list[str]]]:
    """table (public unqualified) -> (schema, name, columns, primary key columns)."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname,"
        " array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0"
        "       AND NOT a.attisdropped ORDER BY a.attnum),"
        " coalesce(array(SELECT a.attname::text FROM pg_index i"
        "       CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
        "       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum"
        "       WHERE i.indrelid = c.oid AND i.indisprimary ORDER BY k.ord), '{}')"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'"
    ).fetchall()
    return {(name if schema == "public" else f"{schema}.{name}"): (schema, name, list(cols), list(pk))
            for schema, name, cols, pk in rows}


def _row_expr(cols: list[str]) -> str:
    return "md5(ROW(" + (", ".join(f"t.{pgtools.ident(c)}" for c in cols) or "NULL") + ")::text)"


def _pg_digest(conn: psycopg.Connection[Any], rel: str, cols: list[str]) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT count(*), coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0),"
        " coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)"
        f" FROM (SELECT {_row_expr(cols)} AS h FROM {rel} t) s").fetchone()
    return tuple(row or ())


def _pg_rows(conn: psycopg.Connection[Any], rel: str, cols: list[str], pk: list[str]) -> Rows:
    key = ("ROW(" + ", ".join(f"t.{pgtools.ident(c)}" for c in pk) + ")::text") if pk else "NULL"
    if len(pk) == 1:
        key = f"t.{pgtools.ident(pk[0])}::text"
    yield from ((k, h) for k, h in conn.execute(f"SELECT {key}, {_row_expr(cols)} FROM {rel} t"))
