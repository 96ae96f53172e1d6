"""Tables, schema versions and the engine. Imported only when a ledger is opened (SQLAlchemy is heavy).

tminus's schema is versioned in the `meta` table. MIGRATIONS[i] brings a ledger from version i to
i + 1; to change the schema, append a function, never edit a released one.
"""

from __future__ import annotations

import json
from collections.abc import Callable

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
    insert,
    inspect,
    select,
    text,
    update,
)

from tminus.errors import LedgerError, LedgerMissing
from tminus.events import APPROVAL_GIVEN, APPROVAL_REQUESTED

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


# v1 creates the tables as they were at version 1: a copy taken here, before v2 adds its columns
# to the live definitions below, so a new ledger goes through v1 then v2 like an old one.
_V1 = MetaData()
for _table in (runs, events, approvals, leases):
    _table.to_metadata(_V1)


def _v1_initial(conn: Connection) -> None:
    _V1.create_all(conn)


# --- version 2: fenced leases, approvals consumed by the request they answer ----------------------

# Each acquisition of a key gets a generation higher than any before it, even after the lease row
# was deleted (unlock, release): the counter lives here, one row per key, and is never deleted.
lease_generations = Table(
    "tminus_lease_generations", metadata,
    Column("key", String(400), primary_key=True),
    Column("generation", Integer, nullable=False),
)
# The columns v2 adds, as DDL (frozen, like every released migration) and as live definitions.
V2_COLUMNS: dict[str, list[tuple[str, str]]] = {
    leases.name: [("generation", "INTEGER DEFAULT 0 NOT NULL")],
    # request_seq: the seq of the approval.requested event this approval answered (NULL: unused).
    approvals.name: [("request_seq", "INTEGER"), ("consumed_at", "VARCHAR(40)")],
}
leases.append_column(Column("generation", Integer, nullable=False, server_default="0"))
approvals.append_column(Column("request_seq", Integer))
approvals.append_column(Column("consumed_at", String(40)))
# One approval per request; an approval row itself is taken by a compare-and-set on request_seq IS NULL.
_ONE_PER_REQUEST = Index("tminus_approvals_by_request", approvals.c.run_id, approvals.c.request_seq, unique=True)


def _v2_fencing(conn: Connection) -> None:
    lease_generations.create(conn)
    for table, columns in V2_COLUMNS.items():
        for name, ddl in columns:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))
    _ONE_PER_REQUEST.create(conn)
    _backfill_consumed(conn)


def _backfill_consumed(conn: Connection) -> None:
    """Under v1 an approval was used when an approval.given event named it: mark those as consumed,
    keyed by the request each answered (the latest approval.requested of its step before it)."""
    requested: dict[tuple[str, str | None], int] = {}
    given = select(events.c.run_id, events.c.seq, events.c.type, events.c.step_key, events.c.data, events.c.at).where(
        events.c.type.in_((APPROVAL_REQUESTED, APPROVAL_GIVEN))).order_by(events.c.run_id, events.c.seq)
    for row in conn.execute(given).all():
        if row.type == APPROVAL_REQUESTED:
            requested[(row.run_id, row.step_key)] = row.seq
            continue
        approval_id = json.loads(row.data).get("approval_id")
        request_seq = requested.pop((row.run_id, row.step_key), None)
        if approval_id is not None and request_seq is not None:
            conn.execute(update(approvals).where(approvals.c.id == int(approval_id), approvals.c.run_id == row.run_id,
                                                 approvals.c.request_seq.is_(None))
                         .values(request_seq=request_seq, consumed_at=row.at))


# --- version 3: the ledger-wide chain (docs/concepts.md, "What verify proves") --------------------

# lseq: the event's place in the ledger-wide chain; lhash: its link. The unique index makes two
# writers that both computed link n collide (the second retries), so no head row is needed: the
# chain's head is its highest lseq. Events written by an older tminus have neither; a linked event's
# hash covers its lseq, so unlinking one (to pass it off as older) breaks its run's chain.
V3_COLUMNS: dict[str, list[tuple[str, str]]] = {events.name: [("lseq", "INTEGER"), ("lhash", "VARCHAR(64)")]}
events.append_column(Column("lseq", Integer))
events.append_column(Column("lhash", String(64)))
_ONE_PER_LINK = Index("tminus_events_by_link", events.c.lseq, unique=True)


def _v3_ledger_chain(conn: Connection) -> None:
    for table, columns in V3_COLUMNS.items():
        for name, ddl in columns:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))
    _ONE_PER_LINK.create(conn)


