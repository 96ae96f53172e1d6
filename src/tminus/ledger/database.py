"""The database under a ledger: a backend's connection (explicit transactions, savepoints), one shared
connection for short transactions, and fresh connections for whoever needs their own (lease heartbeats).

`ConnectionSource` is all that leases.py sees of it, so leases and the store do not know each other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any, Protocol

from tminus.errors import LedgerError
from tminus.ledger.sql import Backend


class Connection:
    """One DB-API connection of a backend, in autocommit mode: `transaction()` begins and ends them."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.sql = backend  # the statements, as class attributes of the backend
        self._raw = backend.open()
        self._prepared: dict[str, str] = {}

    @property
    def dialect(self) -> str:
        return self.backend.name

    @property
    def closed(self) -> bool:
        return bool(getattr(self._raw, "closed", False))

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        """A cursor over the statement's result (rowcount, fetchone, fetchall, iteration)."""
        prepared = self._prepared.get(sql)
        if prepared is None:
            prepared = self._prepared[sql] = self.backend.prepare(sql)
        return self._raw.execute(prepared, params)

    def first(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        return self.execute(sql, params).fetchone()

    def stream(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[Any]:
        """Rows read as they are iterated, not all at once (verify over a ledger larger than memory)."""
        return iter(self.backend.stream(self._raw, sql, params))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Committed when the block ends, rolled back when it raises."""
        self._raw.execute(self.backend.BEGIN)
        try:
            yield self
        except BaseException:
            self._rollback()
            raise
        try:
            self._raw.execute("COMMIT")
        except BaseException:  # e.g. SQLite busy at commit: the transaction is still open, end it
            self._rollback()
            raise

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an error inside undoes only it, and the outer transaction stays usable."""
        self._raw.execute("SAVEPOINT tminus_nested")
        try:
            yield
        except BaseException:
            self._raw.execute("ROLLBACK TO SAVEPOINT tminus_nested")
            self._raw.execute("RELEASE SAVEPOINT tminus_nested")
            raise
        self._raw.execute("RELEASE SAVEPOINT tminus_nested")

    def _rollback(self) -> None:
        with suppress(self.backend.error):  # the connection is gone, or no transaction is open: nothing to undo
            self._raw.execute("ROLLBACK")

    def close(self) -> None:
        with suppress(self.backend.error):
            self._raw.close()


class ConnectionSource(Protocol):
    """Where lease code gets its connections."""

    @property
    def dialect(self) -> str: ...

    @property
    def error(self) -> type[Exception]: ...

    def transaction(self) -> AbstractContextManager[Connection]: ...

    def connect(self) -> Connection: ...


class Database:
    """Safe to share between threads: transactions on the shared connection are serialised."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.url = backend.shown_url
        self._lock = threading.RLock()
        self._conn = Connection(backend)

    @property
    def dialect(self) -> str:
        return self.backend.name

    @property
    def error(self) -> type[Exception]:
        return self.backend.error

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One short transaction on the shared connection; database errors become LedgerError
        (typed errors raised inside, like LeaseLost, pass through and roll it back)."""
        try:
            with self.transaction_raw() as conn:
                yield conn
        except self.backend.error as exc:
            raise LedgerError(f"ledger at {self.url}: {first_line(exc)}") from exc

    @contextmanager
    def transaction_raw(self) -> Iterator[Connection]:
        """The same, letting the driver's errors through (opening a ledger words them itself)."""
        with self._lock:
            if self._conn.closed:  # the server closed it (a restart): one new connection, as a pool would
                self._conn = Connection(self.backend)
            with self._conn.transaction() as conn:
                yield conn

    def connect(self) -> Connection:
        """A connection of the caller's own (the caller closes it)."""
        return Connection(self.backend)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


__all__ = ["Connection", "ConnectionSource", "Database", "first_line"]
