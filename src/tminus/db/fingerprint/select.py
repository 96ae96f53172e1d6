"""Which tables a fingerprint covers, and how a table's row hashes become one checksum."""

from __future__ import annotations

import hashlib
import re

from tminus.errors import TminusError

# tminus's own bookkeeping: the migration tracking tables (default name; `_log` grows on every
# apply and revert, `_schema` holds the schema each revert is proven against, `_lock` is SQLite's
# lock row) and the ledger's `tminus_*` tables. Left out unless asked for.
_OWN = re.compile(r"^(schema_migrations(_log|_progress|_schema|_lock)?|tminus_.*)$")


class FingerprintError(TminusError):
    """A fingerprint could not be taken (unknown table, unreachable database)."""


def is_own_table(name: str) -> bool:
    """Whether `name` (unqualified) is one of tminus's own tables."""
    return bool(_OWN.match(name))


def select_tables(found: dict[str, tuple[str, str]], tables: list[str] | None) -> list[str]:
    if tables is None:
        return sorted(found)
    wanted = [t[len("public."):] if t.startswith("public.") else t for t in tables]
    missing = [t for t in wanted if t not in found]
    if missing:
        raise FingerprintError(
            f"no table {', '.join(missing)} in the database; expected one of: "
            f"{', '.join(sorted(found)) or '(no tables)'}. Fix the 'tables' list"
        )
    return sorted(set(wanted))


def combine(count: int, hi: int, lo: int) -> str:
    """The table checksum: sha256 of "count:sum_hi:sum_lo" (the sums of the rows' hash halves)."""
    return hashlib.sha256(f"{count}:{hi}:{lo}".encode()).hexdigest()[:32]
