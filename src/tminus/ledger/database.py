"""The database under a ledger: the SQLAlchemy engine, one shared connection for short transactions,
and fresh connections for whoever needs their own (lease heartbeats).

`ConnectionSource` is all that leases.py sees of it, so leases and the store do not know each other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from tminus.errors import LedgerError


class ConnectionSource(Protocol):
    """Where lease code gets its connections."""

    @property
    def dialect(self) -> str: ...

    def transaction(self) -> AbstractContextManager[Connection]: ...

    def connect(self) -> Connection: ...


class Database:
    """Safe to share between threads: transactions on the shared connection are serialised."""

    def __init__(self, engine: Engine, shown_url: str) -> None:
        self.engine = engine
        self.url = shown_url
        self._lock = threading.RLock()
        self._conn = engine.connect()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One short transaction on the shared connection; database errors become LedgerError
        (typed errors raised inside, like LeaseLost, pass through and roll it back)."""
        with self._lock:
            try:
                with self._conn.begin():
                    yield self._conn
            except SQLAlchemyError as exc:
                raise LedgerError(f"ledger at {self.url}: {first_line(exc)}") from exc

    def connect(self) -> Connection:
        """A connection of the caller's own (the caller closes it)."""
        return self.engine.connect()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        self.engine.dispose()


def first_line(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


__all__ = ["ConnectionSource", "Database", "first_line"]
