"""Every revert proven: before a migration is applied, the schema it is about to change is
fingerprinted (schema only, no row is read) and stored with the tracking tables (`<table>_schema`),
committed before the migration's first statement runs; after its down file ran, inside the revert's
transaction, the schema is fingerprinted again and compared. Any difference (an index left behind,
a column type not restored, a sequence set back) fails the revert, which then rolls back.

Stored in the database, not only in a ledger: `tminus db migrate revert` from another host, or the
rollback of a run resumed after a crash, find it where the migration ran.

What is compared: every schema object (tables, columns, indexes, constraints, sequences' definition,
views, functions, triggers, grants, comments...), tminus's own tables left out. Not compared: rows
(a migration may change data; backups and `restore` steps answer for data), and a sequence's value
unless it went back: traffic between the apply and the revert moves sequences forward legitimately,
while a sequence set back (to before values already handed out) is what an undo must never do.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tminus.db.fingerprint import Difference, Fingerprint, differences, pg_fingerprint, sqlite_fingerprint
from tminus.db.migrations import store
from tminus.db.migrations.errors import RevertIncomplete

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from tminus.db.migrations.files import MigrationFile
    from tminus.db.migrations.migrator import Migrator

PROVEN = "proven"


class SchemaLeftover(RevertIncomplete):
    """A revert left the schema different from before the migration: `differences` names each."""

    def __init__(self, message: str, *, version: str, differences: list[Difference]):
        super().__init__(message, version=version)
        self.differences = differences


@dataclass
class Proof:
    """How a revert was checked: `status` is "proven" or "unproven: <why>"; the milliseconds spent
    fingerprinting; the differences found (empty when proven)."""

    status: str
    ms: float = 0.0
    differences: list[Difference] = field(default_factory=list)


class _Cursors:
    """psycopg 3's `conn.execute(sql, params)` over any DB-API connection (psycopg 2 has none)."""

    def __init__(self, raw: Any):
        self.raw = raw

    def execute(self, sql: str, params: Any = None) -> Any:
        cursor = self.raw.cursor()
        cursor.execute(sql, params)
        return cursor


def schema_of(conn: Connection) -> Fingerprint:
    """The schema as `conn` sees it, its own uncommitted changes included (call inside a transaction)."""
    raw = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite":
        return sqlite_fingerprint(raw, rows=False)  # type: ignore[arg-type]
    if conn.dialect.name == "postgresql":
        return pg_fingerprint(_Cursors(raw), rows=False)  # type: ignore[arg-type]
    raise NotImplementedError(conn.dialect.name)


def supported(m: Migrator) -> bool:
    return m.engine.dialect.name in ("sqlite", "postgresql")


def record_before(m: Migrator, mf: MigrationFile) -> float:
    """Store the schema as it is before `mf` is applied; the milliseconds it took."""
    if not supported(m):
        return 0.0
    start = time.perf_counter()
    with m._tx() as conn:
        fp = schema_of(conn)
        store.save_schema(conn, m.tables, mf.version, json.dumps(fp, sort_keys=True, default=str))
    ms = (time.perf_counter() - start) * 1000
    m.on_event(f"{mf.version}: schema recorded before applying ({ms:.0f} ms)")
    return ms


def check_after(m: Migrator, conn: Connection, mf: MigrationFile, *, transactional: bool) -> Proof:
    """Compare the schema after `mf`'s down file ran (on `conn`, before commit) with the one stored
    before `mf` was applied. Raises SchemaLeftover on any difference."""
    if not supported(m):
        return Proof(f"unproven: schema fingerprints are not taken on {m.engine.dialect.name}")
    saved = store.load_schema(conn, m.tables, mf.version)
    if saved is None:
        return Proof(f"unproven: no schema was recorded before {mf.version} was applied (applied by an older"
                     " tminus or by other means); only its verify script checked the revert")
    start = time.perf_counter()
    found = leftovers(json.loads(saved), schema_of(conn))
    ms = (time.perf_counter() - start) * 1000
    if found:
        assert mf.down is not None
        raise SchemaLeftover(
            f"revert of {mf.version} left the schema different from before {mf.version} was applied: "
            + "; ".join(describe(d, sqlite=m.sqlite) for d in found)
            + ("; the revert was rolled back" if transactional else f"; {mf.version} stays recorded as applied")
            + f". Make {mf.down.name} undo everything {mf.path.name} did",
            version=mf.version, differences=found,
        )
    return Proof(PROVEN, ms)


def leftovers(before: Fingerprint, after: Fingerprint) -> list[Difference]:
    """The schema differences a revert must not leave. A sequence's value counts only when it went
    back (traffic moves it forward between apply and revert); on SQLite, an AUTOINCREMENT counter
    that appeared for a table that was already there is traffic too."""
    tables = set(before.get("@schema", {}).get("table", {}))
    kept = []
    for d in differences(before, after):
        if d.kind == "sequence" and d.change == "new" and d.name in tables:
            continue
        if d.kind == "sequence" and d.change == "last_value" and not _went_back(d.before, d.after):
            continue
        if d.kind == "sequence" and d.change == "is_called" and not (
                d.before is True and d.after is False and not _went_back(*_values(after, before, d.name))):
            continue  # reset to an unused value: only a reset to a lower one (or the same) hands ids out again
        kept.append(d)
    return kept


def _values(after: Fingerprint, before: Fingerprint, name: str) -> tuple[Any, Any]:
    """The sequence's last_value after and before, the wrong way round on purpose: `_went_back`
    of them says whether it went *forward* (a RESTART WITH a higher value)."""
    def last(fp: Fingerprint) -> Any:
        return fp.get("@schema", {}).get("sequence", {}).get(name, {}).get("last_value")

    return last(after), last(before)


def _went_back(before: Any, after: Any) -> bool:
    try:
        return int(after) < int(before)
    except (TypeError, ValueError):
        return before != after


def describe(d: Difference, *, sqlite: bool = False) -> str:
    """One leftover, as the revert's failure names it."""
    if d.change == "new":
        return f"{d.kind} {d.name} (not there before)"
    if d.change == "missing":
        return f"{d.kind} {d.name} (there before, gone now)"
    if d.kind == "sequence" and d.change in ("last_value", "is_called"):
        # SQLite's counter is a table row, rolled back with the revert; a PostgreSQL sequence is not
        value = d.before if d.change == "last_value" else "<its last value>"
        fix = "" if sqlite else (" (sequences are not transactional: the rollback left it set back; set it forward"
                                 f" again: SELECT setval('{d.name}', {value}))")
        return f"sequence {d.name} set back: {d.change} {d.before} -> {d.after}{fix}"
    return str(d)
