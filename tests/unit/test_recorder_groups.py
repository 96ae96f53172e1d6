"""The ledger's subscriber holds deferrable events (side-effect-free checks run side by side) and writes
them in grouped transactions, never after an event that is not deferrable (engine/recorder.py)."""

from __future__ import annotations

import time

import pytest

from tminus import events as ev
from tminus.engine import recorder as rec
from tminus.engine.recorder import LedgerRecorder
from tminus.engine.stop import INTERRUPT, Stopped, StopRequest
from tminus.errors import LeaseLost
from tminus.events import Event, EventBus
from tminus.ledger import Ledger, open_ledger


def _ledger(url: str) -> Ledger:
    ledger = open_ledger(url)
    ledger.create_run(run_id="r1", runbook_name="deploy", runbook_path="/rb.yaml", content_hash="c",
                      runbook_text="t", environment="prod", operator="alice", host="h", pid=1)
    return ledger


def _lost(exc: LeaseLost) -> StopRequest:
    return StopRequest(INTERRUPT, "lease lost", "lease")


def _check(n: int, type_: str = ev.STEP_FINISHED) -> Event:
    return Event(type_, "r1", {"n": n}, f"gates[0].checks[{n}]", deferrable=True)


def _types(ledger: Ledger) -> list[tuple[str, object]]:
    return [(e.type, e.data.get("n")) for e in ledger.events("r1")]


def test_held_until_an_event_that_acts_then_written_first_in_one_transaction(sqlite_url: str) -> None:
    with _ledger(sqlite_url) as ledger:
        recorder = LedgerRecorder(ledger.open_writer("r1"), _lost)
        for n in range(3):
            recorder(_check(n, ev.STEP_STARTED))
        assert _types(ledger) == []  # held: nothing acts on them yet
        recorder(Event(ev.SECTION_FINISHED, "r1", {"n": "section"}))
        assert _types(ledger) == [(ev.STEP_STARTED, 0), (ev.STEP_STARTED, 1), (ev.STEP_STARTED, 2),
                                  (ev.SECTION_FINISHED, "section")]
        assert recorder.transactions == 1
        assert ledger.verify("r1") == []


def test_written_every_group_events_and_at_flush(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rec, "GROUP_EVENTS", 4)
    with _ledger(sqlite_url) as ledger:
        recorder = LedgerRecorder(ledger.open_writer("r1"), _lost)
        bus = EventBus()
        bus.subscribe(recorder)
        for n in range(10):
            bus.emit(_check(n))
        assert len(ledger.events("r1")) == 8 and recorder.transactions == 2
        bus.flush()
        assert [n for _, n in _types(ledger)] == list(range(10)) and recorder.transactions == 3
        bus.flush()  # nothing held: no empty transaction
        assert recorder.transactions == 3


def test_a_long_group_still_shows_progress(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rec, "GROUP_AGE", 0.05)
    with _ledger(sqlite_url) as ledger:
        recorder = LedgerRecorder(ledger.open_writer("r1"), _lost)
        recorder(_check(0))
        time.sleep(0.06)
        recorder(_check(1))  # the oldest held is older than GROUP_AGE: both written now
        assert [n for _, n in _types(ledger)] == [0, 1]


def test_a_lost_lease_writes_nothing_held_and_stops(sqlite_url: str) -> None:
    with _ledger(sqlite_url) as ledger:
        lease = ledger.acquire_lease("deploy@prod", run_id="r1", operator="alice", host="h", pid=1)
        recorder = LedgerRecorder(ledger.open_writer("r1", fence=lease.fence), _lost)
        recorder(_check(0))
        ledger.break_lease("deploy@prod", by="bob", reason="test")
        with pytest.raises(Stopped):
            recorder.flush()
        assert not [e for e in ledger.events("r1") if e.type == ev.STEP_FINISHED]
        with pytest.raises(Stopped):
            recorder(_check(1))
