"""Every statement the ledger runs, as class attributes of `Backend` (after yoyo-migrations' backends):
one module per database (sqlite.py, postgres.py) overrides what its dialect spells differently and
says how to connect. Placeholders are `?`; a backend whose driver wants another style converts them.

The DDL is frozen as released (tminus's schema versions, schema.py): the tables and columns are the
ones SQLAlchemy created before the ledger dropped it, so a ledger written by any version opens as is.
"""

from __future__ import annotations

from typing import Any, ClassVar

# The live columns of each table (schema version 5), in the order records are built from.
RUN_COLUMNS = ("id", "runbook_name", "runbook_path", "content_hash", "runbook_text", "environment", "operator",
               "host", "pid", "kind", "parent_run_id", "status", "exit_code", "reason", "started_at", "finished_at",
               "event_count", "head_hash")
EVENT_COLUMNS = ("run_id", "seq", "type", "step_key", "at", "data", "prev_hash", "hash", "lseq", "lhash")
APPROVAL_COLUMNS = ("id", "run_id", "step_key", "approved", "approved_by", "host", "reason", "at", "request_seq",
                    "consumed_at", "identity", "for_seq", "lead")
LEASE_COLUMNS = ("key", "run_id", "operator", "host", "pid", "acquired_at", "heartbeat_at", "ttl", "token",
                 "generation")
TABLE_COLUMNS = {"tminus_runs": RUN_COLUMNS, "tminus_events": EVENT_COLUMNS, "tminus_approvals": APPROVAL_COLUMNS,
                 "tminus_leases": LEASE_COLUMNS}


def column_list(table: str, missing: frozenset[str] | set[str] = frozenset()) -> tuple[str, ...]:
    """The table's columns a ledger has (a reader reads older schemas, `missing` 'table.column')."""
    return tuple(c for c in TABLE_COLUMNS[table] if f"{table}.{c}" not in missing)


