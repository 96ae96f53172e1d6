"""Tables, schema versions and the engine. Imported only when a ledger is opened (SQLAlchemy is heavy).

tminus's schema is versioned in the `meta` table. MIGRATIONS[i] brings a ledger from version i to
i + 1; to change the schema, append a function, never edit a released one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tminus.errors import LedgerError

metadata = MetaData()

meta = Table(
    "tminus_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "tminus_runs", metadata,
    Column("id", String(64), primary_key=True),
    Column("runbook_name", String(200), nullable=False),
    Column("runbook_path", Text, nullable=False),
    Column("content_hash", String(128), nullable=False),
    Column("runbook_text", Text, nullable=False),
    Column("environment", String(100), nullable=False),
    Column("operator", String(200), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("parent_run_id", String(64)),
    Column("status", String(20), nullable=False),
    Column("exit_code", Integer),
    Column("reason", Text),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),
    Column("event_count", Integer, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Index("tminus_runs_by_runbook", "runbook_name", "environment", "started_at"),
    Index("tminus_runs_by_start", "started_at"),
)

# Data is TEXT, not JSON/JSONB: JSONB reorders keys and normalises numbers, and the hash covers
# the exact canonical text.
events = Table(
    "tminus_events", metadata,
    Column("run_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("type", String(40), nullable=False),
    Column("step_key", String(300)),
    Column("at", String(40), nullable=False),
    Column("data", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    PrimaryKeyConstraint("run_id", "seq"),
)

approvals = Table(
    "tminus_approvals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("step_key", String(300)),
    Column("approved", Boolean, nullable=False),
    Column("approved_by", String(200), nullable=False),
    Column("host", String(255), nullable=False),
    Column("reason", Text),
    Column("at", String(40), nullable=False),
)

# Times are epoch seconds so staleness is arithmetic; `token` identifies one acquisition, so a
# heartbeat or release never touches a lease that was broken and taken again meanwhile.
leases = Table(
    "tminus_leases", metadata,
    Column("key", String(400), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("operator", String(200), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("ttl", Float, nullable=False),
    Column("token", String(64), nullable=False),
)


def _v1_initial(conn: Connection) -> None:
    metadata.create_all(conn, tables=[runs, events, approvals, leases])


MIGRATIONS: list[Callable[[Connection], None]] = [_v1_initial]
SCHEMA_VERSION = len(MIGRATIONS)


# --- URLs and engines ----------------------------------------------------------------------------


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


def create(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise LedgerError(
            f"ledger URL {mask(url)!r} is not a database URL: expected sqlite:///path/to/ledger.db "
            "or postgresql+psycopg://user:password@host/database"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, parsed.database)
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
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


# --- versioning -----------------------------------------------------------------------------------


def read_meta(conn: Connection) -> dict[str, str]:
    return {k: v for k, v in conn.execute(select(meta.c.key, meta.c.value))}


def set_meta(conn: Connection, key: str, value: str) -> None:
    if conn.execute(update(meta).where(meta.c.key == key).values(value=value)).rowcount == 0:
        conn.execute(insert(meta).values(key=key, value=value))


def migrate(engine: Engine, shown_url: str) -> dict[str, str]:
    """Bring the schema to SCHEMA_VERSION; refuse a ledger written by a newer tminus. Returns meta."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # two processes opening a new ledger at once
            conn.execute(text("SELECT pg_advisory_xact_lock(7355608)"))
        if not inspect(conn).has_table(meta.name):
            meta.create(conn)
        found = read_meta(conn)
        version = int(found.get("schema_version", "0"))
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"the ledger at {shown_url} has schema version {version}, but this tminus only knows "
                f"versions up to {SCHEMA_VERSION}: upgrade tminus to read or write it"
            )
        for step in MIGRATIONS[version:]:
            step(conn)
        if version < SCHEMA_VERSION:
            set_meta(conn, "schema_version", str(SCHEMA_VERSION))
            found["schema_version"] = str(SCHEMA_VERSION)
        return found


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "create", "mask", "migrate", "normalise_url"]
