"""The run lock on real SQLite files and a real PostgreSQL: refusal, waiting, staleness, takeover, unlock."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from tests.helpers_db import query

from tminus.errors import LockHeld
from tminus.events import Event
from tminus.ledger import Ledger, open_ledger
from tminus.ledger.records import epoch_from_iso

KEY = "deploy@prod"
HOST = socket.gethostname()


pytestmark = pytest.mark.usefixtures("_no_key")


@pytest.fixture
def ledger(url: str) -> Iterator[Ledger]:
    opened = open_ledger(url)
    for rid in ("r1", "r2"):
        opened.create_run(run_id=rid, runbook_name="deploy", runbook_path="/rb.yaml", content_hash="x",
                          runbook_text="name: deploy", environment="prod", operator="alice", host=HOST,
                          pid=os.getpid())
    yield opened
    opened.close()


def dead_pid() -> int:
    """The pid of a real process that has exited (and been reaped, so it is not a zombie)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def test_second_acquire_is_refused_naming_the_holder(ledger: Ledger) -> None:
    lease = ledger.acquire_lease(KEY, run_id="r1", operator="alice", host=HOST, pid=os.getpid())
    with pytest.raises(LockHeld) as caught:
        ledger.acquire_lease(KEY, run_id="r2", operator="bob", host=HOST, pid=os.getpid())
    err = caught.value
    assert err.stale is False
    assert err.holder is not None and err.holder.run_id == "r1"
    message = str(err)
    for part in ("deploy@prod", "run r1", "alice", HOST, f"pid {os.getpid()}", lease.record.acquired_at,
                 "--lock-wait 5m"):
        assert part in message
    # Another key is independent.
    ledger.acquire_lease("deploy@staging", run_id="r2", operator="bob", host=HOST, pid=os.getpid()).release()
    lease.release()
    assert ledger.get_lease(KEY) is None
    ledger.acquire_lease(KEY, run_id="r2", operator="bob", host=HOST, pid=os.getpid()).release()


def test_wait_succeeds_once_the_holder_releases(ledger: Ledger) -> None:
    lease = ledger.acquire_lease(KEY, run_id="r1", operator="alice", host=HOST, pid=os.getpid())
    releaser = threading.Timer(0.3, lease.release)
    releaser.start()
    try:
        taken = ledger.acquire_lease(KEY, run_id="r2", operator="bob", host=HOST, pid=os.getpid(), wait=20)
    finally:
        releaser.join()
    current = ledger.get_lease(KEY)
    assert current is not None and current.run_id == "r2" == taken.record.run_id
    taken.release()


def test_wait_gives_up_after_the_wait(ledger: Ledger) -> None:
    ledger.acquire_lease(KEY, run_id="r1", operator="alice", host=HOST, pid=os.getpid())
    with pytest.raises(LockHeld, match=r"waited 0\.3s") as caught:
        ledger.acquire_lease(KEY, run_id="r2", operator="bob", host=HOST, pid=os.getpid(), wait=0.3)
    assert caught.value.stale is False


def test_holder_with_dead_pid_is_stale_but_not_taken_over(ledger: Ledger) -> None:
    pid = dead_pid()
    ledger.acquire_lease(KEY, run_id="r1", operator="alice", host=HOST, pid=pid)
    holder = ledger.get_lease(KEY)
    assert holder is not None and holder.is_stale()
    with pytest.raises(LockHeld) as caught:
        ledger.acquire_lease(KEY, run_id="r2", operator="bob", host=HOST, pid=os.getpid(), wait=30)
    err = caught.value
    assert err.stale is True
    assert f"process {pid} on {HOST} is no longer running" in str(err)
    assert 'tminus unlock deploy -e prod --reason "..."' in str(err)
    still = ledger.get_lease(KEY)
    assert still is not None and still.run_id == "r1"  # nothing was taken over


