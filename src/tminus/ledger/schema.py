"""Schema versions and their migrations. Imported only when a ledger is opened.

tminus's schema is versioned in the `meta` table. MIGRATIONS[i] brings a ledger from version i to
i + 1; to change the schema, append a function, never edit a released one.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from tminus.errors import LedgerError, LedgerMissing
from tminus.events import APPROVAL_GIVEN, APPROVAL_REQUESTED
from tminus.ledger.database import Connection

# The tables themselves (v1's as released, and each version's additions) are DDL text in sql.py.


def _v1_initial(conn: Connection) -> None:
    for ddl in conn.sql.v1_tables():
        conn.execute(ddl)


# --- version 2: fenced leases, approvals consumed by the request they answer ----------------------

# Each acquisition of a key gets a generation higher than any before it, even after the lease row
# was deleted (unlock, release): the counter lives in tminus_lease_generations, one row per key,
# never deleted. The columns v2 adds, as DDL (frozen, like every released migration):
V2_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "tminus_leases": [("generation", "INTEGER DEFAULT 0 NOT NULL")],
    # request_seq: the seq of the approval.requested event this approval answered (NULL: unused).
    "tminus_approvals": [("request_seq", "INTEGER"), ("consumed_at", "VARCHAR(40)")],
}


def _add_columns(conn: Connection, added: dict[str, list[tuple[str, str]]]) -> None:
    for table, columns in added.items():
        for name, ddl in columns:
            conn.execute(conn.sql.ADD_COLUMN.format(table=table, name=name, ddl=ddl))


def _v2_fencing(conn: Connection) -> None:
    conn.execute(conn.sql.CREATE_LEASE_GENERATIONS)
    _add_columns(conn, V2_COLUMNS)
    # One approval per request; an approval row itself is taken by a compare-and-set on request_seq IS NULL.
    conn.execute(conn.sql.ONE_PER_REQUEST)
    _backfill_consumed(conn)


def _backfill_consumed(conn: Connection) -> None:
    """Under v1 an approval was used when an approval.given event named it: mark those as consumed,
    keyed by the request each answered (the latest approval.requested of its step before it)."""
    requested: dict[tuple[str, str | None], int] = {}
    for run_id, seq, type_, step_key, data, at in conn.execute(
            conn.sql.V2_GIVEN, (APPROVAL_REQUESTED, APPROVAL_GIVEN)).fetchall():
        if type_ == APPROVAL_REQUESTED:
            requested[(run_id, step_key)] = seq
            continue
        approval_id = json.loads(data).get("approval_id")
        request_seq = requested.pop((run_id, step_key), None)
        if approval_id is not None and request_seq is not None:
            conn.execute(conn.sql.TAKE_APPROVAL, (request_seq, at, int(approval_id), run_id))


# --- version 3: the ledger-wide chain (docs/concepts.md, "What verify proves") --------------------

# lseq: the event's place in the ledger-wide chain; lhash: its link. The unique index makes two
# writers that both computed link n collide (the second retries), so no head row is needed: the
# chain's head is its highest lseq. Events written by an older tminus have neither; a linked event's
# hash covers its lseq, so unlinking one (to pass it off as older) breaks its run's chain.
V3_COLUMNS: dict[str, list[tuple[str, str]]] = {"tminus_events": [("lseq", "INTEGER"), ("lhash", "VARCHAR(64)")]}


def _v3_ledger_chain(conn: Connection) -> None:
    _add_columns(conn, V3_COLUMNS)
    conn.execute(conn.sql.ONE_PER_LINK)


# --- version 4: who gave an approval, as the OS says (`approved_by` is what they claimed) -----------

V4_COLUMNS: dict[str, list[tuple[str, str]]] = {"tminus_approvals": [("identity", "VARCHAR(300)")]}


def _v4_approval_identity(conn: Connection) -> None:
    _add_columns(conn, V4_COLUMNS)


# --- version 5: an approval names the request it was given for, and the first answer to it leads ----

# for_seq: the seq of the approval.requested pending when the answer was given (NULL: nothing was
# asked; such an answer answers nothing). lead: 1 on the first answer given for a request, NULL on any
# later one; the unique index makes two concurrent answers collide, so the second learns it lost.
V5_COLUMNS: dict[str, list[tuple[str, str]]] = {"tminus_approvals": [("for_seq", "INTEGER"), ("lead", "INTEGER")]}


def _v5_approval_request(conn: Connection) -> None:
    _add_columns(conn, V5_COLUMNS)
    conn.execute(conn.sql.ONE_LEAD_PER_REQUEST)
    # Consumed approvals were given for the request they answered; unused ones stay unbound (answer nothing).
    conn.execute(conn.sql.V5_LEADS)


MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_initial, _v2_fencing, _v3_ledger_chain, _v4_approval_identity, _v5_approval_request]
SCHEMA_VERSION = len(MIGRATIONS)


# --- versioning -----------------------------------------------------------------------------------


def read_meta(conn: Connection) -> dict[str, str]:
    return {str(k): str(v) for k, v in conn.execute(conn.sql.READ_META).fetchall()}


def set_meta(conn: Connection, key: str, value: str) -> None:
    if conn.execute(conn.sql.UPDATE_META, (value, key)).rowcount == 0:
        conn.execute(conn.sql.INSERT_META, (key, value))


def has_meta(conn: Connection) -> bool:
    row = conn.first(conn.sql.HAS_META)
    return row is not None and bool(row[0])


def known_version(found: dict[str, str], shown_url: str) -> int:
    """The ledger's schema version; a LedgerError when a newer tminus wrote it."""
    version = int(found.get("schema_version", "0"))
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger at {shown_url} has schema version {version}, but this tminus only knows "
            f"versions up to {SCHEMA_VERSION}: upgrade tminus to read or write it"
        )
    return version


def migrate(conn: Connection, shown_url: str) -> dict[str, str]:
    """Bring the schema to SCHEMA_VERSION (in the caller's transaction); refuse a ledger written by a
    newer tminus. Returns meta."""
    if conn.sql.SCHEMA_LOCK is not None:  # two processes opening a new ledger at once
        conn.execute(conn.sql.SCHEMA_LOCK)
    if not has_meta(conn):
        conn.execute(conn.sql.CREATE_META)
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
    if not has_meta(conn):
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


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "check_readable", "has_meta", "migrate", "missing_columns", "read_meta",
           "set_meta"]
