"""Statements run straight on a test database (SQLite file or PostgreSQL), outside tminus."""

from __future__ import annotations

import re
import sqlite3

import psycopg

from tminus.db import pgtools


def run_sql(url: str, *statements: str) -> None:
    """Run each statement and commit, on the database a SQLAlchemy URL names."""
    if pgtools.backend(url) == "sqlite":
        conn = sqlite3.connect(pgtools.sqlite_path(url))
        try:
            for stmt in statements:
                conn.execute(stmt)
            conn.commit()
        finally:
            conn.close()
        return
    with psycopg.connect(**pgtools.pg_target(url).connect_kwargs(), autocommit=True) as conn:
        for stmt in statements:
            conn.execute(stmt)


_NAMED = re.compile(r"(?<!:):([A-Za-z_]\w*)")


def query(url: str, statement: str, **params: object) -> list[tuple[object, ...]]:
    """One statement with `:name` parameters, committed; the rows it returns (none for most writes).
    Straight on the driver, as an attacker with database access (or a crash) would leave the ledger."""
    if pgtools.backend(url) == "sqlite":
        conn = sqlite3.connect(pgtools.sqlite_path(url))
        try:
            cursor = conn.execute(statement, params)
            rows = [tuple(r) for r in cursor.fetchall()] if cursor.description else []
            conn.commit()
            return rows
        finally:
            conn.close()
    pg_statement = _NAMED.sub(r"%(\1)s", statement.replace("%", "%%"))
    with psycopg.connect(**pgtools.pg_target(url).connect_kwargs(), autocommit=True) as pg:
        cur = pg.execute(pg_statement, params)  # type: ignore[call-overload]
        return [tuple(r) for r in cur.fetchall()] if cur.description else []


def table_names(url: str) -> set[str]:
    """The tables of the database (SQLite's, or PostgreSQL's in the public schema)."""
    if pgtools.backend(url) == "sqlite":
        return {str(r[0]) for r in query(url, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {str(r[0]) for r in query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
