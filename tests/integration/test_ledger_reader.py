"""The read-only ledger on a real SQLite file and PostgreSQL: it never creates, migrates or writes
(the SQLite file stays byte-identical), it tails a run another process writes, and it reads a
schema-v1 ledger as it is until a writer upgrades it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.helpers_db import query, table_names

from tminus.errors import LedgerError, LedgerMissing
from tminus.events import PAYLOAD_VERSION, Event
from tminus.ledger import engines, open_ledger, open_reader
from tminus.ledger import schema as s
from tminus.ledger.chain import Hasher, normalise
from tminus.ledger.database import Database
from tminus.ledger.sql import RUN_COLUMNS

pytestmark = pytest.mark.usefixtures("_no_key")


def make_run(url: str, run_id: str = "r1", events: int = 3) -> None:
    with open_ledger(url) as ledger:
        ledger.create_run(run_id=run_id, runbook_name="deploy", runbook_path="/rb.yaml", content_hash="x",
                          runbook_text="name: deploy", environment="prod", operator="alice", host="h1", pid=1)
        for i in range(events):
            ledger.append(Event("note", run_id, {"i": i}))
        ledger.record_approval(run_id, "p.s", approved=True, by="bob", host="h2")


def snapshot(db: Path) -> dict[str, tuple[str, int]]:
    """Every file of the ledger (main, -wal, -shm): content hash and mtime."""
    out = {}
    for path in sorted(db.parent.glob(db.name + "*")):
        out[path.name] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return out


def read_everything(url: str) -> None:
    with open_reader(url) as reader:
        assert reader.get_run("r") is not None  # a prefix
        assert [r.id for r in reader.list_runs(runbook="deploy", status="running")] == ["r1"]
        assert len(reader.events("r1")) == 3
        assert len(reader.approvals("r1", "p.s")) == 1
        assert reader.get_lease("deploy@prod") is None
        assert reader.verify() == [] and reader.verify("r1") == []


def test_a_reader_leaves_the_sqlite_ledger_byte_identical(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    make_run(url)
    before = snapshot(db)
    assert list(before) == ["ledger.db"]  # the writer checkpointed and removed its WAL on close
    read_everything(url)
    after = snapshot(db)
    assert after["ledger.db"] == before["ledger.db"]
    # SQLite in WAL mode needs its -shm index even to read: it may leave an empty -wal beside it.
    wal = db.parent / "ledger.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


def test_a_reader_beside_a_live_writer_changes_no_file(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    make_run(url)
    with open_ledger(url) as writer:  # holds the WAL open: recent events live only in the -wal
        writer.append(Event("note", "r1", {"late": True}))
        before = snapshot(db)
        with open_reader(url) as reader:
            assert [e.data for e in reader.events("r1", after=3)] == [{"late": True, "v": PAYLOAD_VERSION}]
            assert reader.verify() == []
        assert {k: v[0] for k, v in snapshot(db).items() if not k.endswith("-shm")} == {
            k: v[0] for k, v in before.items() if not k.endswith("-shm")}


def test_a_reader_never_creates_a_missing_sqlite_ledger(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'ledger.db'}"
    with pytest.raises(LedgerMissing, match=r"no ledger at .*does not exist.*the first `tminus run`"):
        open_reader(url)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_a_reader_never_creates_tables_in_postgresql(pg_url: str) -> None:
    with pytest.raises(LedgerMissing, match="has no tminus tables"):
        open_reader(pg_url)
    assert table_names(pg_url) == set()


@pytest.mark.postgres
def test_a_postgresql_reader_runs_read_only_transactions(pg_url: str) -> None:
    make_run(pg_url)
    with open_reader(pg_url) as reader:
        db = reader._db  # type: ignore[attr-defined]  # the connection under the interface, to prove it
        with pytest.raises(LedgerError, match="read-only transaction"), db.transaction() as conn:
            conn.execute("DELETE FROM tminus_events")
        assert len(reader.events("r1")) == 3


def test_a_reader_tails_while_another_process_appends(url: str) -> None:
    make_run(url)
    reader = open_reader(url)
    try:
        seen = reader.events("r1")
        assert [e.seq for e in seen] == [1, 2, 3]
        assert reader.events("r1", after=3) == []
        script = textwrap.dedent("""
            import sys
            from tminus.events import PAYLOAD_VERSION, Event
            from tminus.ledger import open_ledger
            with open_ledger(sys.argv[1]) as other:
                for i in range(int(sys.argv[2])):
                    other.append(Event("note", "r1", {"from": "child", "i": i}))
        """)
        for batch in (2, 3):
            done = subprocess.run([sys.executable, "-c", script, url, str(batch)], capture_output=True, text=True,
                                  timeout=60, env={**os.environ})
            assert done.returncode == 0, done.stderr
            tail = reader.events("r1", after=seen[-1].seq)
            assert [e.data["i"] for e in tail] == list(range(batch))
            assert tail[0].prev_hash == seen[-1].hash  # one chain, nothing skipped
            seen += tail
        assert [e.seq for e in seen] == list(range(1, 9))
        assert [e.seq for e in reader.events("r1", after=2, limit=3)] == [3, 4, 5]
    finally:
        reader.close()


# --- a ledger of schema version 1 ----------------------------------------------------------------


def make_v1_ledger(url: str) -> None:
    """A ledger as tminus wrote it at schema v1: one run that asked twice and consumed one approval
    (named by its approval.given), plus an approval never used."""
    db = Database(engines.create(engines.normalise_url(url)))
    hasher = Hasher(None)
    run = dict(id="r1", runbook_name="deploy", runbook_path="/rb.yaml", content_hash="x",
               runbook_text="name: deploy", environment="prod", operator="alice", host="h1", pid=1, kind="run",
               parent_run_id=None, status="running", exit_code=None, reason=None,
               started_at="2026-11-23T09:00:00.000000+00:00", finished_at=None, event_count=0)
    run["head_hash"] = hasher.genesis(run)
    with db.transaction() as conn:
        conn.execute(conn.sql.CREATE_META)
        s.MIGRATIONS[0](conn)
        s.set_meta(conn, "schema_version", "1")
        conn.execute(conn.sql.INSERT_RUN, tuple(run[c] for c in RUN_COLUMNS))
        for sql in ("INSERT INTO tminus_approvals (run_id, step_key, approved, approved_by, host, at) "
                    "VALUES ('r1', 'p.s', true, 'bob', 'h2', 'then')",) * 2:
            conn.execute(sql)
        head = str(run["head_hash"])
        for seq, (type_, data) in enumerate((("approval.requested", {}), ("approval.given", {"approval_id": 1}),
                                             ("approval.requested", {})), start=1):
            _plain, canonical = normalise(data)
            at = "2026-11-23T09:00:01+00:00"
            digest = hasher.event(head, "r1", seq, type_, "p.s", at, canonical)
            conn.execute("INSERT INTO tminus_events (run_id, seq, type, step_key, at, data, prev_hash, hash) "
                         "VALUES ('r1', ?, ?, 'p.s', ?, ?, ?, ?)", (seq, type_, at, canonical, head, digest))
            conn.execute("UPDATE tminus_runs SET event_count = ?, head_hash = ?", (seq, digest))
            head = digest
    db.close()


def version(url: str) -> str:
    return str(query(url, "SELECT value FROM tminus_meta WHERE key = 'schema_version'")[0][0])


def test_a_v1_ledger_is_read_as_it_is_and_upgraded_by_a_writer(url: str) -> None:
    make_v1_ledger(url)
    with open_reader(url) as reader:  # the reader tolerates v1: columns added since read as empty
        assert [e.type for e in reader.events("r1")] == ["approval.requested", "approval.given",
                                                         "approval.requested"]
        assert [(a.id, a.request_seq) for a in reader.approvals("r1")] == [(1, None), (2, None)]
        assert reader.verify() == []
    assert version(url) == "1"  # not migrated by reading

    with open_ledger(url) as writer:  # a writer migrates: v2 columns, and v1's consumption carried over
        assert [(a.id, a.request_seq) for a in writer.approvals("r1")] == [(1, 1), (2, None)]
        # v5: a consumed approval was given for (and leads) the request it answered; an unused one answers nothing
        assert [(a.for_seq, a.lead) for a in writer.approvals("r1")] == [(1, True), (None, False)]
        lease = writer.acquire_lease("deploy@prod", run_id="r1", operator="alice", host="h1", pid=os.getpid())
        assert lease.fence.generation == 1
        writer.open_writer("r1", fence=lease.fence).append(Event("note", "r1", {"after": "upgrade"}))
        assert writer.verify() == []
        assert writer.ledger_head().count == 1  # v1's events predate the ledger-wide chain: the note is link 1
    assert version(url) == str(s.SCHEMA_VERSION) == "5"