def select_list(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' if c == "key" else c for c in columns)


class Backend:
    """The SQL of the ledger, for a database that speaks standard SQL; subclasses say how to connect."""

    name: ClassVar[str]

    # --- schema (frozen: released versions never change) -------------------------------------------
    HAS_META: ClassVar[str]
    CREATE_META = 'CREATE TABLE tminus_meta ("key" VARCHAR(64) NOT NULL, value TEXT NOT NULL, PRIMARY KEY ("key"))'
    APPROVAL_ID: ClassVar[str] = "INTEGER NOT NULL"
    SCHEMA_LOCK: ClassVar[str | None] = None  # taken while migrating (two processes opening a new ledger)

    @classmethod
    def v1_tables(cls) -> tuple[str, ...]:
        return (
            "CREATE TABLE tminus_runs (id VARCHAR(64) NOT NULL, runbook_name VARCHAR(200) NOT NULL, "
            "runbook_path TEXT NOT NULL, content_hash VARCHAR(128) NOT NULL, runbook_text TEXT NOT NULL, "
            "environment VARCHAR(100) NOT NULL, operator VARCHAR(200) NOT NULL, host VARCHAR(255) NOT NULL, "
            "pid INTEGER NOT NULL, kind VARCHAR(20) NOT NULL, parent_run_id VARCHAR(64), status VARCHAR(20) NOT NULL, "
            "exit_code INTEGER, reason TEXT, started_at VARCHAR(40) NOT NULL, finished_at VARCHAR(40), "
            "event_count INTEGER NOT NULL, head_hash VARCHAR(64) NOT NULL, PRIMARY KEY (id))",
            "CREATE INDEX tminus_runs_by_start ON tminus_runs (started_at)",
            "CREATE INDEX tminus_runs_by_runbook ON tminus_runs (runbook_name, environment, started_at)",
            # data is TEXT, not JSON/JSONB: JSONB reorders keys and normalises numbers, and the hash
            # covers the exact canonical text.
            "CREATE TABLE tminus_events (run_id VARCHAR(64) NOT NULL, seq INTEGER NOT NULL, type VARCHAR(40) NOT NULL, "
            "step_key VARCHAR(300), at VARCHAR(40) NOT NULL, data TEXT NOT NULL, prev_hash VARCHAR(64) NOT NULL, "
            "hash VARCHAR(64) NOT NULL, PRIMARY KEY (run_id, seq))",
            f"CREATE TABLE tminus_approvals (id {cls.APPROVAL_ID}, run_id VARCHAR(64) NOT NULL, step_key VARCHAR(300), "
            "approved BOOLEAN NOT NULL, approved_by VARCHAR(200) NOT NULL, host VARCHAR(255) NOT NULL, reason TEXT, "
            "at VARCHAR(40) NOT NULL, PRIMARY KEY (id))",
            "CREATE INDEX ix_tminus_approvals_run_id ON tminus_approvals (run_id)",
            # Times are epoch seconds so staleness is arithmetic; `token` identifies one acquisition.
            'CREATE TABLE tminus_leases ("key" VARCHAR(400) NOT NULL, run_id VARCHAR(64) NOT NULL, '
            "operator VARCHAR(200) NOT NULL, host VARCHAR(255) NOT NULL, pid INTEGER NOT NULL, "
            "acquired_at FLOAT NOT NULL, heartbeat_at FLOAT NOT NULL, ttl FLOAT NOT NULL, token VARCHAR(64) NOT NULL, "
            'PRIMARY KEY ("key"))',
        )

    CREATE_LEASE_GENERATIONS = ('CREATE TABLE tminus_lease_generations ("key" VARCHAR(400) NOT NULL, '
                                'generation INTEGER NOT NULL, PRIMARY KEY ("key"))')
    ONE_PER_REQUEST = "CREATE UNIQUE INDEX tminus_approvals_by_request ON tminus_approvals (run_id, request_seq)"
    ONE_PER_LINK = "CREATE UNIQUE INDEX tminus_events_by_link ON tminus_events (lseq)"
    ONE_LEAD_PER_REQUEST = "CREATE UNIQUE INDEX tminus_approvals_lead ON tminus_approvals (run_id, for_seq, lead)"
    ADD_COLUMN = "ALTER TABLE {table} ADD COLUMN {name} {ddl}"
    V2_GIVEN = ("SELECT run_id, seq, type, step_key, data, at FROM tminus_events WHERE type IN (?, ?) "
                "ORDER BY run_id, seq")
    V5_LEADS = "UPDATE tminus_approvals SET for_seq = request_seq, lead = 1 WHERE request_seq IS NOT NULL"

    READ_META = 'SELECT "key", value FROM tminus_meta'
    UPDATE_META = 'UPDATE tminus_meta SET value = ? WHERE "key" = ?'
    INSERT_META = 'INSERT INTO tminus_meta ("key", value) VALUES (?, ?)'

    # --- runs ----------------------------------------------------------------------------------------
    INSERT_RUN = f"INSERT INTO tminus_runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})"
    RUN_EXISTS = "SELECT id FROM tminus_runs WHERE id = ?"
    COUNT_RUNS = "SELECT count(*) FROM tminus_runs"
    RUN_STATUS = "SELECT status FROM tminus_runs WHERE id = ?"
    RUN_HEAD = "SELECT event_count, head_hash FROM tminus_runs WHERE id = ?"
    SET_STATUS = "UPDATE tminus_runs SET status = ?, exit_code = ?, reason = ?, finished_at = ? WHERE id = ?"
    # Compare-and-set on a run's head: nothing moves if another process appended since it was read.
    MOVE_HEAD = ("UPDATE tminus_runs SET event_count = ?, head_hash = ? "
                 "WHERE id = ? AND event_count = ? AND head_hash = ?")
    # The same, only while the run's lease is still this acquisition (key, token, generation): a fenced
    # append checks its fence and moves the head in one statement (one round trip fewer).
    LEASE_HELD = 'SELECT 1 FROM tminus_leases WHERE "key" = ? AND token = ? AND generation = ?'
    MOVE_HEAD_FENCED = f"{MOVE_HEAD} AND EXISTS ({LEASE_HELD})"

    # --- events --------------------------------------------------------------------------------------
    # The event with its link, unless another writer took that link first: then nothing is inserted,
    # no error aborts the transaction, and RETURNING gives no row (the caller relinks).
    INSERT_LINKED = (f"INSERT INTO tminus_events ({', '.join(EVENT_COLUMNS)}) "
                     f"VALUES ({', '.join('?' * len(EVENT_COLUMNS))}) ON CONFLICT (lseq) DO NOTHING RETURNING lseq")
    LAST_LINK = ("SELECT lseq, lhash FROM tminus_events "
                 "WHERE lseq = (SELECT max(lseq) FROM tminus_events)")
    LINKS = "SELECT lseq, run_id, seq, hash, lhash FROM tminus_events WHERE lseq IS NOT NULL ORDER BY lseq"
    APPROVAL_EVENTS = ("SELECT seq, type, step_key FROM tminus_events WHERE run_id = ? AND type IN (?, ?, ?) "
                       "ORDER BY seq")

    # --- approvals -----------------------------------------------------------------------------------
    INSERT_APPROVAL = ("INSERT INTO tminus_approvals (run_id, step_key, approved, approved_by, host, reason, at, "
                       "identity, for_seq, lead) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id")
    TAKE_APPROVAL = ("UPDATE tminus_approvals SET request_seq = ?, consumed_at = ? "
                     "WHERE id = ? AND run_id = ? AND request_seq IS NULL")

    # --- leases --------------------------------------------------------------------------------------
    INSERT_LEASE = ('INSERT INTO tminus_leases ("key", run_id, operator, host, pid, acquired_at, heartbeat_at, ttl, '
                    "token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
    GET_LEASE = f'SELECT {select_list(LEASE_COLUMNS)} FROM tminus_leases WHERE "key" = ?'
    FENCE_LEASE = GET_LEASE  # PostgreSQL share-locks the row (postgres.py)
    RETAKE_LEASE = ("UPDATE tminus_leases SET run_id = ?, operator = ?, host = ?, pid = ?, acquired_at = ?, "
                    'heartbeat_at = ?, ttl = ?, token = ? WHERE "key" = ? AND token = ?')
    DELETE_OUR_LEASE = 'DELETE FROM tminus_leases WHERE "key" = ? AND token = ?'
    DELETE_LEASE = 'DELETE FROM tminus_leases WHERE "key" = ?'
    HEARTBEAT = 'UPDATE tminus_leases SET heartbeat_at = ? WHERE "key" = ? AND token = ?'
    BUMP_GENERATION = ('INSERT INTO tminus_lease_generations ("key", generation) VALUES (?, 1) ON CONFLICT ("key") '
                       "DO UPDATE SET generation = tminus_lease_generations.generation + 1")
    GET_GENERATION = 'SELECT generation FROM tminus_lease_generations WHERE "key" = ?'
    SET_GENERATION = 'UPDATE tminus_leases SET generation = ? WHERE "key" = ? AND token = ?'

    # --- transactions --------------------------------------------------------------------------------
    BEGIN: ClassVar[str] = "BEGIN"

    def __init__(self, url: str, shown_url: str, *, read_only: bool) -> None:
        self.url = url
        self.shown_url = shown_url
        self.read_only = read_only

    # What each database module provides.
    error: ClassVar[type[Exception]]  # the driver's base error: becomes a LedgerError
    integrity_error: ClassVar[type[Exception]]

    def open(self) -> Any:
        """A new DB-API connection in autocommit mode: transactions are begun explicitly."""
        raise NotImplementedError

    def prepare(self, sql: str) -> str:
        """The statement in the driver's placeholder style."""
        return sql

    def stream(self, raw: Any, sql: str, params: tuple[Any, ...]) -> Any:
        """An iterating cursor over a large result (rows fetched as they are read), in the open transaction."""
        return raw.execute(self.prepare(sql), params)


__all__ = ["APPROVAL_COLUMNS", "EVENT_COLUMNS", "LEASE_COLUMNS", "RUN_COLUMNS", "Backend", "column_list",
           "select_list"]
