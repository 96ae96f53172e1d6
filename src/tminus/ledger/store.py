"""The ledger: runs, their hash-chained events, approvals and leases, through SQLAlchemy Core."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from tminus.errors import LedgerError
from tminus.events import NOTE
from tminus.ledger import leases as _leases
from tminus.ledger import schema as s
from tminus.ledger.chain import Hasher, StoredEvent, normalise, verify_chain
from tminus.ledger.records import ApprovalRecord, EventRecord, LeaseRecord, RunRecord, now_iso

if TYPE_CHECKING:
    from sqlalchemy import Engine, Row

    from tminus.events import Event
    from tminus.ledger.leases import Lease

# Built once: constructing statements costs more than executing them on SQLite (append is hot).
_MOVE_HEAD = (
    update(s.runs)
    .where(s.runs.c.id == bindparam("rid"), s.runs.c.event_count == bindparam("old_count"),
           s.runs.c.head_hash == bindparam("old_hash"))
    .values(event_count=bindparam("new_count"), head_hash=bindparam("new_hash"))
)
_INSERT_EVENT = insert(s.events)


class Ledger:
    """One open ledger. Safe to share between threads: calls on the main connection are serialised,
    and lease heartbeats use connections of their own."""

    def __init__(self, engine: Engine, url: str, key: str | None) -> None:
        self.url = s.mask(url)
        self._engine = engine
        self._lock = threading.RLock()
        self._hasher = Hasher(key.encode() if key else None)
        # run id -> (event count, head hash) for runs this process appends to: no read per event.
        self._heads: dict[str, tuple[int, str]] = {}
        self._leases: list[Lease] = []
        found = s.migrate(engine, self.url)
        self._conn = engine.connect()
        self._key_problem = self._check_key(found, key)

    # --- runs -------------------------------------------------------------------------------------

    def create_run(
        self, *, run_id: str, runbook_name: str, runbook_path: str, content_hash: str, runbook_text: str,
        environment: str, operator: str, host: str, pid: int, kind: str = "run",
        parent_run_id: str | None = None,
    ) -> RunRecord:
        self._require_key()
        row: dict[str, Any] = dict(
            id=run_id, runbook_name=runbook_name, runbook_path=runbook_path, content_hash=content_hash,
            runbook_text=runbook_text, environment=environment, operator=operator, host=host, pid=pid,
            kind=kind, parent_run_id=parent_run_id, status="running", exit_code=None, reason=None,
            started_at=now_iso(), finished_at=None, event_count=0,
        )
        row["head_hash"] = self._hasher.genesis(row)
        with self._tx() as conn:
            try:
                conn.execute(insert(s.runs).values(**row))
            except IntegrityError as exc:
                raise LedgerError(f"a run with id {run_id} already exists in the ledger at {self.url}") from exc
        self._heads[run_id] = (0, row["head_hash"])
        return RunRecord(**row)

    def set_status(
        self, run_id: str, status: str, *, exit_code: int | None = None, reason: str | None = None,
        finished: bool = False,
    ) -> None:
        values: dict[str, Any] = {"status": status, "exit_code": exit_code, "reason": reason}
        values["finished_at"] = now_iso() if finished else None
        with self._tx() as conn:
            if conn.execute(update(s.runs).where(s.runs.c.id == run_id).values(**values)).rowcount == 0:
                raise LedgerError(f"no run {run_id} in the ledger at {self.url}")

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id, or with this unique id prefix. An ambiguous prefix is an error."""
        with self._tx() as conn:
            row = conn.execute(select(s.runs).where(s.runs.c.id == run_id)).first()
            if row is not None:
                return _run(row)
            pattern = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = select(s.runs).where(s.runs.c.id.like(pattern, escape="\\")).order_by(s.runs.c.id).limit(6)
            rows = conn.execute(query).all()
        if len(rows) > 1:
            shown = ", ".join(r.id for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise LedgerError(f"run id prefix '{run_id}' is ambiguous: it matches {shown}; give more characters")
        return _run(rows[0]) if rows else None

    def list_runs(
        self, *, runbook: str | None = None, environment: str | None = None, status: str | None = None,
        limit: int = 20,
    ) -> list[RunRecord]:
        """Newest first."""
        query = select(s.runs)
        for column, value in ((s.runs.c.runbook_name, runbook), (s.runs.c.environment, environment),
                              (s.runs.c.status, status)):
            if value is not None:
                query = query.where(column == value)
        query = query.order_by(s.runs.c.started_at.desc(), s.runs.c.id.desc()).limit(limit)
        with self._tx() as conn:
            return [_run(r) for r in conn.execute(query)]

    # --- events -----------------------------------------------------------------------------------

    def append(self, event: Event) -> EventRecord:
        """Store one event durably (its own transaction) before the engine goes on."""
        self._require_key()
        data, data_text = normalise(event.data)
        with self._tx() as conn:
            record = self._append_in(conn, event.run_id, event.type, event.step_key, event.at, data, data_text)
        return record

    def _append_in(
        self, conn: Connection, run_id: str, type_: str, step_key: str | None, at: str,
        data: dict[str, Any], data_text: str,
    ) -> EventRecord:
        for _ in range(2):
            head = self._heads.get(run_id) or self._load_head(conn, run_id)
            seq, prev_hash = head[0] + 1, head[1]
            digest = self._hasher.event(prev_hash, run_id, seq, type_, step_key, at, data_text)
            # Compare-and-set on the run's head: if another process appended to this run since we
            # cached it (`tminus unlock` adds a note), nothing is written and we reload.
            moved = conn.execute(_MOVE_HEAD, {"rid": run_id, "old_count": head[0], "old_hash": prev_hash,
                                              "new_count": seq, "new_hash": digest}).rowcount
            if moved:
                conn.execute(_INSERT_EVENT, {"run_id": run_id, "seq": seq, "type": type_, "step_key": step_key,
                                             "at": at, "data": data_text, "prev_hash": prev_hash, "hash": digest})
                # Cached before commit: if the commit fails, the next compare-and-set misses and reloads.
                self._heads[run_id] = (seq, digest)
                return EventRecord(run_id, seq, type_, step_key, at, data, prev_hash, digest)
            self._heads.pop(run_id, None)
        raise LedgerError(f"could not append to run {run_id}: its head keeps moving under concurrent writers")

    def _load_head(self, conn: Connection, run_id: str) -> tuple[int, str]:
        row = conn.execute(select(s.runs.c.event_count, s.runs.c.head_hash).where(s.runs.c.id == run_id)).first()
        if row is None:
            raise LedgerError(f"cannot record an event of run {run_id}: no such run in the ledger at {self.url}")
        return int(row[0]), str(row[1])

    def events(self, run_id: str) -> list[EventRecord]:
        """The run's events in seq order."""
        query = select(s.events).where(s.events.c.run_id == run_id).order_by(s.events.c.seq)
        with self._tx() as conn:
            rows = conn.execute(query).all()
        return [
            EventRecord(r.run_id, r.seq, r.type, r.step_key, r.at, json.loads(r.data), r.prev_hash, r.hash)
            for r in rows
        ]

    def verify(self, run_id: str | None = None) -> list[str]:
        """Recompute every chain (one run, or all); human-readable problems, [] when intact."""
        self._require_key()
        problems: list[str] = []
        run_query = select(s.runs).order_by(s.runs.c.started_at, s.runs.c.id)
        event_query = select(s.events).order_by(s.events.c.run_id, s.events.c.seq)
        if run_id is not None:
            run_query = run_query.where(s.runs.c.id == run_id)
            event_query = event_query.where(s.events.c.run_id == run_id)
        with self._tx() as conn:
            runs = {r.id: r._asdict() for r in conn.execute(run_query)}
            if run_id is not None and not runs:
                raise LedgerError(f"no run {run_id} in the ledger at {self.url}")
            by_run: dict[str, list[StoredEvent]] = {}
            for r in conn.execute(event_query):
                by_run.setdefault(r.run_id, []).append(
                    StoredEvent(r.seq, r.type, r.step_key, r.at, r.data, r.prev_hash, r.hash)
                )
        for rid, run in runs.items():
            problems.extend(verify_chain(self._hasher, run, by_run.pop(rid, [])))
        for rid, orphans in by_run.items():
            problems.append(f"run {rid}: {len(orphans)} event(s) of a run that is not in the ledger - "
                            "the run was deleted, or events were added outside tminus")
        return problems

    # --- approvals --------------------------------------------------------------------------------

    def record_approval(
        self, run_id: str, step_key: str | None, *, approved: bool, by: str, host: str,
        reason: str | None = None,
    ) -> ApprovalRecord:
        """An operator's answer for a manual step (or the go/no-go when step_key is None)."""
        at = now_iso()
        with self._tx() as conn:
            if conn.execute(select(s.runs.c.id).where(s.runs.c.id == run_id)).first() is None:
                raise LedgerError(f"cannot approve: no run {run_id} in the ledger at {self.url}")
            new_id = conn.execute(insert(s.approvals).values(
                run_id=run_id, step_key=step_key, approved=approved, approved_by=by, host=host,
                reason=reason, at=at,
            )).inserted_primary_key
        assert new_id is not None
        return ApprovalRecord(int(new_id[0]), run_id, step_key, approved, by, host, reason, at)

    def approvals(self, run_id: str, step_key: str | None = None) -> list[ApprovalRecord]:
        """Approvals of a run, oldest first; only those of `step_key` when given."""
        query = select(s.approvals).where(s.approvals.c.run_id == run_id)
        if step_key is not None:
            query = query.where(s.approvals.c.step_key == step_key)
        with self._tx() as conn:
            rows = conn.execute(query.order_by(s.approvals.c.id)).all()
        return [
            ApprovalRecord(r.id, r.run_id, r.step_key, bool(r.approved), r.approved_by, r.host, r.reason, r.at)
            for r in rows
        ]

    # --- leases (logic in leases.py) --------------------------------------------------------------

    def acquire_lease(
        self, key: str, *, run_id: str, operator: str, host: str, pid: int, ttl: float = 15.0,
        wait: float = 0.0,
    ) -> Lease:
        lease = _leases.acquire(self, key, run_id=run_id, operator=operator, host=host, pid=pid, ttl=ttl,
                                wait=wait)
        self._leases.append(lease)
        return lease

    def get_lease(self, key: str) -> LeaseRecord | None:
        with self._tx() as conn:
            return _leases.read(conn, key)

    def break_lease(self, key: str, *, by: str, reason: str) -> LeaseRecord | None:
        """Remove the lease and record, in the holder's run, who broke it, when and why."""
        with self._tx() as conn:
            holder = _leases.read(conn, key)
            if holder is None:
                return None
            # Only the unlock that actually deletes the row records a note (two unlocks may race).
            if conn.execute(delete(s.leases).where(s.leases.c.key == key)).rowcount == 0:
                return None
            if conn.execute(select(s.runs.c.id).where(s.runs.c.id == holder.run_id)).first() is not None:
                data, text = normalise({"action": "unlock", "by": by, "reason": reason, "holder": holder.to_dict()})
                self._heads.pop(holder.run_id, None)  # the holder is usually another process: reread its head
                self._append_in(conn, holder.run_id, NOTE, None, now_iso(), data, text)
        return holder

    # --- plumbing ---------------------------------------------------------------------------------

    def close(self) -> None:
        for lease in self._leases:
            lease.stop_heartbeat()
        with self._lock:
            self._conn.close()
        self._engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """One short transaction on the shared connection; database errors become LedgerError."""
        with self._lock:
            try:
                with self._conn.begin():
                    yield self._conn
            except SQLAlchemyError as exc:
                raise LedgerError(f"ledger at {self.url}: {_first_line(exc)}") from exc

    def _check_key(self, found: dict[str, str], key: str | None) -> str | None:
        stored = found.get("key_check")
        if stored is not None:
            if key is None:
                return (f"the ledger at {self.url} is keyed (HMAC): set TMINUS_LEDGER_KEY to the key it was "
                        "created with to write to or verify it")
            if stored != self._hasher.key_check():
                return f"TMINUS_LEDGER_KEY does not match the key the ledger at {self.url} was created with"
            return None
        if key is None:
            return None
        with self._tx() as conn:
            if conn.execute(select(func.count()).select_from(s.runs)).scalar():
                return (f"TMINUS_LEDGER_KEY is set but the ledger at {self.url} was created without a key and "
                        "already holds runs: unset TMINUS_LEDGER_KEY, or use a new ledger for keyed runs")
            s.set_meta(conn, "key_check", self._hasher.key_check())
        return None

    def _require_key(self) -> None:
        if self._key_problem:
            raise LedgerError(self._key_problem)


def _run(row: Row[Any]) -> RunRecord:
    return RunRecord(**row._asdict())


def _first_line(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def connect(url: str, key: str | None) -> Ledger:
    """Open (and if needed create) the ledger at `url`; any database failure is a LedgerError."""
    url = s.normalise_url(url)
    engine = s.create(url)
    try:
        return Ledger(engine, url, key)
    except LedgerError:
        engine.dispose()
        raise
    except SQLAlchemyError as exc:
        engine.dispose()
        raise LedgerError(
            f"cannot open the ledger at {s.mask(url)}: {_first_line(exc)}\n"
            "    hint: check that the database is running and the URL (--ledger / TMINUS_LEDGER) is right"
        ) from exc
