"""No-transaction migrations, the migration lock and lock_timeout, against real databases."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tminus.db.migrations import (
    HalfAppliedError,
    LockTimeout,
    MigrationFailed,
    MigrationLockTimeout,
    Migrator,
)
from tminus.db.migrations.lock import lock_key


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def write(d: Path, files: dict[str, str]) -> Path:
    d.mkdir(exist_ok=True)
    for name, body in files.items():
        (d / name).write_text(body)
    return d


NO_TX = """-- tminus: no-transaction
CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER);
INSERT INTO t VALUES (1, 10);
INSERT INTO t VALUES (2, 20);
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_no_transaction_half_applied_then_resumed(backend: str, request: pytest.FixtureRequest,
                                                  tmp_path: Path) -> None:
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    d = write(tmp_path / "m", {"0001_t.sql": NO_TX.replace("VALUES (1, 10)", "VALUES (1, 10, 'too many')")})
    with Migrator(url, d, lock_wait=5) as m:
        with pytest.raises(MigrationFailed, match=r"stopped at statement 2 of 3") as err:
            m.migrate()
        assert "resumes at this statement" in str(err.value)
        st = m.status()
        assert st.current == "" and [(h.version, h.done, h.total) for h in st.half_applied] == [("0001", 1, 3)]
        assert not st.ok

        # The fix touches only the failed statement: the completed CREATE TABLE is not run again.
        write(d, {"0001_t.sql": NO_TX})
        out = m.migrate()
        assert out.versions == ["0001"] and out.done[0].resumed_from == 1
        st = m.status()
        assert st.ok and st.current == "0001" and not st.half_applied


def test_no_transaction_completed_statement_edited(pg_url: str, tmp_path: Path) -> None:
    d = write(tmp_path / "m", {"0001_t.sql": NO_TX.replace("(2, 20)", "(2, 20, 'x')")})
    with Migrator(pg_url, d) as m:
        with pytest.raises(MigrationFailed):
            m.migrate()
        write(d, {"0001_t.sql": NO_TX.replace("v INTEGER", "v BIGINT")})
        with pytest.raises(MigrationFailed, match=r"statement 1 already ran .* but has changed"):
            m.migrate()


def test_invalid_index_from_concurrent_build_is_reported(pg_url: str, tmp_path: Path) -> None:
    d = write(tmp_path / "m", {
        "0001_t.sql": "CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1), (1);",
        "0002_idx.sql": "-- tminus: no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY t_v ON t (v);\n",
    })
    with Migrator(pg_url, d) as m:
        with pytest.raises(MigrationFailed, match=r"t_v is INVALID .*DROP INDEX CONCURRENTLY public.t_v"):
            m.migrate()
        st = m.status()
        assert st.invalid_indexes == ["public.t_v"] and st.current == "0001"
        with pytest.raises(HalfAppliedError, match=r"cannot resume 0002_idx\.sql"):
            m.migrate()
        with psycopg.connect(libpq(pg_url), autocommit=True) as c:
            c.execute("DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t)")
            c.execute("DROP INDEX CONCURRENTLY t_v")
        assert m.migrate().versions == ["0002"]


def test_waiting_migrator_names_the_holder(pg_url: str, tmp_path: Path) -> None:
    d = write(tmp_path / "m", {"0001_t.sql": "CREATE TABLE t (id INTEGER);"})
    with psycopg.connect(libpq(pg_url), autocommit=True, application_name="other-migrator") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("schema_migrations"),))
        with Migrator(pg_url, d, lock_wait=0.5) as m:
            start = time.monotonic()
            with pytest.raises(MigrationLockTimeout) as err:
                m.migrate()
            assert 0.4 < time.monotonic() - start < 3
            assert "application 'other-migrator'" in str(err.value) and f"pid {holder.info.backend_pid}" in str(
                err.value)
            assert m.status().current == ""
    with Migrator(pg_url, d, lock_wait=0.5) as m:  # the holder is gone: the lock is free
        assert m.migrate().versions == ["0001"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_threads_apply_each_version_once(backend: str, request: pytest.FixtureRequest,
                                             tmp_path: Path) -> None:
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    d = write(tmp_path / "m", {
        "0001_t.sql": "CREATE TABLE t (id INTEGER);",
        # slow enough that the threads overlap
        "0002_slow.sql": "SELECT pg_sleep(0.3);" if backend == "postgresql" else "INSERT INTO t VALUES (1);",
        "0003_u.sql": "CREATE TABLE u (id INTEGER);",
    })
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with Migrator(url, d, lock_wait=10) as m:
                results.append(m.migrate().versions)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert sorted(results, key=len) == [[], ["0001", "0002", "0003"]]
    with Migrator(url, d) as m:
        assert [a.version for a in m.status().applied] == ["0001", "0002", "0003"]


def test_lock_timeout_fails_clearly_then_succeeds_when_released(pg_url: str, tmp_path: Path) -> None:
    d = write(tmp_path / "m", {"0001_t.sql": "CREATE TABLE t (id INTEGER);"})
    with Migrator(pg_url, d) as m:
        m.migrate()
    write(d, {"0002_col.sql": "ALTER TABLE t ADD COLUMN v INTEGER;"})
    with psycopg.connect(libpq(pg_url)) as blocker:
        blocker.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        with Migrator(pg_url, d, lock_timeout=0.2, lock_retries=1) as m:
            with pytest.raises(LockTimeout) as err:
                m.migrate()
            msg = str(err.value)
            assert "ALTER TABLE t ADD COLUMN v INTEGER" in msg and "lock_timeout 0.2s, 2 attempt(s)" in msg
            assert m.status().current == "0001"

            # Released while the migrator is retrying: the retry succeeds.
            threading.Timer(0.3, blocker.rollback).start()
        with Migrator(pg_url, d, lock_timeout=0.2, lock_retries=5) as m:
            assert m.migrate().versions == ["0002"]
