"""The ledger's write side (implements interfaces.Ledger): runs, their writers, approvals, leases.

Opening it creates the tables and migrates them (`open_ledger`); `open_reader` opens the read side
alone, which never writes.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from tminus.errors import LedgerError
from tminus.events import APPROVAL_GIVEN, APPROVAL_REQUESTED, NOTE, RUN_FINISHED, Event
from tminus.ledger import engines
from tminus.ledger import leases as _leases
from tminus.ledger import schema as s
from tminus.ledger.appending import Chains
from tminus.ledger.chain import Hasher, normalise
from tminus.ledger.database import Connection, Database, first_line
from tminus.ledger.reader import SqlReader
from tminus.ledger.records import ApprovalRecord, EventRecord, Fence, LeaseRecord, Reclaimed, RunRecord, now_iso
from tminus.ledger.sql import RUN_COLUMNS, Backend
from tminus.ledger.writer import SqlRunWriter, set_status

T = TypeVar("T")


class SqlLedger(SqlReader):
    """One open ledger, read and write. Safe to share between threads: calls on the main connection
    are serialised, and lease heartbeats use connections of their own."""

    def __init__(self, db: Database, hasher: Hasher, meta: dict[str, str]) -> None:
        if hasher.key is not None and "key_check" not in meta:
            meta = _claim_key(db, hasher, meta)
        super().__init__(db, hasher, meta)
        self._chains = Chains(hasher, db.url, self._key_problem)
        self._held: weakref.WeakSet[_leases.Lease] = weakref.WeakSet()

    # --- runs -------------------------------------------------------------------------------------

    def create_run(
        self, *, run_id: str, runbook_name: str, runbook_path: str, content_hash: str, runbook_text: str,
        environment: str, operator: str, host: str, pid: int, kind: str = "run",
        parent_run_id: str | None = None,
    ) -> RunRecord:
        self._chains.require_key()
        row: dict[str, Any] = dict(
            id=run_id, runbook_name=runbook_name, runbook_path=runbook_path, content_hash=content_hash,
            runbook_text=runbook_text, environment=environment, operator=operator, host=host, pid=pid,
            kind=kind, parent_run_id=parent_run_id, status="running", exit_code=None, reason=None,
            started_at=now_iso(), finished_at=None, event_count=0,
        )
        row["head_hash"] = self._hasher.genesis(row)
        with self._db.transaction() as conn:
            try:
                conn.execute(conn.sql.INSERT_RUN, tuple(row[c] for c in RUN_COLUMNS))
            except conn.backend.integrity_error as exc:
                raise LedgerError(f"a run with id {run_id} already exists in the ledger at {self.url}") from exc
        self._chains.started(run_id, row["head_hash"])
        return RunRecord(**row)

    def open_writer(self, run_id: str, *, fence: Fence | None = None) -> SqlRunWriter:
        """The writer of one run; with `fence` (a held lease's) every write first checks the lease."""
        return SqlRunWriter(self._db, self._chains, run_id, fence)

    def append(self, event: Event) -> EventRecord:
        """An unfenced append (tests, tools): a run's own events go through its writer."""
        return self.open_writer(event.run_id).append(event)

    def set_status(
        self, run_id: str, status: str, *, exit_code: int | None = None, reason: str | None = None,
        finished: bool = False,
    ) -> None:
        """An unfenced status change (tests, tools): a run's own go through its writer."""
        with self._db.transaction() as conn:
            set_status(conn, run_id, status, exit_code, reason, finished, self.url)

    # --- approvals --------------------------------------------------------------------------------

    def record_approval(
        self, run_id: str, step_key: str | None, *, approved: bool, by: str, host: str,
        reason: str | None = None, identity: str | None = None, for_seq: int | None = None,
    ) -> ApprovalRecord:
        """An operator's answer for a manual step (or the go/no-go when step_key is None). `by` is the
        name they gave; `identity` who they are (records.local_identity() of the approving process).
        `for_seq`: the request it answers (default: the step's pending approval.requested, if any).
        Every answer is recorded; `lead` on the result says it is the first for its request (the
        only one the run can take): a later one, or one given when nothing was asked, answers nothing."""
        at = now_iso()
        with self._db.transaction() as conn:
            if conn.first(conn.sql.RUN_EXISTS, (run_id,)) is None:
                raise LedgerError(f"cannot approve: no run {run_id} in the ledger at {self.url}")
            pending = _pending_request(conn, run_id, step_key)
            for_seq = pending if for_seq is None else for_seq
        values = (run_id, step_key, approved, by, host, reason, at, identity, for_seq)
        lead = for_seq is not None and for_seq == pending  # a request answered meanwhile takes nothing more
        with self._db.transaction() as conn:
            try:
                with conn.savepoint():  # a lost race leaves the transaction usable
                    new_id = conn.first(conn.sql.INSERT_APPROVAL, (*values, 1 if lead else None))[0]
            except conn.backend.integrity_error:  # another answer to this request came first: recorded, not the lead
                lead = False
                new_id = conn.first(conn.sql.INSERT_APPROVAL, (*values, None))[0]
        return ApprovalRecord(int(new_id), run_id, step_key, approved, by, host, reason, at, identity=identity,
                              for_seq=for_seq, lead=lead)

    # --- leases (logic in leases.py) --------------------------------------------------------------

    def acquire_lease(
        self, key: str, *, run_id: str, operator: str, host: str, pid: int, ttl: float = 15.0,
        wait: float = 0.0,
    ) -> _leases.Lease:
        lease = _leases.acquire(self._db, key, run_id=run_id, operator=operator, host=host, pid=pid, ttl=ttl,
                                wait=wait, on_reclaim=self._note_reclaim)
        self._held.add(lease)
        return lease

    def break_lease(self, key: str, *, by: str, reason: str) -> LeaseRecord | None:
        """Remove the lease and record, in the holder's run, who broke it, when and why. This note is
        the one write into a run that is not the run's own (unfenced: the admin path)."""
        with self._db.transaction() as conn:
            holder = _leases.remove(conn, key)  # only the unlock that deletes the row records a note
            if holder is None:
                return None
            if conn.first(conn.sql.RUN_EXISTS, (holder.run_id,)) is not None:
                data, text = normalise({"action": "unlock", "by": by, "reason": reason, "holder": holder.to_dict()})
                self._chains.forget(holder.run_id)  # the holder is usually another process: reread its head
                self._chains.append(conn, holder.run_id, NOTE, None, now_iso(), data, text)
        return holder

    def _note_reclaim(self, conn: Connection, reclaimed: Reclaimed) -> None:
        """On an ended run's chain, in the reclaiming transaction: who took its lease, and why. (An
        unrecorded run has no chain: the acquirer notes it in its own run.)"""
        if reclaimed.run_status is None:
            return
        ended = reclaimed.holder.run_id
        data, text = normalise({"action": "lease-reclaimed", "message": f"{reclaimed.why}; run {reclaimed.taken_by} "
                                "took it", **reclaimed.to_dict()})
        self._chains.forget(ended)  # its process is gone (or done): reread its head
        self._chains.append(conn, ended, NOTE, None, now_iso(), data, text)

    # --- plumbing ---------------------------------------------------------------------------------

    def close(self) -> None:
        for lease in list(self._held):
            lease.stop_heartbeat()
        super().close()

    def __enter__(self) -> SqlLedger:
        return self


def _claim_key(db: Database, hasher: Hasher, meta: dict[str, str]) -> dict[str, str]:
    """A key given for a ledger without one: record its check, unless the ledger already holds runs
    (then the reader's key check reports the mismatch)."""
    with db.transaction() as conn:
        if conn.first(conn.sql.COUNT_RUNS)[0]:
            return meta
        s.set_meta(conn, "key_check", hasher.key_check())
    return {**meta, "key_check": hasher.key_check()}


def connect(url: str, key: str | None) -> SqlLedger:
    """Open (and if needed create and migrate) the ledger at `url`."""

    def ledger(db: Database, hasher: Hasher) -> SqlLedger:
        with db.transaction_raw() as conn:
            meta = s.migrate(conn, db.url)
        return SqlLedger(db, hasher, meta)

    return _open(url, key, ledger)


def connect_reader(url: str, key: str | None) -> SqlReader:
    """Open the ledger at `url` to read: never created, migrated or written."""

    def reader(db: Database, hasher: Hasher) -> SqlReader:
        with db.transaction_raw() as conn:
            meta = s.check_readable(conn, db.url)
        return SqlReader(db, hasher, meta)

    return _open(url, key, reader, read_only=True)


def _open(url: str, key: str | None, build: Callable[[Database, Hasher], T], *, read_only: bool = False) -> T:
    """Any database failure while opening is a LedgerError naming the (masked) URL."""
    backend: Backend = engines.create(engines.normalise_url(url), read_only=read_only)
    shown = backend.shown_url
    db: Database | None = None
    try:
        db = Database(backend)
        return build(db, Hasher(key.encode() if key else None))
    except LedgerError:
        if db is not None:
            db.close()
        raise
    except backend.error as exc:
        if db is not None:
            db.close()
        raise LedgerError(
            f"cannot open the ledger at {shown}: {first_line(exc)}\n"
            "    hint: check that the database is running and the URL (--ledger / TMINUS_LEDGER) is right"
        ) from exc


__all__ = ["SqlLedger", "connect", "connect_reader"]


def _pending_request(conn: Connection, run_id: str, step_key: str | None) -> int | None:
    """The seq of the step's approval.requested not answered yet, or None (the projection's rule:
    a request is pending until an approval.given of its step, or the run's end)."""
    rows = conn.execute(conn.sql.APPROVAL_EVENTS, (run_id, APPROVAL_REQUESTED, APPROVAL_GIVEN, RUN_FINISHED)).fetchall()
    pending: int | None = None
    for seq, type_, key in rows:
        if type_ == RUN_FINISHED:
            pending = None
        elif key == step_key:
            pending = seq if type_ == APPROVAL_REQUESTED else None
    return pending
