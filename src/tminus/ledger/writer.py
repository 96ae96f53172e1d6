"""A run's writer: every write of one run, each in one transaction that first checks the run's lease
is still held (when the writer is bound to one), so a holder whose lease was broken writes nothing."""

from __future__ import annotations

from tminus.errors import ApprovalTaken, LedgerError
from tminus.events import Event
from tminus.ledger import crashpoint
from tminus.ledger.appending import Chains
from tminus.ledger.chain import normalise
from tminus.ledger.database import Connection, Database
from tminus.ledger.leases import check_fence
from tminus.ledger.records import EventRecord, Fence, now_iso


class SqlRunWriter:
    """Implements interfaces.RunWriter. `fence` None: an unfenced writer (gate-only runs)."""

    def __init__(self, db: Database, chains: Chains, run_id: str, fence: Fence | None) -> None:
        self.run_id = run_id
        self.fence = fence
        self._db = db
        self._chains = chains
        self._crash = crashpoint.from_env()  # test-only, None unless TMINUS_TEST_CRASH_* is set

    def append(self, event: Event) -> EventRecord:
        """Store one event durably (its own transaction) before the engine goes on."""
        with self._db.transaction() as conn:
            record = self._append(conn, event, fenced=True)  # the fence checked as the head moves
        return self._committed(record)

    def append_many(self, events: list[Event]) -> list[EventRecord]:
        """Store several events in one transaction, all or none: for events that need not be committed
        alone before the engine acts (the results of side-effect-free checks that ran together)."""
        if not events:
            return []
        with self._db.transaction() as conn:
            records = [self._append(conn, event, fenced=True) for event in events]
        return [self._committed(record) for record in records]

    def set_status(
        self, status: str, *, exit_code: int | None = None, reason: str | None = None, finished: bool = False,
    ) -> None:
        with self._db.transaction() as conn:
            self._check(conn)
            set_status(conn, self.run_id, status, exit_code, reason, finished, self._db.url)

    def finish(
        self, status: str, exit_code: int, reason: str | None, event: Event, *, finished: bool = True,
    ) -> EventRecord:
        """The run's final status and its `run.finished` event, together or not at all."""
        with self._db.transaction() as conn:
            self._check(conn)
            set_status(conn, self.run_id, status, exit_code, reason, finished, self._db.url)
            record = self._append(conn, event)
        return self._committed(record)

    def consume_approval(self, request_seq: int, approval_id: int, event: Event) -> EventRecord:
        """Take approval `approval_id` as the answer to the request recorded at `request_seq`, and
        append `event` (its approval.given), in one transaction. ApprovalTaken when the approval was
        consumed already, or the request already answered."""
        with self._db.transaction() as conn:
            self._check(conn)
            try:
                take = (request_seq, now_iso(), approval_id, self.run_id)
                taken = conn.execute(conn.sql.TAKE_APPROVAL, take).rowcount
            except conn.backend.integrity_error as exc:  # the unique (run, request): this request has its answer
                raise ApprovalTaken(
                    f"run {self.run_id}: the approval request at event {request_seq} is already answered"
                ) from exc
            if not taken:
                raise ApprovalTaken(
                    f"run {self.run_id}: approval {approval_id} is already consumed (or is not this run's)")
            record = self._append(conn, event)
        return self._committed(record)

    def _committed(self, record: EventRecord) -> EventRecord:
        if self._crash is not None:
            self._crash.committed(record.type)
        return record

    def _check(self, conn: Connection) -> None:
        if self.fence is not None:
            check_fence(conn, self.fence, self.run_id)

    def _append(self, conn: Connection, event: Event, *, fenced: bool = False) -> EventRecord:
        """`fenced`: check the fence as the head moves (the callers that did not check it first)."""
        if event.run_id != self.run_id:
            raise LedgerError(f"the writer of run {self.run_id} cannot record an event of run {event.run_id}")
        data, data_text = normalise(event.data)
        return self._chains.append(conn, event.run_id, event.type, event.step_key, event.at, data, data_text,
                                   self.fence if fenced else None)


def set_status(
    conn: Connection, run_id: str, status: str, exit_code: int | None, reason: str | None, finished: bool,
    shown_url: str,
) -> None:
    values = (status, exit_code, reason, now_iso() if finished else None, run_id)
    if conn.execute(conn.sql.SET_STATUS, values).rowcount == 0:
        raise LedgerError(f"no run {run_id} in the ledger at {shown_url}")


__all__ = ["SqlRunWriter", "set_status"]
