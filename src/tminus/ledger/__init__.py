"""The ledger: every run and every event with its evidence, hash-chained, plus approvals and run locks.

Importing this package stays light: SQLAlchemy is loaded when a ledger is opened (or when
`Ledger`/`Lease` are first touched), so `tminus --version` does not pay for it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from tminus.ledger.records import ApprovalRecord, EventRecord, LeaseRecord, RunRecord

if TYPE_CHECKING:
    from tminus.ledger.leases import Lease
    from tminus.ledger.store import Ledger

DEFAULT_URL = "sqlite:///.tminus/ledger.db"


def open_ledger(url: str | None = None, *, key: str | None = None) -> Ledger:
    """Open the ledger at `url` ($TMINUS_LEDGER, else DEFAULT_URL), creating its tables on first use.

    `key` ($TMINUS_LEDGER_KEY when None) turns the chain hashes into HMACs. Raises LedgerError when
    the database is unreachable or was written by a newer tminus.
    """
    from tminus.ledger.store import connect

    url = url or os.environ.get("TMINUS_LEDGER") or DEFAULT_URL
    key = key if key is not None else os.environ.get("TMINUS_LEDGER_KEY") or None
    return connect(url, key)


def __getattr__(name: str) -> Any:
    if name == "Ledger":
        from tminus.ledger.store import Ledger

        return Ledger
    if name == "Lease":
        from tminus.ledger.leases import Lease

        return Lease
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_URL",
    "ApprovalRecord",
    "EventRecord",
    "Lease",
    "LeaseRecord",
    "Ledger",
    "RunRecord",
    "open_ledger",
]
