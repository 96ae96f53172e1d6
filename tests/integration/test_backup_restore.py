"""Backup -> damage -> restore against the real local PostgreSQL and SQLite files."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tminus.db import pgtools
from tminus.db.backup import BackupError, backup, checksum_path, is_verified, list_backups, sha256_file
from tminus.db.fingerprint import fingerprint
from tminus.db.restore import ChecksumError, RestoreError, restore


class Db:
    """Runs SQL on the database under test, with the plain driver (no tminus code involved)."""

    def __init__(self, url: str):
        self.url = url
        self.kind = pgtools.backend(url)

    def sql(self, *statements: str) -> list[Any]:
        rows: list[Any] = []
        if self.kind == "sqlite":
            conn = sqlite3.connect(pgtools.sqlite_path(self.url))
            try:
                for stmt in statements:
                    rows = conn.execute(stmt).fetchall()
                conn.commit()
            finally:
                conn.close()
            return rows
        with psycopg.connect(**pgtools.pg_target(self.url).connect_kwargs(), autocommit=True) as conn:
            for stmt in statements:
                cur = conn.execute(stmt)
                rows = cur.fetchall() if cur.description else []
        return rows


def seed(db: Db) -> None:
    db.sql(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
        "CREATE TABLE tags (note_id INTEGER, tag TEXT)",
        "INSERT INTO notes VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma')",
        "INSERT INTO tags VALUES (1, 'x'), (1, 'y'), (3, 'x')",
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Db:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    if request.param == "sqlite":
        sqlite3.connect(pgtools.sqlite_path(url)).close()
    d = Db(url)
    seed(d)
    return d


def _all_databases(prefix: str = "") -> set[str]:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                           (prefix + "%",))}


_scratch: list[str] = []


@pytest.fixture(autouse=True)
def _record_scratch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scratch databases are judged per test, by the names this test's backups and restores made (the
    real pgtools.create_scratch, recorded): the server is shared with other work, and other test
    processes (pytest-xdist workers) make `tminus_restore_*` databases of their own at the same time."""
    _scratch.clear()
    create = pgtools.create_scratch

    def recording(target: pgtools.PgTarget, prefix: str) -> str:
        name = create(target, prefix)
        _scratch.append(name)
        return name

    monkeypatch.setattr(pgtools, "create_scratch", recording)


def pg_databases(prefix: str) -> list[str]:
    """Scratch databases with this prefix that the current test made and are still there."""
    return sorted(set(_scratch) & _all_databases(prefix))


def pg_old_databases(target: str) -> list[str]:
    """`<target>_old_*` databases still there (the target's name is unique to the test)."""
    return sorted(_all_databases(target[:30] + "_old_"))


def test_backup_destroy_restore_roundtrip(db: Db, tmp_path: Path) -> None:
    before = fingerprint(db.url)
    assert before["notes"]["rows"] == 3 and before["tags"]["rows"] == 3
    result = backup(db.url, tmp_path / "backups", label="prod")
    assert result.verified and result.path.exists() and result.bytes == result.path.stat().st_size
    suffix = ".db" if db.kind == "sqlite" else ".dump"
    assert result.path.name.endswith(suffix) and "-prod-" in result.path.name

    db.sql("DELETE FROM notes WHERE id = 2", "DROP TABLE tags", "ALTER TABLE notes ADD COLUMN extra TEXT",
           "CREATE TABLE junk (x INTEGER)")
    assert fingerprint(db.url) != before

    restored = restore(db.url, result.path)
    assert restored.restored and restored.seconds >= 0
    assert fingerprint(db.url) == before
    if db.kind == "postgresql":
        assert [n for n in _scratch if n.startswith("tminus_restore_")]  # the restore made one, and
        assert not pg_databases("tminus_restore_")  # dropped it (renamed to the target)
        assert not pg_old_databases(pgtools.pg_target(db.url).database)


def test_sha256_file_matches_sha256sum(db: Db, tmp_path: Path) -> None:
    result = backup(db.url, tmp_path, label="l")
    line = checksum_path(result.path).read_text()
    assert line == f"{result.sha256}  {result.path.name}\n"
    check = subprocess.run(["sha256sum", "-c", checksum_path(result.path).name], cwd=tmp_path,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert is_verified(result.path)
    assert not list(tmp_path.glob("*.partial"))


def test_pg_backup_is_listed_by_pg_restore(pg_url: str, tmp_path: Path) -> None:
    seed(Db(pg_url))
    result = backup(pg_url, tmp_path, label="l")
    assert result.entries is not None and result.entries >= 2
    listing = subprocess.run(["pg_restore", "--list", str(result.path)], capture_output=True, text=True)
    assert listing.returncode == 0 and "TABLE public notes" in listing.stdout


def test_pg_backup_of_empty_database_is_fine(pg_url: str, tmp_path: Path) -> None:
    result = backup(pg_url, tmp_path, label="empty")
    assert result.verified and result.entries == 0


def flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + 8):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_backup_refused_before_anything_dropped(db: Db, tmp_path: Path) -> None:
    result = backup(db.url, tmp_path, label="l")
    db.sql("DELETE FROM notes WHERE id = 1")
    current = fingerprint(db.url)
    flip_bytes(result.path)
    with pytest.raises(ChecksumError, match="corrupt"):
        restore(db.url, result.path)
    assert fingerprint(db.url) == current
    if db.kind == "postgresql":
        assert not pg_databases("tminus_restore_")


