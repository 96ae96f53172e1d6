"""Appending to a run's hash chain, and to the ledger-wide chain, inside a caller's transaction, with
each run's head and the ledger's last link cached."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from tminus.errors import LedgerError
from tminus.ledger.chain import Hasher
from tminus.ledger.database import Connection
from tminus.ledger.leases import check_fence
from tminus.ledger.records import EventRecord, Fence

_LINK_TRIES = 200


class Chains:
    """The chains of the runs one process appends to: run id -> (event count, head hash), and the
    ledger-wide chain's last link (lseq, lhash), so an append needs no read. Thread safety comes from
    the caller's serialised transactions."""

    def __init__(self, hasher: Hasher, shown_url: str, key_problem: str | None) -> None:
        self.hasher = hasher
        self.url = shown_url
        self.key_problem = key_problem
        self._heads: dict[str, tuple[int, str]] = {}
        self._last_link: tuple[int, str] | None = None

    def require_key(self) -> None:
        if self.key_problem:
            raise LedgerError(self.key_problem)

    def started(self, run_id: str, genesis: str) -> None:
        self._heads[run_id] = (0, genesis)

    def forget(self, run_id: str) -> None:
        """Another process appends to this run: reread its head next time."""
        self._heads.pop(run_id, None)

    def append(
        self, conn: Connection, run_id: str, type_: str, step_key: str | None, at: str,
        data: dict[str, Any], data_text: str, fence: Fence | None = None,
    ) -> EventRecord:
        """Append in the caller's transaction. With `fence`, the head moves only while that lease is
        held (share-locked on PostgreSQL, as check_fence does); if it does not move, a lost lease is
        LeaseLost (nothing written), else another writer moved the head and we reload it."""
        self.require_key()
        for _ in range(2):
            head = self._heads.get(run_id) or self._load_head(conn, run_id)
            seq, prev_hash = head[0] + 1, head[1]
            last = self._last_link or self._load_last_link(conn)
            # The event's hash covers its place in the ledger-wide chain (lseq, the last argument).
            digest_at = partial(self.hasher.event, prev_hash, run_id, seq, type_, step_key, at, data_text)
            digest = digest_at(last[0] + 1)
            # Compare-and-set on the run's head: if another process appended to this run since we
            # cached it (`tminus unlock` adds a note), nothing is written and we reload.
            if fence is None:
                moved = conn.execute(conn.sql.MOVE_HEAD, (seq, digest, run_id, head[0], prev_hash)).rowcount
            else:
                moved = conn.execute(conn.sql.MOVE_HEAD_FENCED, (seq, digest, run_id, head[0], prev_hash, fence.key,
                                                                 fence.token, fence.generation)).rowcount
            if moved:
                row = (run_id, seq, type_, step_key, at, data_text, prev_hash)
                digest = self._insert(conn, row, last, digest, digest_at)
                # Cached before commit: if the commit fails, the next compare-and-set misses and reloads.
                self._heads[run_id] = (seq, digest)
                return EventRecord(run_id, seq, type_, step_key, at, data, prev_hash, digest)
            if fence is not None:
                check_fence(conn, fence, run_id)  # LeaseLost when that is why nothing moved
            self._heads.pop(run_id, None)
        raise LedgerError(f"could not append to run {run_id}: its head keeps moving under concurrent writers")

    def _insert(
        self, conn: Connection, row: tuple[Any, ...], last: tuple[int, str], digest: str,
        digest_at: Callable[[int], str],
    ) -> str:
        """Insert the event as the link after `last` of the ledger-wide chain; its hash as inserted.
        If another process took that link meanwhile, relink after the new last one (the event's hash
        and the run's head change with it). This bounds only how many appends may overtake one of ours."""
        run_id, seq = row[0], row[1]
        for _ in range(_LINK_TRIES):
            lseq = last[0] + 1
            lhash = self.hasher.link(last[1], lseq, run_id, seq, digest)
            if conn.first(conn.sql.INSERT_LINKED, (*row, digest, lseq, lhash)) is not None:
                self._last_link = (lseq, lhash)  # as for a run's head: a failed commit makes the next insert miss
                return digest
            last = self._load_last_link(conn)
            moved = digest_at(last[0] + 1)
            conn.execute(conn.sql.MOVE_HEAD, (seq, moved, run_id, seq, digest))
            digest = moved
        self._last_link = None
        raise LedgerError(f"could not append to the ledger at {self.url}: other writers keep taking its next link")

    def _load_last_link(self, conn: Connection) -> tuple[int, str]:
        row = conn.first(conn.sql.LAST_LINK)
        return (0, "") if row is None else (int(row[0]), str(row[1]))

    def _load_head(self, conn: Connection, run_id: str) -> tuple[int, str]:
        row = conn.first(conn.sql.RUN_HEAD, (run_id,))
        if row is None:
            raise LedgerError(f"cannot record an event of run {run_id}: no such run in the ledger at {self.url}")
        return int(row[0]), str(row[1])


__all__ = ["Chains"]
