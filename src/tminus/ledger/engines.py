"""Ledger URLs and SQLAlchemy engines: a writer's (WAL, write lock taken up front) and a reader's
(never creates, never writes)."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from tminus.errors import LedgerError, LedgerMissing


def mask(url: str) -> str:
    """The URL with its password replaced by ***, safe for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def normalise_url(url: str) -> str:
    """postgres:// and postgresql:// mean psycopg 3, the driver tminus ships with."""
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def create(url: str, *, read_only: bool = False) -> Engine:
    """The engine for a ledger URL. `read_only`: it never creates the file or the database, and
    its connections cannot write (SQLite opened with mode=ro, PostgreSQL in read-only transactions)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise LedgerError(
            f"ledger URL {mask(url)!r} is not a database URL: expected sqlite:///path/to/ledger.db "
            "or postgresql+psycopg://user:password@host/database"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if read_only:
            return _sqlite_reader(url, parsed.database)
        return _sqlite_engine(url, parsed.database)
    if backend == "postgresql":
        options = {"options": "-c default_transaction_read_only=on"} if read_only else {}
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5, **options})
    raise LedgerError(f"ledger URL {mask(url)!r}: unsupported database '{backend}'; use sqlite or postgresql")


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(f"cannot create the folder for the ledger {database}: {exc}") from exc
    # timeout is SQLite's busy timeout: another process (`tminus approve`) may hold the write lock.
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy own transactions (pysqlite's implicit BEGIN only covers DML).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, and vice versa
        cur.execute("PRAGMA synchronous=NORMAL")  # durable at every commit in WAL, without an fsync each
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Take the write lock up front: a transaction that read first and writes later gets
        # SQLITE_BUSY at once instead of waiting. Readers are not blocked in WAL mode.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _sqlite_reader(url: str, database: str | None) -> Engine:
    """SQLite through a `file:...?mode=ro` URI: the main file is never written (no journal-mode
    switch, no checkpoint). In WAL mode SQLite still needs the -shm index beside it: it creates an
    empty -wal/-shm pair when none exists. Where it cannot (a read-only folder) and no writer is
    active (no -wal), the file is opened immutable."""
    if not database or database == ":memory:" or database.startswith("file:"):
        raise LedgerError(f"ledger URL {mask(url)!r}: a reader needs the path of a ledger file")
    path = Path(database).resolve()
    if not path.is_file():
        raise LedgerMissing(
            f"no ledger at {mask(url)}: the file {path} does not exist, so nothing has been recorded there; "
            "the first `tminus run` or `tminus gate` with this ledger creates it", url=mask(url),
        )
    uri = "file:" + quote(str(path)) + "?mode=ro"
    if not os.access(path.parent, os.W_OK) and not Path(f"{path}-wal").exists():
        uri += "&immutable=1"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False, isolation_level=None)

    engine = create_engine("sqlite+pysqlite://", creator=connect, poolclass=NullPool)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")  # a deferred transaction: one consistent snapshot, no lock taken

    return engine


__all__ = ["create", "mask", "normalise_url"]