# --- version 4: who gave an approval, as the OS says (`approved_by` is what they claimed) -----------

V4_COLUMNS: dict[str, list[tuple[str, str]]] = {approvals.name: [("identity", "VARCHAR(300)")]}
approvals.append_column(Column("identity", String(300)))


def _v4_approval_identity(conn: Connection) -> None:
    for table, columns in V4_COLUMNS.items():
        for name, ddl in columns:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))


# --- version 5: an approval names the request it was given for, and the first answer to it leads ----

# for_seq: the seq of the approval.requested pending when the answer was given (NULL: nothing was
# asked; such an answer answers nothing). lead: 1 on the first answer given for a request, NULL on any
# later one; the unique index makes two concurrent answers collide, so the second learns it lost.
V5_COLUMNS: dict[str, list[tuple[str, str]]] = {approvals.name: [("for_seq", "INTEGER"), ("lead", "INTEGER")]}
approvals.append_column(Column("for_seq", Integer))
approvals.append_column(Column("lead", Integer))
_ONE_LEAD_PER_REQUEST = Index("tminus_approvals_lead", approvals.c.run_id, approvals.c.for_seq, approvals.c.lead,
                              unique=True)


def _v5_approval_request(conn: Connection) -> None:
    for table, columns in V5_COLUMNS.items():
        for name, ddl in columns:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))
    _ONE_LEAD_PER_REQUEST.create(conn)
    # Consumed approvals were given for the request they answered; unused ones stay unbound (answer nothing).
    conn.execute(update(approvals).where(approvals.c.request_seq.is_not(None))
                 .values(for_seq=approvals.c.request_seq, lead=1))


MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_initial, _v2_fencing, _v3_ledger_chain, _v4_approval_identity, _v5_approval_request]
SCHEMA_VERSION = len(MIGRATIONS)


# --- versioning -----------------------------------------------------------------------------------


def read_meta(conn: Connection) -> dict[str, str]:
    return {k: v for k, v in conn.execute(select(meta.c.key, meta.c.value))}


def set_meta(conn: Connection, key: str, value: str) -> None:
    if conn.execute(update(meta).where(meta.c.key == key).values(value=value)).rowcount == 0:
        conn.execute(insert(meta).values(key=key, value=value))


def known_version(found: dict[str, str], shown_url: str) -> int:
    """The ledger's schema version; a LedgerError when a newer tminus wrote it."""
    version = int(found.get("schema_version", "0"))
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger at {shown_url} has schema version {version}, but this tminus only knows "
            f"versions up to {SCHEMA_VERSION}: upgrade tminus to read or write it"
        )
    return version


def migrate(engine: Engine, shown_url: str) -> dict[str, str]:
    """Bring the schema to SCHEMA_VERSION; refuse a ledger written by a newer tminus. Returns meta."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # two processes opening a new ledger at once
            conn.execute(text("SELECT pg_advisory_xact_lock(7355608)"))
        if not inspect(conn).has_table(meta.name):
            meta.create(conn)
        found = read_meta(conn)
        version = known_version(found, shown_url)
        for step in MIGRATIONS[version:]:
            step(conn)
        if version < SCHEMA_VERSION:
            set_meta(conn, "schema_version", str(SCHEMA_VERSION))
            found["schema_version"] = str(SCHEMA_VERSION)
        return found


def check_readable(conn: Connection, shown_url: str) -> dict[str, str]:
    """What a reader needs before it reads: tminus's tables, of a version this tminus knows. An older
    schema is read as it is (columns added since are reported empty); nothing is migrated. Returns meta."""
    if not inspect(conn).has_table(meta.name):
        raise LedgerMissing(
            f"no tminus ledger at {shown_url}: the database has no tminus tables, so nothing has been "
            "recorded there; the first `tminus run` or `tminus gate` with this ledger creates them",
            url=shown_url,
        )
    found = read_meta(conn)
    version = known_version(found, shown_url)
    if version < 1:
        raise LedgerError(f"the ledger at {shown_url} was never set up completely (schema version {version}): "
                          "a command that writes (`tminus gate`, `run`, `approve`, `unlock`) finishes it")
    return found


def missing_columns(version: int) -> set[str]:
    """'table.column' of the columns a ledger of `version` does not have yet."""
    added = [V2_COLUMNS, V3_COLUMNS, V4_COLUMNS, V5_COLUMNS][max(version - 1, 0):]  # V<n>_COLUMNS came with version n
    return {f"{table}.{name}" for columns_of in added for table, columns in columns_of.items()
            for name, _ddl in columns}


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "check_readable", "migrate", "missing_columns"]
