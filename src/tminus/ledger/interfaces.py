"""What callers type against: the ledger's reader, a run's writer, a held lease and the whole ledger.

The concrete classes (on sqlite3 or psycopg, statements in sql.py) live in reader.py, writer.py,
leases.py and store.py; nothing outside the ledger needs to name them. Importing this module stays
light (no database driver).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol, Self

from tminus.events import Event
from tminus.ledger.records import ApprovalRecord, EventRecord, Fence, LeaseRecord, LedgerHead, Reclaimed, RunRecord


class LedgerReader(Protocol):
    """Reads only: opened by `open_reader`, it never creates, migrates or writes the ledger."""

    @property
    def url(self) -> str:
        """The ledger's URL with its password masked."""
        ...

    def get_run(self, run_id: str) -> RunRecord | None:
        """By id or unique id prefix; None when there is none; LedgerError for an ambiguous prefix."""
        ...

    def list_runs(
        self, *, runbook: str | None = None, environment: str | None = None, status: str | None = None,
        limit: int = 20, kind: str | None = None, started_after: float | None = None,
        started_before: float | None = None,
    ) -> list[RunRecord]:
        """Newest first; `kind` (run, gate, monitor) narrows them like the other filters, and so do
        `started_after` (at or after) and `started_before` (strictly before), in epoch seconds."""
        ...

    def events(self, run_id: str, after: int = 0, limit: int | None = None) -> list[EventRecord]:
        """The run's events in seq order, only those with seq > `after` (tail), at most `limit`."""
        ...

    def iter_events(self, run_id: str, after: int = 0, *, chunk: int = 1000) -> Iterator[EventRecord]:
        """The same events as `events`, streamed `chunk` at a time (a ledger far larger than memory)."""
        ...

    def approvals(self, run_id: str, step_key: str | None = None) -> list[ApprovalRecord]:
        """Oldest first; `request_seq` says which request consumed each (None: not used yet)."""
        ...

    def get_lease(self, key: str) -> LeaseRecord | None: ...

    def verify(self, run_id: str | None = None, *, head: LedgerHead | None = None) -> list[str]:
        """Recompute the hash chains (one run or all, and the ledger-wide chain): problems in words, []
        when intact. `head`: a ledger_head() kept outside the ledger, which must still be in the chain."""
        ...

    def ledger_head(self) -> LedgerHead:
        """The ledger-wide chain's head: print it, keep it elsewhere, give it to a later verify."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class RunWriter(Protocol):
    """Every write of one run. Bound to a lease (`fence` set), each write checks in its transaction
    that the lease is still this acquisition and raises LeaseLost (writing nothing) when it is not."""

    @property
    def run_id(self) -> str: ...

    @property
    def fence(self) -> Fence | None: ...

    def append(self, event: Event) -> EventRecord: ...

    def append_many(self, events: list[Event]) -> list[EventRecord]:
        """Several events in one transaction, all or none (grouped results of side-effect-free checks)."""
        ...

    def set_status(
        self, status: str, *, exit_code: int | None = None, reason: str | None = None, finished: bool = False,
    ) -> None: ...

    def finish(
        self, status: str, exit_code: int, reason: str | None, event: Event, *, finished: bool = True,
    ) -> EventRecord:
        """The run's status and its `run.finished` event in one transaction."""
        ...

    def consume_approval(self, request_seq: int, approval_id: int, event: Event) -> EventRecord:
        """Mark the approval as the answer to the request at `request_seq` and append `event` (its
        approval.given) in one transaction; ApprovalTaken if either is taken already."""
        ...


class HeldLease(Protocol):
    """A lease this process holds (see leases.Lease)."""

    key: str
    record: LeaseRecord
    lost: threading.Event  # set when a heartbeat finds the lease broken or taken
    reclaimed: Reclaimed | None  # the lease of an ended or unrecorded run this acquisition took over

    @property
    def fence(self) -> Fence: ...

    def start_heartbeat(self) -> None: ...

    def stop_heartbeat(self) -> None: ...

    def release(self) -> None: ...


class Ledger(LedgerReader, Protocol):
    """The whole ledger, opened by `open_ledger` (creating and migrating it): what `run`, `resume`,
    `approve` and `unlock` use."""

    def create_run(
        self, *, run_id: str, runbook_name: str, runbook_path: str, content_hash: str, runbook_text: str,
        environment: str, operator: str, host: str, pid: int, kind: str = "run",
        parent_run_id: str | None = None,
    ) -> RunRecord: ...

    def open_writer(self, run_id: str, *, fence: Fence | None = None) -> RunWriter:
        """The run's writer; fenced by a held lease's `fence`, unfenced (gate-only runs) without."""
        ...

    def acquire_lease(
        self, key: str, *, run_id: str, operator: str, host: str, pid: int, ttl: float = 15.0,
        wait: float = 0.0,
    ) -> HeldLease:
        """LockHeld when another run holds it (or a stale holder that needs `tminus unlock`). The lease
        of a run that ended, or of an unrecorded run whose holder is gone, is reclaimed instead: noted
        on the ended run's chain, and handed back as `reclaimed` for the acquirer to note in its own."""
        ...

    def break_lease(self, key: str, *, by: str, reason: str) -> LeaseRecord | None:
        """`tminus unlock`: delete the lease, note who broke it in the holder's run (unfenced)."""
        ...

    def record_approval(
        self, run_id: str, step_key: str | None, *, approved: bool, by: str, host: str,
        reason: str | None = None, identity: str | None = None, for_seq: int | None = None,
    ) -> ApprovalRecord:
        """`tminus approve`: an answer waiting to be consumed by the run's request. `by` is the name
        the approver gave (a claim), `identity` their OS user@host (records.local_identity()).
        `for_seq`: the approval.requested it answers (default: the step's pending one). Always
        recorded; the result's `lead` is False when it answers nothing (another answer to that request
        came first, the request was answered meanwhile, or nothing was asked)."""
        ...

    def append(self, event: Event) -> EventRecord:
        """Unfenced (tests and tools); a run's own events go through its writer."""
        ...

    def set_status(
        self, run_id: str, status: str, *, exit_code: int | None = None, reason: str | None = None,
        finished: bool = False,
    ) -> None:
        """Unfenced (tests and tools); a run's own status goes through its writer."""
        ...


__all__ = ["HeldLease", "Ledger", "LedgerReader", "RunWriter"]
