"""What the ledger hands out: frozen, JSON-safe records. No SQLAlchemy here (start-up stays light)."""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from tminus.processes import pid_alive


def local_identity() -> str:
    """Who this process is, as the operating system says: `user@host` of its effective uid. Unlike an
    operator name (`--operator`, $TMINUS_OPERATOR: a claim anyone can type), changing it takes another
    account. No environment variable overrides it."""
    import pwd

    uid = os.geteuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:  # no passwd entry (some containers): the uid is still who it is
        user = f"uid{uid}"
    return f"{user}@{socket.gethostname()}"


def now_iso() -> str:
    """UTC timestamp with microseconds, so runs started within one millisecond still sort."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def iso_microseconds(ts: float) -> str:
    """An epoch as now_iso() writes a time: comparable with the ledger's stored times as text."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def iso_from_epoch(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def epoch_from_iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@dataclass(frozen=True)
class _Record:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LedgerHead(_Record):
    """The head of the ledger-wide chain: how many links it has and the last one. Written down outside
    the ledger (`ledger verify` prints it), it lets a later verify detect that the newest events of
    the whole ledger were deleted, which nothing inside the ledger can."""

    count: int
    hash: str

    def __str__(self) -> str:
        return f"{self.count}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> LedgerHead:
        count, sep, digest = text.strip().partition(":")
        if not (sep and count.isdigit() and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
            raise ValueError(f"{text!r} is not a ledger head: expected COUNT:HASH as `tminus ledger verify` prints it")
        return cls(int(count), digest)


@dataclass(frozen=True)
class RunRecord(_Record):
    id: str
    runbook_name: str
    runbook_path: str
    content_hash: str
    runbook_text: str
    environment: str
    operator: str
    host: str
    pid: int
    kind: str
    parent_run_id: str | None
    status: str
    exit_code: int | None
    reason: str | None
    started_at: str
    finished_at: str | None
    event_count: int
    head_hash: str


@dataclass(frozen=True)
class EventRecord(_Record):
    run_id: str
    seq: int
    type: str
    step_key: str | None
    at: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ApprovalRecord(_Record):
    id: int
    run_id: str
    step_key: str | None
    approved: bool
    by: str
    host: str
    reason: str | None
    at: str
    request_seq: int | None = None  # the seq of the approval.requested it answered; None while unused
    consumed_at: str | None = None
    identity: str | None = None  # who gave it (local_identity() of `tminus approve`); `by` is their claim
    for_seq: int | None = None  # the seq of the approval.requested it was given for; None: nothing was asked
    lead: bool = False  # the first answer given for that request (only a lead can be taken by the run)


# A run with one of these statuses has not ended: `tminus resume` continues it, so its lease is its own.
RESUMABLE = ("running", "interrupted", "rollback_failed", "needs_operator", "not_finalized")


@dataclass(frozen=True)
class Reclaimed(_Record):
    """A lease the acquirer took from a run that will never release it: `holder` (the lease as found)
    belonged to a run that had ended (`run_status`) or to one that was never recorded (None)."""

    holder: LeaseRecord
    run_status: str | None
    why: str
    taken_by: str  # the run that took it


@dataclass(frozen=True)
class Fence:
    """What a run writer bound to a lease checks before every write: the lease on `key` is still the
    acquisition with this token and generation (it was not broken, nor taken by another run)."""

    key: str
    token: str
    generation: int


@dataclass(frozen=True)
class LeaseRecord(_Record):
    key: str
    run_id: str
    operator: str
    host: str
    pid: int
    acquired_at: str  # ISO UTC
    heartbeat_at: str  # ISO UTC; renewed every ttl/3 while the run lives
    ttl: float  # seconds without a heartbeat after which the holder counts as gone
    generation: int = 0  # higher for each acquisition of the key; 0 for leases taken before schema v2

    def stale_reason(self, now: datetime | None = None) -> str | None:
        """Why the holder is gone, or None while it looks alive.

        Heartbeats are compared with this machine's clock: hosts sharing a PostgreSQL ledger
        must keep their clocks in sync (NTP) to within a fraction of the ttl.
        """
        if self.host == socket.gethostname() and not pid_alive(self.pid):
            return f"process {self.pid} on {self.host} is no longer running"
        current = (now or datetime.now(UTC)).timestamp()
        silent = current - epoch_from_iso(self.heartbeat_at)
        if silent > self.ttl:
            return f"no heartbeat for {silent:.0f}s (ttl {self.ttl:g}s)"
        return None

    def is_stale(self, now: datetime | None = None) -> bool:
        return self.stale_reason(now) is not None
