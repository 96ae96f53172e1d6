"""Migration file naming, checksums and verify truthiness (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tminus.db.migrations.errors import MigrationFileError
from tminus.db.migrations.files import checksum, discover, is_no_transaction, truthy
from tminus.db.migrations.lock import lock_key
from tminus.db.migrations.store import Tables
from tminus.errors import TminusError


def test_checksum_ignores_bom_line_endings_and_trailing_whitespace() -> None:
    base = checksum("CREATE TABLE t (id INT);\nINSERT INTO t VALUES (1);")
    assert checksum("\ufeffCREATE TABLE t (id INT);  \r\nINSERT INTO t VALUES (1);\t\r\n\r\n") == base
    assert checksum("CREATE TABLE t (id INT);\rINSERT INTO t VALUES (1);\n") == base
    assert checksum("CREATE TABLE t (id  INT);\nINSERT INTO t VALUES (1);") != base
    assert checksum("  CREATE TABLE t (id INT);\nINSERT INTO t VALUES (1);") != base  # leading space counts


def test_no_transaction_header_only_in_leading_comments() -> None:
    assert is_no_transaction("-- add an index\n-- tminus: no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);")
    assert is_no_transaction("\ufeff--TMINUS:  No-Transaction\r\nSELECT 1;")
    assert not is_no_transaction("SELECT 1;\n-- tminus: no-transaction\n")


def test_discover_orders_and_pairs_files(tmp_path: Path) -> None:
    for name in ("0002_b.sql", "0001_a.sql", "0001_a.down.sql", "0002_b.verify.sql", "README.md"):
        (tmp_path / name).write_text("SELECT 1;")
    files = discover(tmp_path)
    assert [(f.version, f.name) for f in files] == [("0001", "a"), ("0002", "b")]
    assert files[0].down and files[0].down.name == "0001_a.down.sql" and files[0].verify is None
    assert files[1].verify and files[1].down is None


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["0001_a.sql", "0001_b.sql"], "version 0001 is used by both"),
        (["001_a.sql", "0002_b.sql"], "different widths"),
        (["0001_a.sql", "create_users.sql"], "expected a name like 0001_create_users.sql"),
        (["0001_a.sql", "0002_b.down.sql"], "has no migration 0002_"),
        (["0001_a.sql", "0001_x.down.sql"], "name it 0001_a.down.sql"),
    ],
)
def test_discover_rejects_bad_directories(tmp_path: Path, names: list[str], message: str) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationFileError, match=message) as err:
        discover(tmp_path)
    assert isinstance(err.value, TminusError)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(MigrationFileError, match="does not exist"):
        discover(tmp_path / "nope")


def test_truthy() -> None:
    assert all(truthy(v) for v in (True, 1, 2.5, "t", "yes", "x"))
    assert not any(truthy(v) for v in (None, False, 0, 0.0, "", "f", "FALSE", "0"))


def test_table_names_and_lock_keys() -> None:
    assert Tables("app.schema_migrations").log == "app.schema_migrations_log"
    with pytest.raises(TminusError, match="not a plain identifier"):
        Tables("x; DROP TABLE y")
    assert 0 < lock_key("a") < 2**63 and lock_key("a") != lock_key("b") and lock_key("a") == lock_key("a")