def test_holder_on_another_host_is_not_judged_by_pid(ledger: Ledger) -> None:
    ledger.acquire_lease(KEY, run_id="r1", operator="alice", host="elsewhere.example", pid=dead_pid())
    with pytest.raises(LockHeld) as caught:
        ledger.acquire_lease(KEY, run_id="r2", operator="bob", host=HOST, pid=os.getpid())
    assert caught.value.stale is False


def test_holder_without_heartbeat_is_stale(ledger: Ledger) -> None:
    ledger.acquire_lease(KEY, run_id="r1", operator="alice", host="elsewhere.example", pid=1, ttl=0.2)
    time.sleep(0.4)
    with pytest.raises(LockHeld, match=r"no heartbeat for \d+s \(ttl 0\.2s\)") as caught:
        ledger.acquire_lease(KEY, run_id="r2", operator="bob", host=HOST, pid=os.getpid())
    assert caught.value.stale is True


def test_heartbeat_keeps_the_lease_alive(ledger: Ledger) -> None:
    lease = ledger.acquire_lease(KEY, run_id="r1", operator="alice", host="elsewhere.example", pid=1, ttl=0.3)
    lease.start_heartbeat()
    start = epoch_from_iso(lease.record.heartbeat_at)
    deadline = time.monotonic() + 10
    renewed_for = 0.0
    while renewed_for < 0.9 and time.monotonic() < deadline:  # three ttls of renewals
        time.sleep(0.1)
        holder = ledger.get_lease(KEY)
        assert holder is not None
        renewed_for = epoch_from_iso(holder.heartbeat_at) - start
    assert renewed_for >= 0.9
    assert not lease.lost.is_set()
    lease.release()
    assert ledger.get_lease(KEY) is None


def test_same_run_takes_back_its_own_stale_lease(ledger: Ledger) -> None:
    ledger.acquire_lease(KEY, run_id="r1", operator="alice", host=HOST, pid=dead_pid())
    resumed = ledger.acquire_lease(KEY, run_id="r1", operator="alice", host=HOST, pid=os.getpid())
    holder = ledger.get_lease(KEY)
    assert holder is not None and holder.pid == os.getpid() == resumed.record.pid


def test_same_run_cannot_take_a_live_lease_from_another_process(ledger: Ledger) -> None:
    ledger.acquire_lease(KEY, run_id="r1", operator="alice", host="elsewhere.example", pid=1)
    with pytest.raises(LockHeld):
        ledger.acquire_lease(KEY, run_id="r1", operator="alice", host=HOST, pid=os.getpid())


def test_break_lease_records_who_when_and_why(url: str, ledger: Ledger) -> None:
    ledger.append(Event("run.started", "r1", {}))
    lease = ledger.acquire_lease(KEY, run_id="r1", operator="alice", host=HOST, pid=os.getpid(), ttl=0.3)
    lease.start_heartbeat()
    with open_ledger(url) as other:  # `tminus unlock` runs in another process, with its own ledger
        broken = other.break_lease(KEY, by="carol", reason="alice's laptop died")
        assert other.break_lease(KEY, by="carol", reason="again") is None
    assert broken is not None and broken.run_id == "r1"
    assert ledger.get_lease(KEY) is None
    note = ledger.events("r1")[-1]
    assert (note.seq, note.type) == (2, "note")
    assert note.data["action"] == "unlock"
    assert (note.data["by"], note.data["reason"]) == ("carol", "alice's laptop died")
    assert note.data["holder"]["run_id"] == "r1" and note.data["holder"]["operator"] == "alice"
    assert lease.lost.wait(10)  # the holder's heartbeat notices

    # The holder appends on: its cached head is behind the note, and the chain must stay whole.
    ledger.append(Event("run.finished", "r1", {}))
    assert [e.seq for e in ledger.events("r1")] == [1, 2, 3]
    assert ledger.verify() == []

    # Releasing a lease that was broken and taken by another run leaves the new holder alone.
    taken = ledger.acquire_lease(KEY, run_id="r2", operator="bob", host=HOST, pid=os.getpid())
    lease.release()
    holder = ledger.get_lease(KEY)
    assert holder is not None and holder.run_id == "r2"
    taken.release()


