"""Pure helpers of the backup code: URLs to libpq, names, version-mismatch parsing, rotation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tminus.db import pgtools
from tminus.db.backup import backup_name, checksum_path, list_backups, read_checksum, rotate, write_checksum


def test_pg_target_env_keeps_password_off_the_command_line() -> None:
    t = pgtools.pg_target("postgresql+psycopg://app:s3cr%40t@db.example:6543/shop?sslmode=require")
    env = t.env()
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGDATABASE"]) == ("db.example", "6543", "app", "shop")
    assert env["PGPASSWORD"] == "s3cr@t" and env["PGSSLMODE"] == "require"
    assert "s3cr" not in t.display() and "***" in t.display()
    assert "s3cr" not in pgtools.mask_url("postgresql://app:s3cr%40t@db.example/shop")


def test_version_mismatch_message() -> None:
    stderr = ("pg_dump: error: aborting because of server version mismatch\n"
              "pg_dump: detail: server version: 16.2 (Debian 16.2-1); pg_dump version: 15.20 (Debian 15.20-0)\n")
    assert pgtools.parse_version_mismatch(stderr) == ("15.20", "16.2")
    err = pgtools.PgVersionMismatch("15.20", "16.2")
    assert "pg_dump 15.20" in str(err) and "16.2" in str(err) and "postgresql-client-16" in str(err)
    assert pgtools.parse_version_mismatch("pg_dump: error: connection refused") is None


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(pgtools.DatabaseUrlError, match="not 'mysql'"):
        pgtools.backend("mysql://u:p@h/db")
    with pytest.raises(pgtools.DatabaseUrlError, match="SQLite file URL"):
        pgtools.sqlite_path("sqlite://")


def test_relative_sqlite_url_resolves_against_base_dir(tmp_path: Path) -> None:
    assert pgtools.resolve_url("sqlite:///data/app.db", tmp_path) == f"sqlite:///{tmp_path / 'data/app.db'}"
    assert pgtools.resolve_url("postgresql://h/db", tmp_path) == "postgresql://h/db"


def test_backup_name_sorts_by_time() -> None:
    t = dt.datetime(2025, 3, 1, 12, 0, 5, 123456, tzinfo=dt.UTC)
    assert backup_name("my-db", "prod/eu", ".dump", t) == "my_db-prod_eu-20250301T120005.123Z.dump"


def test_checksum_file_roundtrip(tmp_path: Path) -> None:
    f = tmp_path / "x.db"
    f.write_bytes(b"x")
    assert read_checksum(f) is None
    write_checksum(f, "A" * 64)
    assert checksum_path(f).read_text() == f"{'A' * 64}  x.db\n"
    assert read_checksum(f) == "a" * 64
    checksum_path(f).write_text("garbage\n")
    assert read_checksum(f) is None


def test_rotation_keeps_newest_and_ignores_other_files(tmp_path: Path) -> None:
    import hashlib

    names = [f"app-l-2025010{i}T000000.000Z.db" for i in range(1, 6)]
    for n in names:
        (tmp_path / n).write_bytes(n.encode())
        write_checksum(tmp_path / n, hashlib.sha256(n.encode()).hexdigest())
    (tmp_path / "app-l-20250109T000000.000Z.db.partial").write_bytes(b"crashed")
    (tmp_path / "app-other-20250101T000000.000Z.db").write_bytes(b"other label")
    deleted = rotate(tmp_path, "app", "l", ".db", keep=2)
    assert sorted(p.name for p in deleted) == names[:3]
    assert [p.name for p in list_backups(tmp_path, "app", "l", ".db")] == [names[4], names[3]]
    assert (tmp_path / "app-l-20250109T000000.000Z.db.partial").exists()
    assert (tmp_path / "app-other-20250101T000000.000Z.db").exists()
    assert not checksum_path(tmp_path / names[0]).exists()
