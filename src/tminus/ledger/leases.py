"""The run lock: one active run per runbook and environment, held as a row with a heartbeat.

Taking a lease is one INSERT on the primary key (atomic on SQLite and PostgreSQL alike). A holder
that stopped heartbeating or whose process died is *stale*, but its lease is never taken over
silently: whatever it was doing may be half done, so a person decides (`tminus unlock`), except
that a run may take back its own lease - that is how resume works - and that a lease nobody will
ever release is *reclaimed* by the next acquirer (`Lease.reclaimed`, noted by the caller): the
holder's run has ended (a crash between its final status and the release) or, with the holder gone,
was never recorded (a crash between the lease and the run row). A run that can still be resumed
keeps its lease.

Each acquisition gets a generation higher than any before it for that key (a durable counter, kept
after the lease row is gone). A run writer bound to a lease checks its token and generation in the
transaction of every write (`check_fence`): a holder whose lease was broken writes nothing more.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from tminus.errors import LeaseLost, LockHeld
from tminus.ledger.database import Connection, ConnectionSource
from tminus.ledger.records import RESUMABLE, Fence, LeaseRecord, Reclaimed, iso_from_epoch
from tminus.ledger.sql import LEASE_COLUMNS

# Called in the transaction that reclaims a lease, to note it there (the store appends to the ended run).
OnReclaim = Callable[[Connection, Reclaimed], None]

_TOKEN, _GENERATION = LEASE_COLUMNS.index("token"), LEASE_COLUMNS.index("generation")
_FIRST_POLL = 0.05
_MAX_POLL = 1.0


class Lease:
    """A held lease. Keep it alive with start_heartbeat(); give it back with release()."""

    def __init__(self, source: ConnectionSource, record: LeaseRecord, token: str,
                 reclaimed: Reclaimed | None = None) -> None:
        self.key = record.key
        self.record = record
        self.reclaimed = reclaimed  # the lease of an ended or unrecorded run this acquisition took over
        self.lost = threading.Event()  # set when a renewal finds the lease broken or taken
        self._source = source
        self._token = token
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def fence(self) -> Fence:
        """What a run writer bound to this lease checks before each write."""
        return Fence(self.key, self._token, self.record.generation)

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
        with self._source.transaction() as conn:
            conn.execute(conn.sql.DELETE_OUR_LEASE, (self.key, self._token))

    def _beat(self) -> None:
        # Its own connection: renewals must not wait behind (or interleave with) the engine's appends.
        interval = max(self.record.ttl / 3, 0.05)
        conn: Connection | None = None
        try:
            while not self._stop.wait(interval):
                try:
                    if conn is None:
                        conn = self._source.connect()
                    with conn.transaction():
                        renewed = conn.execute(conn.sql.HEARTBEAT, (time.time(), self.key, self._token)).rowcount
                except self._source.error:
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
    row = conn.first(conn.sql.GET_LEASE, (key,))
    return None if row is None else lease_record(dict(zip(LEASE_COLUMNS, row, strict=True)))


def lease_record(row: Mapping[str, Any]) -> LeaseRecord:
    return LeaseRecord(
        key=row["key"], run_id=row["run_id"], operator=row["operator"], host=row["host"], pid=int(row["pid"]),
        acquired_at=iso_from_epoch(row["acquired_at"]), heartbeat_at=iso_from_epoch(row["heartbeat_at"]),
        ttl=float(row["ttl"]), generation=int(row.get("generation") or 0),
    )


def check_fence(conn: Connection, fence: Fence, run_id: str) -> None:
    """Raise LeaseLost unless the lease is still this acquisition. On PostgreSQL the row is share-locked
    until the caller's transaction ends: an unlock waits for the write in flight, never cuts it."""
    row = conn.first(conn.sql.FENCE_LEASE, (fence.key,))
    if row is not None and row[_TOKEN] == fence.token and int(row[_GENERATION]) == fence.generation:
        return
    holder = None if row is None else lease_record(dict(zip(LEASE_COLUMNS, row, strict=True)))
    now = "nobody holds it now" if holder is None else (
        f"run {holder.run_id} holds it now (generation {holder.generation}, {holder.operator} on {holder.host})")
    raise LeaseLost(
        f"run {run_id} no longer holds the lease on {fence.key} (its generation {fence.generation}): it was broken "
        f"with `tminus unlock`; {now}. Nothing more was recorded for this run; `tminus resume {run_id}` "
        "continues it once no other run acts on this environment",
        key=fence.key, generation=fence.generation, holder=holder,
    )


