"""A ledger written by tminus before it dropped SQLAlchemy (schema v5, SQLAlchemy Core) is read and
written by the native backends unchanged: the same tables, columns and indexes, the same hashes (the
canonical JSON is byte-identical, so the old chains verify), the file untouched by a reader.

tests/fixtures/ledger-files/sqlalchemy-v5.db was written by that tminus: two finished runs with an
approval each, a batch of events, unicode and non-string keys in the data, a lease taken and released.
postgres-schema-v5.json is the shape of the tables it created on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from tminus.events import Event
from tminus.ledger import LedgerHead, open_ledger, open_reader

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ledger-files"
OLD_HEAD = LedgerHead.parse("14:170e9d9c47488773dd5f9f62ce1885414de60a453e4e5d650352397d9ecb228a")
RUN = "20261201-090000-000-old1"
pytestmark = pytest.mark.usefixtures("_no_key")


@pytest.fixture
def old_ledger(tmp_path: Path) -> Path:
    copy = tmp_path / "ledger.db"
    shutil.copyfile(FIXTURES / "sqlalchemy-v5.db", copy)
    return copy


def test_an_old_ledger_is_read_unchanged_and_verifies(old_ledger: Path) -> None:
    before = hashlib.sha256(old_ledger.read_bytes()).hexdigest()
    with open_reader(f"sqlite:///{old_ledger}") as reader:
        assert reader.verify(head=OLD_HEAD) == []
        assert reader.ledger_head() == OLD_HEAD
        events = list(reader.iter_events(RUN, chunk=2))
        assert [e.seq for e in events] == list(range(1, 8)) and events == reader.events(RUN)
        assert events[0].data["unicode"] == "é ✓ \u2028" and events[3].data["3"] == "int key"
        (answer,) = reader.approvals(RUN)
        assert answer.lead and answer.request_seq == 2 and answer.identity == "bob@h2"
        run = reader.get_run("20261201-0900")
        assert run is not None and run.status == "completed" and run.event_count == 7
    assert hashlib.sha256(old_ledger.read_bytes()).hexdigest() == before


def test_an_old_ledger_takes_new_runs_and_every_chain_still_verifies(old_ledger: Path) -> None:
    url = f"sqlite:///{old_ledger}"
    with open_ledger(url) as ledger:
        ledger.create_run(run_id="new", runbook_name="deploy", runbook_path="/srv/rb.yaml", content_hash="c" * 64,
                          runbook_text="name: deploy\n", environment="prod", operator="carol", host="h3", pid=1)
        lease = ledger.acquire_lease("deploy@prod", run_id="new", operator="carol", host="h3", pid=os.getpid())
        assert lease.fence.generation == 3  # the old ledger's two acquisitions counted
        ledger.open_writer("new", fence=lease.fence).append(Event("note", "new", {"é": (1, 2), 7: None}))
        lease.release()
        assert ledger.verify(head=OLD_HEAD) == []
        assert ledger.ledger_head().count == OLD_HEAD.count + 1


def _sqlite_shape(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        shape: dict[str, list[tuple[object, ...]]] = {}
        for table in tables:
            shape[table] = [tuple(r) for r in conn.execute(f"PRAGMA table_info({table})")]
            for _seq, index, unique, *_ in conn.execute(f"PRAGMA index_list({table})"):
                columns = tuple(r[2] for r in conn.execute(f"PRAGMA index_info({index})"))
                shape[f"{table} index {index}"] = [(unique, *columns)]
        return shape
    finally:
        conn.close()


def test_a_new_sqlite_ledger_has_the_old_tables_columns_and_indexes(old_ledger: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    open_ledger(f"sqlite:///{fresh}").close()
    assert _sqlite_shape(fresh) == _sqlite_shape(old_ledger)


@pytest.mark.postgres
def test_a_new_postgresql_ledger_has_the_old_tables_columns_and_indexes(pg_url: str) -> None:
    import psycopg

    open_ledger(pg_url).close()
    expected = json.loads((FIXTURES / "postgres-schema-v5.json").read_text())
    columns = ("SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, column_default "
               "FROM information_schema.columns WHERE table_schema = 'public' AND table_name LIKE 'tminus_%' "
               "ORDER BY table_name, column_name")
    indexes = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname"
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        found = {"columns": [list(r) for r in conn.execute(columns)],
                 "indexes": [list(r) for r in conn.execute(indexes)]}
    assert found == expected
