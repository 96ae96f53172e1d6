"""The ledger on SQLite, through the standard `sqlite3` module: a writer's connection (WAL, the write
lock taken up front) and a reader's (never creates, never writes)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

from tminus.errors import LedgerError, LedgerMissing
from tminus.ledger.sql import Backend

# SQLite's busy timeout: another process (`tminus approve`) may hold the write lock.
BUSY_TIMEOUT = 30


class SqliteBackend(Backend):
    name = "sqlite"
    error: ClassVar[type[Exception]] = sqlite3.Error
    integrity_error: ClassVar[type[Exception]] = sqlite3.IntegrityError

    HAS_META = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tminus_meta'"

    def __init__(self, url: str, shown_url: str, database: str | None, *, read_only: bool) -> None:
        super().__init__(url, shown_url, read_only=read_only)
        self.database = database or ":memory:"
        # A writer takes the write lock up front: a transaction that read first and writes later gets
        # SQLITE_BUSY at once instead of waiting. A reader's transaction is deferred: one consistent
        # snapshot, no lock taken (readers never block the writer in WAL mode, nor it them).
        self.BEGIN = "BEGIN" if read_only else "BEGIN IMMEDIATE"  # type: ignore[misc]
        self._uri = self._reader_uri() if read_only else None
        if not read_only:
            self._make_folder()

    def open(self) -> sqlite3.Connection:
        if self._uri is not None:
            return sqlite3.connect(self._uri, uri=True, timeout=BUSY_TIMEOUT, check_same_thread=False,
                                   isolation_level=None)
        # isolation_level None: no implicit BEGIN (it covers only DML); transactions are explicit.
        conn = sqlite3.connect(self.database, timeout=BUSY_TIMEOUT, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, and vice versa
        conn.execute("PRAGMA synchronous=NORMAL")  # durable at every commit in WAL, without an fsync each
        return conn

    def _make_folder(self) -> None:
        database = self.database
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(f"cannot create the folder for the ledger {database}: {exc}") from exc

    def _reader_uri(self) -> str:
        """A `file:...?mode=ro` URI: the main file is never written (no journal-mode switch, no
        checkpoint). In WAL mode SQLite still needs the -shm index beside it: it creates an empty
        -wal/-shm pair when none exists. Where it cannot (a read-only folder) and no writer is active
        (no -wal), the file is opened immutable."""
        database = self.database
        if database == ":memory:" or database.startswith("file:"):
            raise LedgerError(f"ledger URL {self.shown_url!r}: a reader needs the path of a ledger file")
        path = Path(database).resolve()
        if not path.is_file():
            raise LedgerMissing(
                f"no ledger at {self.shown_url}: the file {path} does not exist, so nothing has been recorded "
                "there; the first `tminus run` or `tminus gate` with this ledger creates it", url=self.shown_url,
            )
        uri = "file:" + quote(str(path)) + "?mode=ro"
        if not os.access(path.parent, os.W_OK) and not Path(f"{path}-wal").exists():
            uri += "&immutable=1"
        return uri


__all__ = ["SqliteBackend"]
