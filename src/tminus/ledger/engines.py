"""Ledger URLs and the backend behind each: SQLite (sqlite.py) or PostgreSQL (postgres.py), opened to
write (WAL, write lock taken up front) or to read (never creates, never writes). Each backend's driver
is imported only when a ledger of that database is opened."""

from __future__ import annotations

import re
from urllib.parse import unquote

from tminus.errors import LedgerError
from tminus.ledger.sql import Backend

# scheme://[user[:password]@]host-and-the-rest, as a database URL is written (RFC 1738 style).
_URL = re.compile(r"^(?P<scheme>[A-Za-z][\w+.-]*)://(?P<rest>.*)$", re.DOTALL)
_PASSWORD = re.compile(r"^(?P<scheme>[^:/]+://[^:/@]*:)[^@/]*(?=@)")


def mask(url: str) -> str:
    """The URL with its password replaced by ***, safe for messages and logs."""
    return _PASSWORD.sub(r"\g<scheme>***", url, count=1)


def normalise_url(url: str) -> str:
    """postgres:// and postgresql:// mean psycopg 3, the driver tminus ships with."""
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def create(url: str, *, read_only: bool = False) -> Backend:
    """The backend for a ledger URL. `read_only`: it never creates the file or the database, and its
    connections cannot write (SQLite opened with mode=ro, PostgreSQL in read-only transactions)."""
    match = _URL.match(url)
    if match is None:
        raise LedgerError(
            f"ledger URL {mask(url)!r} is not a database URL: expected sqlite:///path/to/ledger.db "
            "or postgresql+psycopg://user:password@host/database"
        )
    scheme, rest = match["scheme"], match["rest"]
    database = scheme.partition("+")[0]
    if database == "sqlite":
        from tminus.ledger.sqlite import SqliteBackend

        path = unquote(rest.partition("/")[2].partition("?")[0]) or None
        return SqliteBackend(url, mask(url), path, read_only=read_only)
    if database == "postgresql":
        if scheme not in ("postgresql", "postgresql+psycopg"):
            raise LedgerError(f"ledger URL {mask(url)!r}: driver '{scheme.partition('+')[2]}' is not supported; "
                              "tminus uses psycopg 3 (postgresql+psycopg://)")
        from tminus.ledger.postgres import PostgresBackend

        return PostgresBackend(url, mask(url), "postgresql://" + rest, read_only=read_only)
    raise LedgerError(f"ledger URL {mask(url)!r}: unsupported database '{database}'; use sqlite or postgresql")


__all__ = ["create", "mask", "normalise_url"]
