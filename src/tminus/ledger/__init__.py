"""The ledger: every run and every event with its evidence, hash-chained, plus approvals and run locks.

Callers type against the interfaces (`LedgerReader`, `RunWriter`, `Ledger`, `HeldLease`) and open
a ledger with `open_reader` (read-only commands: never creates, migrates or writes) or
`open_ledger` (commands that write: creates and migrates). Importing this package stays light: a
database's driver (sqlite3, psycopg) is loaded when a ledger of that database is opened, and
SQLAlchemy never.
"""

from __future__ import annotations

import os

from tminus.ledger.interfaces import HeldLease, Ledger, LedgerReader, RunWriter
from tminus.ledger.records import ApprovalRecord, EventRecord, Fence, LeaseRecord, LedgerHead, RunRecord

DEFAULT_URL = "sqlite:///.tminus/ledger.db"


def open_ledger(url: str | None = None, *, key: str | None = None) -> Ledger:
    """Open the ledger at `url` ($TMINUS_LEDGER, else DEFAULT_URL) to write, creating its tables on
    first use and migrating older ones.

    `key` ($TMINUS_LEDGER_KEY when None) turns the chain hashes into HMACs. Raises LedgerError when
    the database is unreachable or was written by a newer tminus.
    """
    from tminus.ledger.store import connect

    return connect(_url(url), _key(key))


def open_reader(url: str | None = None, *, key: str | None = None) -> LedgerReader:
    """Open the ledger at `url` to read only: a missing ledger is a LedgerError (it is not created),
    an older schema is read as it is (not migrated), a newer one is refused, and nothing is written
    (SQLite opened read-only, PostgreSQL in read-only transactions). `key` as for open_ledger."""
    from tminus.ledger.store import connect_reader

    return connect_reader(_url(url), _key(key))


def _url(url: str | None) -> str:
    return url or os.environ.get("TMINUS_LEDGER") or DEFAULT_URL


def _key(key: str | None) -> str | None:
    return key if key is not None else os.environ.get("TMINUS_LEDGER_KEY") or None


__all__ = [
    "DEFAULT_URL",
    "ApprovalRecord",
    "EventRecord",
    "Fence",
    "HeldLease",
    "LeaseRecord",
    "Ledger",
    "LedgerHead",
    "LedgerReader",
    "RunRecord",
    "RunWriter",
    "open_ledger",
    "open_reader",
]
