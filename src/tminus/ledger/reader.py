"""Reading the ledger: runs, events (tailing after a sequence number), approvals, leases, verify.

`SqlReader` opened by `open_reader` never creates, migrates or writes; `Ledger` (store.py) extends
it with the writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Column, Connection, Select, Table, func, select

from tminus.errors import LedgerError
from tminus.ledger import schema as s
from tminus.ledger.appending import LAST_LINK
from tminus.ledger.chain import Hasher, StoredEvent, StoredLink, verify_chain, verify_links
from tminus.ledger.database import Database
from tminus.ledger.leases import lease_record
from tminus.ledger.records import ApprovalRecord, EventRecord, LeaseRecord, LedgerHead, RunRecord, iso_microseconds


class SqlReader:
    """The read side of one open ledger (implements interfaces.LedgerReader)."""

    def __init__(self, db: Database, hasher: Hasher, meta: dict[str, str]) -> None:
        self._db = db
        self._hasher = hasher
        self._missing = s.missing_columns(int(meta.get("schema_version", s.SCHEMA_VERSION)))
        self._chainless = "tminus_events.lseq" in self._missing
        self._key_problem = key_problem(db, hasher, meta)

    @property
    def url(self) -> str:
        return self._db.url

    # --- runs -------------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id, or with this unique id prefix. An ambiguous prefix is an error."""
        with self._db.transaction() as conn:
            row = conn.execute(select(s.runs).where(s.runs.c.id == run_id)).first()
            if row is not None:
                return RunRecord(**row._asdict())
            pattern = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = select(s.runs).where(s.runs.c.id.like(pattern, escape="\\")).order_by(s.runs.c.id).limit(6)
            rows = conn.execute(query).all()
        if len(rows) > 1:
            shown = ", ".join(r.id for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise LedgerError(f"run id prefix '{run_id}' is ambiguous: it matches {shown}; give more characters")
        return RunRecord(**rows[0]._asdict()) if rows else None

    def list_runs(
        self, *, runbook: str | None = None, environment: str | None = None, status: str | None = None,
        limit: int = 20, kind: str | None = None, started_after: float | None = None,
        started_before: float | None = None,
    ) -> list[RunRecord]:
        """Newest first; `kind`: run, gate or monitor; `started_after`/`started_before`: epoch seconds
        (at or after, strictly before)."""
        query = select(s.runs)
        for column, value in ((s.runs.c.runbook_name, runbook), (s.runs.c.environment, environment),
                              (s.runs.c.status, status), (s.runs.c.kind, kind)):
            if value is not None:
                query = query.where(column == value)
        # started_at is ISO 8601 UTC to the microsecond (records.now_iso): text order is time order
        if started_after is not None:
            query = query.where(s.runs.c.started_at >= iso_microseconds(started_after))
        if started_before is not None:
            query = query.where(s.runs.c.started_at < iso_microseconds(started_before))
        query = query.order_by(s.runs.c.started_at.desc(), s.runs.c.id.desc()).limit(limit)
        with self._db.transaction() as conn:
            return [RunRecord(**r._asdict()) for r in conn.execute(query)]

    # --- events -----------------------------------------------------------------------------------

    def events(self, run_id: str, after: int = 0, limit: int | None = None) -> list[EventRecord]:
        """The run's events in seq order; only those after seq `after` (tailing), at most `limit`."""
        query = self._select(s.events).where(s.events.c.run_id == run_id)
        if after:
            query = query.where(s.events.c.seq > after)
        query = query.order_by(s.events.c.seq)
        if limit is not None:
            query = query.limit(limit)
        with self._db.transaction() as conn:
            rows = conn.execute(query).all()
        return [
            EventRecord(r.run_id, r.seq, r.type, r.step_key, r.at, json.loads(r.data), r.prev_hash, r.hash)
            for r in rows
        ]

    def iter_events(self, run_id: str, after: int = 0, *, chunk: int = 1000) -> Iterator[EventRecord]:
        """The run's events in seq order, read `chunk` at a time: memory stays flat however long the run."""
        while True:
            page = self.events(run_id, after=after, limit=chunk)
            yield from page
            if len(page) < chunk:
                return
            after = page[-1].seq

    def verify(self, run_id: str | None = None, *, head: LedgerHead | None = None) -> list[str]:
        """Recompute every chain (one run's, or all) and the ledger-wide chain; human-readable problems,
        [] when intact. `head`: one `ledger_head()` returned earlier, kept outside the ledger; it must
        still be a link of the chain. The ledger-wide chain is checked whole even for one run: a gap
        anywhere may be this run's deleted tail."""
        if self._key_problem:
            raise LedgerError(self._key_problem)
        problems: list[str] = []
        run_query = select(s.runs).order_by(s.runs.c.started_at, s.runs.c.id)
        event_query = self._select(s.events).order_by(s.events.c.run_id, s.events.c.seq)
        if run_id is not None:
            run_query = run_query.where(s.runs.c.id == run_id)
            event_query = event_query.where(s.events.c.run_id == run_id)
        with self._db.transaction() as conn:
            runs = {r.id: r._asdict() for r in conn.execute(run_query)}
            if run_id is not None and not runs:
                raise LedgerError(f"no run {run_id} in the ledger at {self.url}")
            by_run: dict[str, list[StoredEvent]] = {}
            for r in conn.execute(event_query):
                by_run.setdefault(r.run_id, []).append(
                    StoredEvent(r.seq, r.type, r.step_key, r.at, r.data, r.prev_hash, r.hash,
                                None if self._chainless else r.lseq)
                )
            linked = self._verify_links(conn, head)
        for rid, run in runs.items():
            problems.extend(verify_chain(self._hasher, run, by_run.pop(rid, [])))
        for rid, orphans in by_run.items():
            problems.append(f"run {rid}: {len(orphans)} event(s) of a run that is not in the ledger - "
                            "the run was deleted, or events were added outside tminus")
        return problems + linked

    def ledger_head(self) -> LedgerHead:
        """The ledger-wide chain's head now: its last link (0 links on a ledger older than schema 3)."""
        if self._chainless:
            return LedgerHead(0, "")
        with self._db.transaction() as conn:
            row = conn.execute(LAST_LINK).first()
        return LedgerHead(0, "") if row is None else LedgerHead(int(row[0]), str(row[1]))

    def _verify_links(self, conn: Connection, expected: LedgerHead | None) -> list[str]:
        if self._chainless:  # an older schema, read as it is: its events have no links yet
            return [] if expected is None else [
                "ledger-wide chain: this ledger predates it (schema version < 3), so no recorded head can be checked"]
        e = s.events.c
        links = (StoredLink(r.lseq, r.run_id, r.seq, r.hash, r.lhash) for r in conn.execute(
            select(e.lseq, e.run_id, e.seq, e.hash, e.lhash).where(e.lseq.is_not(None)).order_by(e.lseq)))
        return verify_links(self._hasher, links, None if expected is None else (expected.count, expected.hash))

    # --- approvals and leases ---------------------------------------------------------------------

    def approvals(self, run_id: str, step_key: str | None = None) -> list[ApprovalRecord]:
        """Approvals of a run, oldest first; only those of `step_key` when given."""
        query = self._select(s.approvals).where(s.approvals.c.run_id == run_id)
        if step_key is not None:
            query = query.where(s.approvals.c.step_key == step_key)
        with self._db.transaction() as conn:
            rows = conn.execute(query.order_by(s.approvals.c.id)).all()
        return [approval_record(r._asdict()) for r in rows]

    def get_lease(self, key: str) -> LeaseRecord | None:
        with self._db.transaction() as conn:
            row = conn.execute(self._select(s.leases).where(s.leases.c.key == key)).first()
        return None if row is None else lease_record(row._asdict())

    # --- plumbing ---------------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqlReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _select(self, table: Table) -> Select[Any]:
        """All of the table's columns this ledger's schema version has (a reader reads older ones)."""
        columns: list[Column[Any]] = [c for c in table.c if f"{table.name}.{c.name}" not in self._missing]
        return select(*columns)


def approval_record(row: dict[str, Any]) -> ApprovalRecord:
    return ApprovalRecord(
        int(row["id"]), row["run_id"], row["step_key"], bool(row["approved"]), row["approved_by"], row["host"],
        row["reason"], row["at"], row.get("request_seq"), row.get("consumed_at"), row.get("identity"),
        row.get("for_seq"), bool(row.get("lead")),
    )


def key_problem(db: Database, hasher: Hasher, meta: dict[str, str]) -> str | None:
    """Why this key cannot verify the ledger's chains, or None. Reads only."""
    stored = meta.get("key_check")
    if stored is not None:
        if hasher.key is None:
            return (f"the ledger at {db.url} is keyed (HMAC): set TMINUS_LEDGER_KEY to the key it was "
                    "created with to write to or verify it")
        if stored != hasher.key_check():
            return f"TMINUS_LEDGER_KEY does not match the key the ledger at {db.url} was created with"
        return None
    if hasher.key is None:
        return None
    with db.transaction() as conn:
        if conn.execute(select(func.count()).select_from(s.runs)).scalar():
            return (f"TMINUS_LEDGER_KEY is set but the ledger at {db.url} was created without a key and "
                    "already holds runs: unset TMINUS_LEDGER_KEY, or use a new ledger for keyed runs")
    return None


__all__ = ["SqlReader", "approval_record", "key_problem"]