# --- leases nobody will release: the state a crash leaves, written as SQL, then the next acquirer ---

def crash_lease(url: str, run_id: str, *, pid: int, beat_ago: float = 0.0) -> None:
    """The lease row a crashed holder leaves: inserted by hand, as its process wrote it before dying."""
    now = time.time()
    query(url, "INSERT INTO tminus_leases (key, run_id, operator, host, pid, acquired_at, heartbeat_at, ttl, token, "
          "generation) VALUES (:key, :run_id, 'alice', :host, :pid, :at, :beat, 15.0, 'crashed-token', 7)",
          key=KEY, run_id=run_id, host=HOST, pid=pid, at=now - 60, beat=now - beat_ago)
    query(url, "INSERT INTO tminus_lease_generations (key, generation) VALUES (:key, 7)", key=KEY)


def end_run(url: str, run_id: str, status: str) -> None:
    """A crash after the final status was written, before the release: the run row says it ended."""
    query(url, "UPDATE tminus_runs SET status = :status, exit_code = 0, finished_at = '2026-01-01T00:00:00Z' "
          "WHERE id = :id", status=status, id=run_id)


@pytest.mark.parametrize("alive", [False, True])
def test_the_lease_of_an_ended_run_is_reclaimed_and_noted_on_its_chain(url: str, ledger: Ledger, alive: bool) -> None:
    crash_lease(url, "r1", pid=os.getpid() if alive else dead_pid())
    end_run(url, "r1", "completed")
    lease = ledger.acquire_lease(KEY, run_id="r2", operator="bob", host=HOST, pid=os.getpid())
    assert lease.record.run_id == "r2" and lease.record.generation > 7  # a new acquisition, fenced apart
    reclaimed = lease.reclaimed
    assert reclaimed is not None and reclaimed.holder.run_id == "r1" and reclaimed.run_status == "completed"
    assert reclaimed.taken_by == "r2" and "ended (completed)" in reclaimed.why
    note = ledger.events("r1")[-1]
    assert note.type == "note" and note.data["action"] == "lease-reclaimed" and note.data["taken_by"] == "r2"
    assert ledger.verify("r1") == []
    current = ledger.get_lease(KEY)
    assert current is not None and current.run_id == "r2"
    lease.release()


def test_a_phantom_lease_of_a_gone_holder_is_reclaimed(url: str, ledger: Ledger) -> None:
    crash_lease(url, "never-recorded", pid=dead_pid())
    lease = ledger.acquire_lease(KEY, run_id="r2", operator="bob", host=HOST, pid=os.getpid())
    reclaimed = lease.reclaimed
    assert reclaimed is not None and reclaimed.run_status is None
    assert "never recorded" in reclaimed.why and "no longer running" in reclaimed.why
    lease.release()


def test_a_phantom_lease_of_a_live_holder_is_still_refused(url: str, ledger: Ledger) -> None:
    # A live acquirer between its lease and its run row looks exactly like this: never take it.
    crash_lease(url, "about-to-be-recorded", pid=os.getpid())
    with pytest.raises(LockHeld) as caught:
        ledger.acquire_lease(KEY, run_id="r2", operator="bob", host=HOST, pid=os.getpid())
    assert caught.value.stale is False


@pytest.mark.parametrize("status", ["running", "interrupted", "rollback_failed", "needs_operator"])
def test_the_lease_of_a_resumable_run_is_still_refused(url: str, ledger: Ledger, status: str) -> None:
    crash_lease(url, "r1", pid=dead_pid())
    query(url, "UPDATE tminus_runs SET status = :s WHERE id = 'r1'", s=status)
    with pytest.raises(LockHeld) as caught:
        ledger.acquire_lease(KEY, run_id="r2", operator="bob", host=HOST, pid=os.getpid())
    assert caught.value.stale is True and "tminus resume r1" in str(caught.value)
    assert [e.type for e in ledger.events("r1")] == []  # nothing noted: the run is still its own
