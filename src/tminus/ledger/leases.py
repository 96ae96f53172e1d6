"""The run lock: one active run per runbook and environment, held as a row with a heartbeat.

Taking a lease is one INSERT on the primary key (atomic on SQLite and PostgreSQL alike). A holder
that stopped heartbeating or whose process died is *stale*, but its lease is never taken over
silently: whatever it was doing may be half done, so a person decides (`tminus unlock`), except
that a run may take back its own lease - that is how resume works.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, and_, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from tminus.errors import LockHeld
from tminus.ledger import schema as s
from tminus.ledger.records import LeaseRecord, iso_from_epoch

if TYPE_CHECKING:
    from tminus.ledger.store import Ledger

_FIRST_POLL = 0.05
_MAX_POLL = 1.0


class Lease:
    """A held lease. Keep it alive with start_heartbeat(); give it back with release()."""

    def __init__(self, ledger: Ledger, record: LeaseRecord, token: str) -> None:
        self.key = record.key
        self.record = record
        self.lost = threading.Event()  # set when a renewal finds the lease broken or taken
        self._ledger = ledger
        self._token = token
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start_heartbeat(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, name=f"tminus-lease {self.key}", daemon=True)
            self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still ours (it may have been broken)."""
        self.stop_heartbeat()
        with self._ledger._tx() as conn:
            conn.execute(delete(s.leases).where(self._ours()))
        if self in self._ledger._leases:
            self._ledger._leases.remove(self)

    def _ours(self) -> ColumnElement[bool]:
        return and_(s.leases.c.key == self.key, s.leases.c.token == self._token)

    def _beat(self) -> None:
        # Its own connection: renewals must not wait behind (or interleave with) the engine's appends.
        interval = max(self.record.ttl / 3, 0.05)
        conn: Connection | None = None
        try:
            while not self._stop.wait(interval):
                try:
                    if conn is None:
                        conn = self._ledger._engine.connect()
                    with conn.begin():
                        stmt = update(s.leases).where(self._ours()).values(heartbeat_at=time.time())
                        renewed = conn.execute(stmt).rowcount
                except SQLAlchemyError:
                    # A passing outage: try again next beat. If it lasts longer than the ttl, others
                    # see the lease as stale, but still cannot take it without `tminus unlock`.
                    if conn is not None:
                        conn.close()
                    conn = None
                    continue
                if not renewed:
                    self.lost.set()
                    return
        finally:
            if conn is not None:
                conn.close()


def read(conn: Connection, key: str) -> LeaseRecord | None:
    row = conn.execute(select(s.leases).where(s.leases.c.key == key)).first()
    return None if row is None else _record(row._asdict())


def _record(row: Mapping[str, Any]) -> LeaseRecord:
    return LeaseRecord(
        key=row["key"], run_id=row["run_id"], operator=row["operator"], host=row["host"], pid=int(row["pid"]),
        acquired_at=iso_from_epoch(row["acquired_at"]), heartbeat_at=iso_from_epoch(row["heartbeat_at"]),
        ttl=float(row["ttl"]),
    )


def acquire(
    ledger: Ledger, key: str, *, run_id: str, operator: str, host: str, pid: int, ttl: float, wait: float
) -> Lease:
    """Take the lease, waiting up to `wait` seconds for a live holder to let go."""
    deadline = time.monotonic() + wait
    delay = _FIRST_POLL
    while True:
        token = uuid.uuid4().hex
        now = time.time()
        row: dict[str, Any] = dict(key=key, run_id=run_id, operator=operator, host=host, pid=pid, acquired_at=now,
                   heartbeat_at=now, ttl=ttl, token=token)
        taken, holder = _try_take(ledger, row)
        if taken:
            return Lease(ledger, _record(row), token)
        if holder is None:  # released between our insert and our read: just try again
            continue
        stale = holder.stale_reason()
        if stale is not None:  # waiting will not bring a dead holder back
            raise _held(key, holder, stale)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _held(key, holder, None, waited=wait)
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, _MAX_POLL)


def _try_take(ledger: Ledger, row: dict[str, Any]) -> tuple[bool, LeaseRecord | None]:
    """(True, None) when the lease is now ours, else (False, its holder if there still is one)."""
    insert = pg_insert if ledger._engine.dialect.name == "postgresql" else sqlite_insert
    with ledger._tx() as conn:
        if conn.execute(insert(s.leases).values(**row).on_conflict_do_nothing()).rowcount == 1:
            return True, None
        current = conn.execute(select(s.leases).where(s.leases.c.key == row["key"])).first()
        if current is None:
            return False, None
        holder = _record(current._asdict())
        same_run = holder.run_id == row["run_id"]
        this_process = holder.host == row["host"] and holder.pid == row["pid"]
        if same_run and (this_process or holder.is_stale()):
            # Compare-and-set on the old token: of two resumes racing, one wins.
            taken = conn.execute(
                update(s.leases)
                .where(and_(s.leases.c.key == row["key"], s.leases.c.token == current.token))
                .values(**row)
            ).rowcount
            if taken:
                return True, None
        return False, holder


def _held(key: str, holder: LeaseRecord, stale: str | None, waited: float = 0.0) -> LockHeld:
    who = (f"{key} is locked by run {holder.run_id}: {holder.operator} on {holder.host} "
           f"(pid {holder.pid}) since {holder.acquired_at}")
    if stale is None:
        waited_text = f" (waited {waited:g}s)" if waited > 0 else ""
        message = (f"{who}{waited_text}.\n    hint: wait for that run to finish, or pass "
                   "`--lock-wait 5m` to wait for the lock")
    else:
        runbook, _, env = key.rpartition("@")
        message = (
            f"{who}, but the lease is stale: the holder is gone ({stale}). "
            "tminus does not take over a lease silently, since that run may have stopped half way.\n"
            f"    hint: `tminus resume {holder.run_id}` continues it; "
            f"or, once you are sure nothing still runs, `tminus unlock {runbook or key} -e {env or '?'} "
            '--reason "..."` breaks the lease'
        )
    return LockHeld(message, holder=holder, stale=stale is not None)
