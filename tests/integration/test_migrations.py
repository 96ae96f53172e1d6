"""tminus.db.migrations against real SQLite files and the real local PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tminus.db.migrations import (
    DriftError,
    MigrationFailed,
    Migrator,
    NotRevertible,
    RevertIncomplete,
    VerifyFailed,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "migrations"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.fixture
def mdir(tmp_path: Path) -> Path:
    d = tmp_path / "migrations"
    shutil.copytree(FIXTURES / "basic", d)
    return d


@pytest.fixture
def migrator(url: str, mdir: Path) -> Iterator[Migrator]:
    m = Migrator(url, mdir, operator="tester", host="box", lock_wait=5)
    yield m
    m.close()


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    from sqlalchemy import inspect

    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_apply_verify_revert_reapply(migrator: Migrator, url: str) -> None:
    out = migrator.migrate()
    assert (out.before, out.after, out.versions) == ("", "0003", ["0001", "0002", "0003"])
    assert all(d.duration_ms is not None for d in out.done)
    rows = query(url, "SELECT version, name, operator, host FROM schema_migrations ORDER BY version")
    assert rows == [("0001", "create_users", "tester", "box"), ("0002", "add_orders", "tester", "box"),
                    ("0003", "orders_index", "tester", "box")]
    st = migrator.verify()
    assert st.ok and st.current == "0003" and not st.pending
    assert [a.state for a in st.applied] == ["ok", "ok", "ok"]

    assert migrator.migrate().versions == []  # nothing pending: a no-op

    out = migrator.revert("0001")
    assert out.versions == ["0003", "0002"] and out.after == "0001"
    assert "orders" not in tables(url) and "users" in tables(url)
    assert migrator.status().current == "0001"

    assert migrator.migrate().versions == ["0002", "0003"]
    log = query(url, "SELECT version, action, outcome FROM schema_migrations_log ORDER BY at")
    assert [r[1] for r in log].count("revert") == 2 and all(r[2] == "ok" for r in log)


def test_migrate_to_and_revert_all(migrator: Migrator, url: str) -> None:
    assert migrator.migrate(to="2").versions == ["0001", "0002"]  # short versions are zero-padded
    assert [p["version"] for p in migrator.status().pending] == ["0003"]
    assert migrator.revert("0").versions == ["0002", "0001"]
    assert not {"users", "orders"} & tables(url)


def test_failing_migration_changes_nothing(migrator: Migrator, mdir: Path, url: str) -> None:
    migrator.migrate(to="0001")
    (mdir / "0002_add_orders.sql").write_text(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY);\nINSERT INTO no_such_table VALUES (1);\n"
    )
    with pytest.raises(MigrationFailed) as err:
        migrator.migrate()
    assert "0002_add_orders.sql" in str(err.value) and "no_such_table" in str(err.value)
    assert err.value.statement == "INSERT INTO no_such_table VALUES (1)"
    assert "orders" not in tables(url)
    assert query(url, "SELECT version FROM schema_migrations") == [("0001",)]
    assert query(url, "SELECT version, outcome FROM schema_migrations_log WHERE outcome = 'failed'") == [
        ("0002", "failed")]


def test_verify_returning_false_rolls_back(migrator: Migrator, mdir: Path, url: str) -> None:
    (mdir / "0001_create_users.verify.sql").write_text("SELECT count(*) = 99 FROM users;\n")
    with pytest.raises(VerifyFailed, match=r"0001_create_users.verify.sql returned (False|0)"):
        migrator.migrate()
    assert "users" not in tables(url)
    (mdir / "0001_create_users.verify.sql").write_text("SELECT 1 FROM users WHERE id = 42;\n")
    with pytest.raises(VerifyFailed, match="returned no rows"):
        migrator.migrate()


def test_drift_edited_file(migrator: Migrator, mdir: Path) -> None:
    migrator.migrate()
    f = mdir / "0002_add_orders.sql"
    original = f.read_text()
    # Line endings, a BOM and trailing whitespace are not drift.
    f.write_bytes(b"\xef\xbb\xbf" + original.replace("\n", "  \r\n").encode() + b"\r\n\r\n")
    assert migrator.verify().ok
    f.write_text(original.replace("note TEXT", "note VARCHAR(10)"))
    with pytest.raises(DriftError) as err:
        migrator.verify()
    msg = str(err.value)
    assert "0002_add_orders.sql changed after it was applied" in msg and "by tester@box" in msg
    st = migrator.status()
    assert [a.state for a in st.applied] == ["ok", "changed", "ok"]
    assert st.applied[1].checksum in msg and st.applied[1].file_checksum in msg
    with pytest.raises(DriftError):
        migrator.migrate()


def test_applied_version_missing(migrator: Migrator, mdir: Path) -> None:
    migrator.migrate()
    for f in mdir.glob("0003_*"):
        f.unlink()
    with pytest.raises(DriftError, match=r"version 0003 \(orders_index, applied .*\) is recorded as applied"):
        migrator.verify()
    assert migrator.status().applied[2].state == "missing"


def test_revert_leaving_objects_behind(migrator: Migrator, mdir: Path, url: str) -> None:
    migrator.migrate()
    (mdir / "0002_add_orders.down.sql").write_text("DELETE FROM orders WHERE id = 2;\n")
    with pytest.raises(RevertIncomplete, match="revert of 0002 left its objects behind"):
        migrator.revert("0001")
    # 0003 was reverted; 0002 stays recorded because its revert was rolled back.
    assert migrator.status().current == "0002"
    assert "orders" in tables(url)


def test_revert_without_down_file_changes_nothing(migrator: Migrator, mdir: Path, url: str) -> None:
    migrator.migrate()
    (mdir / "0002_add_orders.down.sql").unlink()
    with pytest.raises(NotRevertible, match=r"no down file for 0002_add_orders.sql"):
        migrator.revert("0")
    assert migrator.status().current == "0003"
    with pytest.raises(NotRevertible, match="not an applied version"):
        migrator.revert("0007")


def test_dry_run_changes_nothing(migrator: Migrator, url: str) -> None:
    plan = migrator.migrate(dry_run=True)
    assert plan.dry_run and plan.versions == ["0001", "0002", "0003"]
    assert [d.statements for d in plan.done] == [2, 2, 1]
    assert tables(url) == set()
    migrator.migrate()
    plan = migrator.revert("0", dry_run=True)
    assert plan.versions == ["0003", "0002", "0001"] and plan.after == ""
    assert migrator.status().current == "0003"
