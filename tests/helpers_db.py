"""Statements run straight on a test database (SQLite file or PostgreSQL), outside tminus."""

from __future__ import annotations

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
