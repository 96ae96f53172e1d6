"""Fenced run writers on a real SQLite file and a real PostgreSQL: after `tminus unlock` and a takeover,
the old holder writes nothing; lease generations only grow; status and run.finished land together."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from tests.helpers_db import run_sql

from tminus.errors import LeaseLost, LedgerError
from tminus.events import Event
from tminus.ledger import Ledger, open_ledger

KEY = "deploy@prod"
HOST = socket.gethostname()

pytestmark = pytest.mark.usefixtures("_no_key")


@pytest.fixture
def ledgers(url: str) -> Iterator[tuple[Ledger, Ledger]]:
    """Two ledgers on one database, each with its own connection: holder A and the others."""
    a, b = open_ledger(url), open_ledger(url)
    for rid in ("r1", "r2"):
        a.create_run(run_id=rid, runbook_name="deploy", runbook_path="/rb.yaml", content_hash="x",
                     runbook_text="name: deploy", environment="prod", operator="alice", host=HOST, pid=os.getpid())
    yield a, b
    a.close()
    b.close()


def take(ledger: Ledger, run_id: str, pid: int) -> tuple[object, object]:
    lease = ledger.acquire_lease(KEY, run_id=run_id, operator="alice", host=HOST, pid=pid)
    return lease, ledger.open_writer(run_id, fence=lease.fence)


def sql(url: str, *statements: str) -> None:
    run_sql(url, *statements)


@pytest.mark.parametrize("taker", ["same run (resume)", "another run"])
def test_stale_holder_append_is_refused_after_a_takeover(ledgers: tuple[Ledger, Ledger], taker: str) -> None:
    a, b = ledgers
    lease_a = a.acquire_lease(KEY, run_id="r1", operator="alice", host=HOST, pid=os.getpid())
    writer_a = a.open_writer("r1", fence=lease_a.fence)
    writer_a.append(Event("step.started", "r1", {"name": "migrate"}, step_key="p.migrate"))

    assert b.break_lease(KEY, by="bob", reason="holder looks stuck") is not None  # `tminus unlock`
    new_run = "r1" if taker.startswith("same") else "r2"
    lease_b = b.acquire_lease(KEY, run_id=new_run, operator="bob", host=HOST, pid=os.getpid() + 1)
    assert lease_b.fence.generation > lease_a.fence.generation
    writer_b = b.open_writer(new_run, fence=lease_b.fence)
    writer_b.append(Event("run.resumed", new_run, {"by": "bob"}))
    before = {rid: [(e.seq, e.type) for e in a.events(rid)] for rid in ("r1", "r2")}

    # A's in-flight writes: every kind of write is refused, and nothing lands in any chain.
    with pytest.raises(LeaseLost, match=r"run r1 no longer holds the lease on deploy@prod") as caught:
        writer_a.append(Event("step.finished", "r1", {"ok": True}, step_key="p.migrate"))
    assert caught.value.holder is not None and caught.value.holder.run_id == new_run
    with pytest.raises(LeaseLost):
        writer_a.set_status("failed", exit_code=1, finished=True)
    with pytest.raises(LeaseLost):
        writer_a.finish("interrupted", 130, "stopped", Event("run.finished", "r1", {"status": "interrupted"}),
                        finished=False)
    after = {rid: [(e.seq, e.type) for e in b.events(rid)] for rid in ("r1", "r2")}
    assert after == before
    run = b.get_run("r1")
    assert run is not None and run.status == "running" and run.exit_code is None

    # B goes on writing; every chain verifies.
    writer_b.append(Event("step.finished", new_run, {"ok": True}, step_key="p.migrate"))
    assert b.verify() == [] and a.verify() == []
    types = [e.type for e in b.events("r1")]
    assert types.count("step.finished") == (1 if new_run == "r1" else 0)
    assert "note" in types  # the unlock note, the admin path, still lands in the holder's run


def test_release_fences_the_released_writer(ledgers: tuple[Ledger, Ledger]) -> None:
    a, _b = ledgers
    lease = a.acquire_lease(KEY, run_id="r1", operator="alice", host=HOST, pid=os.getpid())
    writer = a.open_writer("r1", fence=lease.fence)
    writer.append(Event("note", "r1", {}))
    lease.release()
    with pytest.raises(LeaseLost, match="nobody holds it now"):
        writer.append(Event("note", "r1", {}))
    assert len(a.events("r1")) == 1


def test_generations_only_grow_even_after_unlock_and_release(url: str, ledgers: tuple[Ledger, Ledger]) -> None:
    a, b = ledgers
    seen = []
    for round_ in range(3):
        lease = a.acquire_lease(KEY, run_id="r1", operator="alice", host=HOST, pid=os.getpid())
        seen.append(lease.fence.generation)
        current = b.get_lease(KEY)
        assert current is not None and current.generation == lease.fence.generation
        if round_ % 2:
            lease.release()
        else:
            b.break_lease(KEY, by="bob", reason="test")
    # The counter is durable: it survives the lease rows (all gone now) and reopening.
    assert a.get_lease(KEY) is None
    with open_ledger(url) as again:
        seen.append(again.acquire_lease(KEY, run_id="r2", operator="bob", host=HOST, pid=os.getpid()).fence.generation)
    assert seen == sorted(seen) and len(set(seen)) == len(seen) and seen[0] >= 1
    # Another key counts on its own.
    other = a.acquire_lease("deploy@staging", run_id="r2", operator="bob", host=HOST, pid=os.getpid())
    assert other.fence.generation == 1


def test_an_unfenced_writer_needs_no_lease(ledgers: tuple[Ledger, Ledger]) -> None:
    """Gate-only runs hold no lease: their writer is unfenced, even while another run holds the lease."""
    a, b = ledgers
    b.acquire_lease(KEY, run_id="r2", operator="bob", host=HOST, pid=os.getpid() + 1)
    writer = a.open_writer("r1")
    assert writer.fence is None
    writer.append(Event("run.started", "r1", {}))
    writer.finish("completed", 0, "every gate passed", Event("run.finished", "r1", {"status": "completed"}))
    run = a.get_run("r1")
    assert run is not None and (run.status, run.exit_code, run.event_count) == ("completed", 0, 2)
    assert run.finished_at is not None


def test_writer_refuses_another_runs_event(ledgers: tuple[Ledger, Ledger]) -> None:
    a, _b = ledgers
    with pytest.raises(LedgerError, match="writer of run r1 cannot record an event of run r2"):
        a.open_writer("r1").append(Event("note", "r2", {}))


def test_status_and_run_finished_land_together_or_not_at_all(url: str, ledgers: tuple[Ledger, Ledger]) -> None:
    a, _b = ledgers
    lease = a.acquire_lease(KEY, run_id="r1", operator="alice", host=HOST, pid=os.getpid())
    writer = a.open_writer("r1", fence=lease.fence)
    writer.append(Event("run.started", "r1", {}))
    if url.startswith("sqlite"):
        sql(url, "CREATE TRIGGER no_finish BEFORE INSERT ON tminus_events WHEN NEW.type = 'run.finished' "
                 "BEGIN SELECT RAISE(ABORT, 'refusing run.finished'); END")
        undo = "DROP TRIGGER no_finish"
    else:
        sql(url, "ALTER TABLE tminus_events ADD CONSTRAINT no_finish CHECK (type <> 'run.finished')")
        undo = "ALTER TABLE tminus_events DROP CONSTRAINT no_finish"
    finished = Event("run.finished", "r1", {"status": "completed", "exit_code": 0})
    with pytest.raises(LedgerError):
        writer.finish("completed", 0, "all good", finished)
    run = a.get_run("r1")
    assert run is not None
    assert (run.status, run.exit_code, run.reason, run.finished_at, run.event_count) == (
        "running", None, None, None, 1)
    assert [e.type for e in a.events("r1")] == ["run.started"]

    sql(url, undo)
    record = writer.finish("completed", 0, "all good", finished)
    run = a.get_run("r1")
    assert run is not None and (run.status, run.exit_code, run.reason) == ("completed", 0, "all good")
    assert (record.seq, run.event_count) == (2, 2)
    assert a.verify() == []