def remove(conn: Connection, key: str) -> LeaseRecord | None:
    """Delete the lease on `key` (`tminus unlock`): the holder found, or None when there was none
    or another unlock deleted it first."""
    holder = read(conn, key)
    if holder is None or conn.execute(conn.sql.DELETE_LEASE, (key,)).rowcount == 0:
        return None
    return holder


def acquire(
    source: ConnectionSource, key: str, *, run_id: str, operator: str, host: str, pid: int, ttl: float,
    wait: float, on_reclaim: OnReclaim | None = None,
) -> Lease:
    """Take the lease, waiting up to `wait` seconds for a live holder to let go; a lease of an ended
    or unrecorded run is reclaimed at once (`on_reclaim` notes it in the same transaction)."""
    deadline = time.monotonic() + wait
    delay = _FIRST_POLL
    while True:
        token = uuid.uuid4().hex
        now = time.time()
        row: dict[str, Any] = dict(key=key, run_id=run_id, operator=operator, host=host, pid=pid, acquired_at=now,
                   heartbeat_at=now, ttl=ttl, token=token)
        taken, holder, reclaimed = _try_take(source, row, on_reclaim)
        if taken is not None:
            return Lease(source, taken, token, reclaimed)
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


Taken = tuple[LeaseRecord | None, LeaseRecord | None, Reclaimed | None]


def _try_take(source: ConnectionSource, row: dict[str, Any], on_reclaim: OnReclaim | None) -> Taken:
    """(the lease, None, what it reclaimed) when it is now ours, else (None, its holder if there still
    is one, None)."""
    with source.transaction() as conn:
        values = (row["key"], row["run_id"], row["operator"], row["host"], row["pid"], row["acquired_at"],
                  row["heartbeat_at"], row["ttl"], row["token"])
        if conn.execute(conn.sql.INSERT_LEASE, values).rowcount == 1:
            return _stamp(conn, row), None, None
        current = conn.first(conn.sql.GET_LEASE, (row["key"],))
        if current is None:
            return None, None, None
        holder = lease_record(dict(zip(LEASE_COLUMNS, current, strict=True)))
        current_token = current[LEASE_COLUMNS.index("token")]
        same_run = holder.run_id == row["run_id"]
        this_process = holder.host == row["host"] and holder.pid == row["pid"]
        reclaim = None if same_run else _abandoned(conn, holder, row["run_id"])
        if (same_run and (this_process or holder.is_stale())) or reclaim is not None:
            # Compare-and-set on the old token: of two resumes (or reclaimers) racing, one wins.
            taken = conn.execute(conn.sql.RETAKE_LEASE, (*values[1:], row["key"], current_token)).rowcount
            if taken:
                stamped = _stamp(conn, row)
                if reclaim is not None and on_reclaim is not None:
                    on_reclaim(conn, reclaim)
                return stamped, None, reclaim
        return None, holder, None


def _abandoned(conn: Connection, holder: LeaseRecord, taker: str) -> Reclaimed | None:
    """The holder's lease as one nobody will release, or None while its run may still act or resume.
    A run that ended writes nothing more (its status and run.finished landed together; a late write
    of its process would be fenced). A run with no row may be a live acquirer about to record it, so
    only a gone holder's is abandoned."""
    found = conn.first(conn.sql.RUN_STATUS, (holder.run_id,))
    status = None if found is None else found[0]
    if status is not None:
        if status in RESUMABLE:
            return None
        return Reclaimed(holder, str(status), f"run {holder.run_id} had ended ({status}) without releasing it", taker)
    gone = holder.stale_reason()
    if gone is None:
        return None
    return Reclaimed(holder, None, f"run {holder.run_id} was never recorded and its holder is gone ({gone})", taker)


def _stamp(conn: Connection, row: dict[str, Any]) -> LeaseRecord:
    """Give the acquisition just written (same transaction) the key's next generation."""
    conn.execute(conn.sql.BUMP_GENERATION, (row["key"],))
    generation = int(conn.first(conn.sql.GET_GENERATION, (row["key"],))[0])
    conn.execute(conn.sql.SET_GENERATION, (generation, row["key"], row["token"]))
    return lease_record({**row, "generation": generation})


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
