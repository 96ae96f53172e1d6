"""The ledger on PostgreSQL, through psycopg 3 directly: `?` placeholders become `%s`, a fence
share-locks its lease row, migrations hold an advisory lock, large reads use server-side cursors."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, ClassVar

import psycopg

from tminus.ledger.sql import Backend

_cursor_ids = itertools.count(1)


class PostgresBackend(Backend):
    name = "postgresql"
    error: ClassVar[type[Exception]] = psycopg.Error
    integrity_error: ClassVar[type[Exception]] = psycopg.IntegrityError

    HAS_META = "SELECT to_regclass('tminus_meta') IS NOT NULL"
    APPROVAL_ID = "SERIAL NOT NULL"
    SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(7355608)"  # two processes opening a new ledger at once
    # The lease row share-locked until the transaction ends: an unlock waits for the write in flight,
    # never cuts it.
    FENCE_LEASE = Backend.GET_LEASE + " FOR SHARE"
    MOVE_HEAD_FENCED = f"{Backend.MOVE_HEAD} AND EXISTS ({Backend.LEASE_HELD} FOR SHARE)"

    def __init__(self, url: str, shown_url: str, conninfo: str, *, read_only: bool) -> None:
        super().__init__(url, shown_url, read_only=read_only)
        self._conninfo = conninfo

    def open(self) -> psycopg.Connection[Any]:
        if self.read_only:
            return psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5,
                                   options="-c default_transaction_read_only=on")
        return psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5)

    def prepare(self, sql: str) -> str:
        return sql.replace("?", "%s")  # no statement of the ledger has a literal ? or %

    def stream(self, raw: Any, sql: str, params: tuple[Any, ...]) -> Iterator[Any]:
        cursor = raw.cursor(name=f"tminus_stream_{next(_cursor_ids)}")
        cursor.itersize = 2000
        try:
            cursor.execute(self.prepare(sql), params)
            yield from cursor
        finally:
            cursor.close()


__all__ = ["PostgresBackend"]
