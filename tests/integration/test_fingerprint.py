"""Fingerprints on the real local PostgreSQL and SQLite: order-independent, change-sensitive."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from tminus.db import pgtools
from tminus.db.fingerprint import FingerprintError, compare, fingerprint


def run_sql(url: str, *statements: str) -> None:
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


@pytest.fixture(params=["sqlite", "postgresql"])
def two_urls(request: pytest.FixtureRequest, tmp_path) -> tuple[str, str]:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    first = request.getfixturevalue("pg_url")
    # a second fresh database on the same server, dropped at the end
    target = pgtools.pg_target(first)
    name = pgtools.create_scratch(target, "tminus_t_fp_")
    request.addfinalizer(lambda: pgtools.drop_database(target, name))
    return first, first.rsplit("/", 1)[0] + "/" + name


CREATE = "CREATE TABLE notes (id INTEGER, body TEXT)"


def test_independent_of_insertion_order(two_urls: tuple[str, str]) -> None:
    a, b = two_urls
    run_sql(a, CREATE, "INSERT INTO notes VALUES (1, 'x')", "INSERT INTO notes VALUES (2, 'y')",
            "INSERT INTO notes VALUES (2, 'y')")
    run_sql(b, CREATE, "INSERT INTO notes VALUES (2, 'y')", "INSERT INTO notes VALUES (1, 'x')",
            "INSERT INTO notes VALUES (2, 'y')")
    fa, fb = fingerprint(a), fingerprint(b)
    assert fa == fb
    assert fa["notes"]["rows"] == 3 and len(fa["notes"]["checksum"]) == 32
    assert compare(fa, fb) == []


def test_changed_value_or_duplicate_differs(two_urls: tuple[str, str]) -> None:
    a, b = two_urls
    run_sql(a, CREATE, "INSERT INTO notes VALUES (1, 'x'), (2, 'y')")
    run_sql(b, CREATE, "INSERT INTO notes VALUES (1, 'x'), (2, 'Y')")
    assert fingerprint(a)["notes"]["checksum"] != fingerprint(b)["notes"]["checksum"]
    assert compare(fingerprint(a), fingerprint(b)) == ["table notes: content differs (2 rows, same count)"]
    # duplicates count: XOR-combining would let two identical rows cancel out; a sum does not
    run_sql(a, "DELETE FROM notes", "INSERT INTO notes VALUES (1, 'x'), (1, 'x'), (2, 'y'), (2, 'y')")
    run_sql(b, "DELETE FROM notes", "INSERT INTO notes VALUES (3, 'z'), (3, 'z'), (4, 'w'), (4, 'w')")
    assert fingerprint(a)["notes"]["checksum"] != fingerprint(b)["notes"]["checksum"]


def test_compare_messages(two_urls: tuple[str, str]) -> None:
    a, b = two_urls
    run_sql(a, CREATE, "CREATE TABLE gone (x INTEGER)", "INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    run_sql(b, CREATE, "CREATE TABLE fresh (x INTEGER)",
            "INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')")
    assert compare(fingerprint(a), fingerprint(b)) == [
        "table fresh is new (not in the earlier fingerprint)",
        "table gone missing after",
        "table notes: 3 rows vs 4 rows",
    ]


def test_tables_filter_and_unknown_table(two_urls: tuple[str, str]) -> None:
    a, _ = two_urls
    run_sql(a, CREATE, "CREATE TABLE other (x INTEGER)")
    assert list(fingerprint(a, ["notes"])) == ["notes"]
    with pytest.raises(FingerprintError, match=r"no table nope.*expected one of: notes, other"):
        fingerprint(a, ["nope"])


def test_pg_other_schemas_are_qualified(pg_url: str) -> None:
    run_sql(pg_url, CREATE, "CREATE SCHEMA audit", "CREATE TABLE audit.events (id INTEGER)",
            "INSERT INTO audit.events VALUES (1)")
    fp = fingerprint(pg_url)
    assert set(fp) == {"notes", "audit.events"}
    assert fp["audit.events"]["rows"] == 1
    assert list(fingerprint(pg_url, ["public.notes"])) == ["notes"]


def test_sqlite_missing_file_is_not_created(tmp_path) -> None:
    with pytest.raises(FingerprintError, match="does not exist"):
        fingerprint(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()
