"""Reading the ledger: runs, events (tailing after a sequence number), approvals, leases, verify.

`SqlReader` opened by `open_reader` never creates, migrates or writes; `Ledger` (store.py) extends
it with the writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tminus.errors import LedgerError
from tminus.ledger import schema as s
from tminus.ledger.chain import Hasher, StoredEvent, StoredLink, verify_chain, verify_links
from tminus.ledger.database import Connection, Database
from tminus.ledger.leases import lease_record
from tminus.ledger.records import ApprovalRecord, EventRecord, LeaseRecord, LedgerHead, RunRecord, iso_microseconds
from tminus.ledger.sql import RUN_COLUMNS, column_list, select_list

_RUNS = f"SELECT {select_list(RUN_COLUMNS)} FROM tminus_runs"


class SqlReader:
    """The read side of one open ledger (implements interfaces.LedgerReader)."""

    def __init__(self, db: Database, hasher: Hasher, meta: dict[str, str]) -> None:
        self._db = db
        self._hasher = hasher
        self._missing = s.missing_columns(int(meta.get("schema_version", s.SCHEMA_VERSION)))
        self._chainless = "tminus_events.lseq" in self._missing
        self._key_problem = key_problem(db, hasher, meta)
        # The statements of this ledger's schema version (a reader reads older ones as they are).
        self._event_columns = column_list("tminus_events", self._missing)
        events = (f"SELECT {select_list(self._event_columns)} FROM tminus_events "
                  "WHERE run_id = ? AND seq > ? ORDER BY seq")
        self._events_sql, self._events_page_sql = events, events + " LIMIT ?"
        self._approval_columns = column_list("tminus_approvals", self._missing)
        self._approvals_sql = f"SELECT {select_list(self._approval_columns)} FROM tminus_approvals WHERE run_id = ?"
        self._lease_columns = column_list("tminus_leases", self._missing)
        self._lease_sql = f'SELECT {select_list(self._lease_columns)} FROM tminus_leases WHERE "key" = ?'

    @property
    def url(self) -> str:
        return self._db.url

    # --- runs -------------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id, or with this unique id prefix. An ambiguous prefix is an error."""
        with self._db.transaction() as conn:
            row = conn.first(_RUNS + " WHERE id = ?", (run_id,))
            if row is not None:
                return RunRecord(*row)
            pattern = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = conn.execute(_RUNS + " WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 6", (pattern,)).fetchall()
        if len(rows) > 1:
            shown = ", ".join(r[0] for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise LedgerError(f"run id prefix '{run_id}' is ambiguous: it matches {shown}; give more characters")
        return RunRecord(*rows[0]) if rows else None

    def list_runs(
        self, *, runbook: str | None = None, environment: str | None = None, status: str | None = None,
        limit: int = 20, kind: str | None = None, started_after: float | None = None,
        started_before: float | None = None,
    ) -> list[RunRecord]:
        """Newest first; `kind`: run, gate or monitor; `started_after`/`started_before`: epoch seconds
        (at or after, strictly before)."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("runbook_name", runbook), ("environment", environment), ("status", status),
                              ("kind", kind)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        # started_at is ISO 8601 UTC to the microsecond (records.now_iso): text order is time order
        if started_after is not None:
            where.append("started_at >= ?")
            params.append(iso_microseconds(started_after))
        if started_before is not None:
            where.append("started_at < ?")
            params.append(iso_microseconds(started_before))
        query = _RUNS + (" WHERE " + " AND ".join(where) if where else "") + \
            " ORDER BY started_at DESC, id DESC LIMIT ?"
        with self._db.transaction() as conn:
            return [RunRecord(*r) for r in conn.execute(query, (*params, limit)).fetchall()]

    # --- events -----------------------------------------------------------------------------------

    def events(self, run_id: str, after: int = 0, limit: int | None = None) -> list[EventRecord]:
        """The run's events in seq order; only those after seq `after` (tailing), at most `limit`."""
        with self._db.transaction() as conn:
            if limit is None:
                rows = conn.execute(self._events_sql, (run_id, after)).fetchall()
            else:
                rows = conn.execute(self._events_page_sql, (run_id, after, limit)).fetchall()
        loads = json.loads
        return [EventRecord(r[0], r[1], r[2], r[3], r[4], loads(r[5]), r[6], r[7]) for r in rows]

    def iter_events(self, run_id: str, after: int = 0, *, chunk: int = 1000) -> Iterator[EventRecord]:
        """The run's events in seq order, read `chunk` at a time: memory stays flat however long the run.
        Each page is its own short transaction (keyed on seq, so none is skipped or read twice): a
        transaction held open across the caller's loop would hold the connection, and on SQLite the
        WAL's checkpoint, for as long as the caller takes."""
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
        anywhere may be this run's deleted tail.

        Streamed in one read transaction (one consistent snapshot): runs one at a time, each run's
        events, then the links, so memory does not grow with the ledger."""
        if self._key_problem:
            raise LedgerError(self._key_problem)
        problems: list[str] = []
        with self._db.transaction() as conn:
            if run_id is None:
                runs: Iterator[Any] = conn.stream(_RUNS + " ORDER BY started_at, id")
            else:
                found = conn.first(_RUNS + " WHERE id = ?", (run_id,))
                if found is None:
                    raise LedgerError(f"no run {run_id} in the ledger at {self.url}")
                runs = iter([found])
            for row in runs:
                run = dict(zip(RUN_COLUMNS, row, strict=True))
                problems.extend(verify_chain(self._hasher, run, self._stored_events(conn, run["id"])))
            if run_id is None:
                orphans = conn.execute("SELECT run_id, count(*) FROM tminus_events WHERE run_id NOT IN "
                                       "(SELECT id FROM tminus_runs) GROUP BY run_id ORDER BY run_id").fetchall()
                problems.extend(f"run {rid}: {count} event(s) of a run that is not in the ledger - "
                                "the run was deleted, or events were added outside tminus" for rid, count in orphans)
            problems.extend(self._verify_links(conn, head))
        return problems

    def _stored_events(self, conn: Connection, run_id: str) -> Iterator[StoredEvent]:
        linked = not self._chainless
        # A plain cursor: SQLite steps it as it is read; psycopg holds one run's rows (a named cursor
        # per run would cost three round trips each).
        for r in conn.execute(self._events_sql, (run_id, 0)):
            yield StoredEvent(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8] if linked else None)

    def ledger_head(self) -> LedgerHead:
        """The ledger-wide chain's head now: its last link (0 links on a ledger older than schema 3)."""
        if self._chainless:
            return LedgerHead(0, "")
        with self._db.transaction() as conn:
            row = conn.first(conn.sql.LAST_LINK)
        return LedgerHead(0, "") if row is None else LedgerHead(int(row[0]), str(row[1]))

    def _verify_links(self, conn: Connection, expected: LedgerHead | None) -> list[str]:
        if self._chainless:  # an older schema, read as it is: its events have no links yet
            return [] if expected is None else [
                "ledger-wide chain: this ledger predates it (schema version < 3), so no recorded head can be checked"]
        links = map(StoredLink._make, conn.stream(conn.sql.LINKS))
        return verify_links(self._hasher, links, None if expected is None else (expected.count, expected.hash))

    # --- approvals and leases ---------------------------------------------------------------------

    def approvals(self, run_id: str, step_key: str | None = None) -> list[ApprovalRecord]:
        """Approvals of a run, oldest first; only those of `step_key` when given."""
        query, params = self._approvals_sql, [run_id]
        if step_key is not None:
            query, params = query + " AND step_key = ?", [run_id, step_key]
        with self._db.transaction() as conn:
            rows = conn.execute(query + " ORDER BY id", params).fetchall()
        return [approval_record(dict(zip(self._approval_columns, r, strict=True))) for r in rows]

    def get_lease(self, key: str) -> LeaseRecord | None:
        with self._db.transaction() as conn:
            row = conn.first(self._lease_sql, (key,))
        return None if row is None else lease_record(dict(zip(self._lease_columns, row, strict=True)))

    # --- plumbing ---------------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqlReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
        if conn.first(conn.sql.COUNT_RUNS)[0]:
            return (f"TMINUS_LEDGER_KEY is set but the ledger at {db.url} was created without a key and "
                    "already holds runs: unset TMINUS_LEDGER_KEY, or use a new ledger for keyed runs")
    return None


__all__ = ["SqlReader", "approval_record", "key_problem"]