def test_wrong_or_missing_checksum_refused(db: Db, tmp_path: Path) -> None:
    result = backup(db.url, tmp_path, label="l")
    current = fingerprint(db.url)
    with pytest.raises(ChecksumError, match="expected"):
        restore(db.url, result.path, sha256="0" * 64)
    checksum_path(result.path).write_text(f"{'a' * 64}  {result.path.name}\n")
    with pytest.raises(ChecksumError, match="corrupt or not the expected"):
        restore(db.url, result.path)
    checksum_path(result.path).unlink()
    with pytest.raises(ChecksumError, match=r"no checksum .*\.sha256"):
        restore(db.url, result.path)
    assert fingerprint(db.url) == current
    # an explicit, correct checksum is enough without the .sha256 file
    assert restore(db.url, result.path, sha256=sha256_file(result.path)).restored


def test_pg_failed_restore_leaves_target_untouched(pg_url: str, tmp_path: Path) -> None:
    """A dump that passes its checksum but fails in pg_restore: the swap never happens."""
    seed(Db(pg_url))
    current = fingerprint(pg_url)
    bogus = tmp_path / "bogus.dump"
    bogus.write_bytes(b"PGDMP not really a dump")
    bogus.with_name("bogus.dump.sha256").write_text(f"{sha256_file(bogus)}  bogus.dump\n")
    with pytest.raises(RestoreError, match="unchanged"):
        restore(pg_url, bogus)
    assert fingerprint(pg_url) == current
    assert not pg_databases("tminus_restore_")


def test_pg_restore_terminates_other_sessions(pg_url: str, tmp_path: Path) -> None:
    seed(Db(pg_url))
    before = fingerprint(pg_url)
    result = backup(pg_url, tmp_path, label="l")
    Db(pg_url).sql("DELETE FROM tags")
    idle = psycopg.connect(**pgtools.pg_target(pg_url).connect_kwargs())
    idle.execute("SELECT 1")  # an application session left open in a transaction
    try:
        restore(pg_url, result.path)
        with pytest.raises(psycopg.OperationalError):
            idle.execute("SELECT 1")  # it was terminated by the swap
    finally:
        idle.close()
    assert fingerprint(pg_url) == before


def test_drill_records_restore_time_and_drops_scratch(db: Db, tmp_path: Path) -> None:
    result = backup(db.url, tmp_path, label="l", drill=True)
    assert result.drill_seconds is not None and result.drill_seconds > 0
    assert result.verified
    if db.kind == "postgresql":
        assert [n for n in _scratch if n.startswith("tminus_drill_")]  # the drill restored into one
        assert not pg_databases("tminus_drill_")


def test_backup_of_missing_sqlite_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="does not exist"):
        backup(f"sqlite:///{tmp_path / 'nope.db'}", tmp_path / "b", label="l")
    assert not (tmp_path / "nope.db").exists()


def test_rotation_keeps_n(db: Db, tmp_path: Path) -> None:
    made = [backup(db.url, tmp_path, label="l", keep=2).path for _ in range(4)]
    suffix = made[0].suffix
    name = made[0].name.split("-l-")[0]
    remaining = list_backups(tmp_path, name, "l", suffix)
    assert remaining == [made[3], made[2]]
    assert all(checksum_path(p).exists() for p in remaining)
    assert not checksum_path(made[0]).exists()
    # another label is never touched
    other = backup(db.url, tmp_path, label="other", keep=1).path
    backup(db.url, tmp_path, label="l", keep=1)
    assert other.exists()


def test_rotation_never_deletes_newest_verified(sqlite_url: str, tmp_path: Path) -> None:
    sqlite3.connect(pgtools.sqlite_path(sqlite_url)).close()
    seed(Db(sqlite_url))
    good = backup(sqlite_url, tmp_path, label="l").path
    # two newer files that are not verified: one without a checksum, one whose checksum is wrong
    newer1 = tmp_path / "test-l-29990101T000000.000Z.db"
    newer2 = tmp_path / "test-l-29990102T000000.000Z.db"
    newer1.write_bytes(b"interrupted copy")
    newer2.write_bytes(b"bit rot")
    checksum_path(newer2).write_text(f"{'0' * 64}  {newer2.name}\n")
    from tminus.db.backup import rotate

    deleted = rotate(tmp_path, "test", "l", ".db", keep=1)
    assert newer2.exists() and good.exists()
    assert deleted == [newer1]
