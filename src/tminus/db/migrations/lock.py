"""Mutual exclusion between migrators.

PostgreSQL: a session-level `pg_try_advisory_lock` on a dedicated autocommit connection, polled with
backoff up to `lock_wait`. Never the blocking `pg_advisory_lock`: a waiting session shows up as a
"virtual transaction" that `CREATE INDEX CONCURRENTLY` waits for, so a second migrator would
deadlock the first one's index build (flyway #1654). The lock belongs to the session, so it covers
the autocommit statements of no-transaction migrations too and vanishes if the process dies.

SQLite has no advisory locks and one writer at a time anyway: a single lock row in `<table>_lock`
is taken under `BEGIN IMMEDIATE` (the database write lock, so two takers cannot both see it free).
The row names its holder; a row left by a process that died on this host is taken over, one from
another host must be deleted by hand (the error says so).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tminus.db.migrations.errors import MigrationLockTimeout
from tminus.db.migrations.store import Tables, now
from tminus.processes import pid_alive

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine


def lock_key(table: str) -> int:
    """A stable positive 63-bit key per tracking table, so migrators of one table exclude each other
    and unrelated tminus tables in the same database do not."""
    digest = hashlib.sha256(f"tminus migrate:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


def _backoff(deadline: float, delay: float) -> float:
    time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
    return min(delay * 2, 1.0)


@contextmanager
def migration_lock(engine: Engine, tables: Tables, lock_wait: float, me: str) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine, lock_key(tables.main), lock_wait):
            yield
    elif engine.dialect.name == "sqlite":
        with _sqlite_lock(engine, tables, lock_wait, me):
            yield
    else:  # other databases: no exclusion available; the per-migration transaction is all we have
        yield


@contextmanager
def _pg_lock(engine: Engine, key: int, lock_wait: float) -> Iterator[None]:
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        deadline = time.monotonic() + lock_wait
        delay = 0.05
        while not conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({key})").scalar():
            if time.monotonic() >= deadline:
                holder = pg_lock_holder(conn, key)
                raise MigrationLockTimeout(
                    f"another migrator has held the migration lock for more than {lock_wait:g}s"
                    f" (held by {holder or 'an unknown session'}); wait for it to finish and run again,"
                    " or raise lock_wait / --lock-wait",
                    holder=holder,
                )
            delay = _backoff(deadline, delay)
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
    finally:
        conn.close()


def pg_lock_holder(conn: Connection, key: int) -> str | None:
    """Who holds advisory lock `key` in this database, from pg_locks and pg_stat_activity."""
    from sqlalchemy import text

    row = conn.execute(
        text(
            "SELECT a.pid, a.application_name, a.client_addr::text, a.backend_start::text"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND l.classid::text::bigint = :hi AND l.objid::text::bigint = :lo AND l.objsubid = 1"
        ),
        {"hi": key >> 32, "lo": key & 0xFFFF_FFFF},
    ).first()
    if row is None:
        return None
    pid, app, addr, started = row
    return f"pid {pid}, application '{app or '?'}', client {addr or 'local socket'}, connected since {started}"


@contextmanager
def _sqlite_lock(engine: Engine, tables: Tables, lock_wait: float, me: str) -> Iterator[None]:
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    host, pid = socket.gethostname(), os.getpid()
    deadline = time.monotonic() + lock_wait
    delay = 0.05
    holder: str | None = None
    with engine.connect() as conn:
        while True:
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                conn.exec_driver_sql(
                    f"CREATE TABLE IF NOT EXISTS {tables.lock} (id INTEGER PRIMARY KEY CHECK (id = 1),"
                    " holder TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, at TEXT NOT NULL)"
                )
                row = conn.exec_driver_sql(f"SELECT holder, host, pid, at FROM {tables.lock}").first()
                if row is None or (row[1] == host and not pid_alive(int(row[2]))):
                    conn.execute(
                        text(f"INSERT OR REPLACE INTO {tables.lock} VALUES (1, :h, :host, :pid, :at)"),
                        {"h": me, "host": host, "pid": pid, "at": now()},
                    )
                    conn.commit()
                    break
                holder = f"{row[0]} (host {row[1]}, pid {row[2]}, since {row[3]})"
                conn.rollback()
            except OperationalError:  # "database is locked": another writer is busy; try again
                conn.rollback()
            if time.monotonic() >= deadline:
                raise MigrationLockTimeout(
                    f"another migrator has held the migration lock for more than {lock_wait:g}s"
                    f" (held by {holder or 'a busy writer'}); wait for it, or if that process is gone delete"
                    f" the row: DELETE FROM {tables.lock}",
                    holder=holder,
                )
            delay = _backoff(deadline, delay)
        try:
            yield
        finally:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.execute(text(f"DELETE FROM {tables.lock} WHERE host = :host AND pid = :pid AND holder = :h"),
                         {"host": host, "pid": pid, "h": me})
            conn.commit()


