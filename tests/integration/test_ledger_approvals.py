"""Approvals consumed once, keyed by the request they answer, on a real SQLite file and PostgreSQL:
directly through run writers racing from two connections, and through the operator channel."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tminus import events as ev
from tminus.engine.approvals import OperatorChannel
from tminus.engine.recorder import LedgerRecorder
from tminus.engine.stop import StopChannel, StopRequest
from tminus.errors import ApprovalTaken
from tminus.events import Event, EventBus
from tminus.ledger import Ledger, open_ledger

RID = "r1"
STEP = "monitor.pause"

pytestmark = pytest.mark.usefixtures("_no_key")


@pytest.fixture
def ledger(url: str) -> Iterator[Ledger]:
    opened = open_ledger(url)
    opened.create_run(run_id=RID, runbook_name="deploy", runbook_path="/rb.yaml", content_hash="x",
                      runbook_text="name: deploy", environment="prod", operator="alice",
                      host=socket.gethostname(), pid=os.getpid())
    yield opened
    opened.close()


def given(approval_id: int) -> Event:
    return Event(ev.APPROVAL_GIVEN, RID, {"approved": True, "approval_id": approval_id}, step_key=STEP)


def test_two_concurrent_consumers_of_one_approval_one_wins(url: str, ledger: Ledger) -> None:
    request = ledger.append(Event(ev.APPROVAL_REQUESTED, RID, {}, step_key=STEP)).seq
    approval = ledger.record_approval(RID, STEP, approved=True, by="bob", host="h2")
    others = [open_ledger(url) for _ in range(2)]
    start = threading.Barrier(2)
    results: list[str] = []

    def consume(other: Ledger) -> None:
        writer = other.open_writer(RID)
        start.wait()
        try:
            writer.consume_approval(request, approval.id, given(approval.id))
            results.append("won")
        except ApprovalTaken:
            results.append("taken")

    threads = [threading.Thread(target=consume, args=(o,)) for o in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for o in others:
        o.close()
    assert sorted(results) == ["taken", "won"]
    assert [e.type for e in ledger.events(RID)].count(ev.APPROVAL_GIVEN) == 1
    (stored,) = ledger.approvals(RID, STEP)
    assert stored.request_seq == request and stored.consumed_at is not None
    assert ledger.verify() == []


def test_an_approval_answers_one_request_and_a_request_takes_one_approval(ledger: Ledger) -> None:
    writer = ledger.open_writer(RID)
    first = writer.append(Event(ev.APPROVAL_REQUESTED, RID, {}, step_key=STEP)).seq
    one = ledger.record_approval(RID, STEP, approved=True, by="bob", host="h2")
    two = ledger.record_approval(RID, STEP, approved=True, by="carol", host="h3")
    writer.consume_approval(first, one.id, given(one.id))
    with pytest.raises(ApprovalTaken, match="already answered"):  # the unique (run, request)
        writer.consume_approval(first, two.id, given(two.id))
    second = writer.append(Event(ev.APPROVAL_REQUESTED, RID, {}, step_key=STEP)).seq
    with pytest.raises(ApprovalTaken, match="already consumed"):
        writer.consume_approval(second, one.id, given(one.id))
    writer.consume_approval(second, two.id, given(two.id))
    assert [(a.by, a.request_seq) for a in ledger.approvals(RID, STEP)] == [("bob", first), ("carol", second)]
    assert [e.type for e in ledger.events(RID)].count(ev.APPROVAL_GIVEN) == 2
    assert ledger.verify() == []


def channel(ledger: Ledger, *, operator: str = "alice", identity: str = "alice@h1",
            ) -> tuple[OperatorChannel, list[Event]]:
    """The operator channel of run r1 as the session wires it: events go through its recorder."""
    bus = EventBus()
    lost = lambda exc: StopRequest("interrupt", str(exc), "lease")  # noqa: E731
    bus.subscribe(LedgerRecorder(ledger.open_writer(RID), on_lost=lost))
    seen: list[Event] = []
    bus.subscribe(seen.append)

    def emit(type_: str, step_key: str | None = None, **data: Any) -> None:
        bus.emit(Event(type_, RID, data, step_key))

    return OperatorChannel(ledger=ledger, run_id=RID, operator=operator, emit=emit, stop=StopChannel(),
                           identity=identity), seen


def answer_when_asked(url: str, asked: int, *answers: dict[str, Any]) -> threading.Thread:
    """From another connection, once the `asked`-th request of STEP is in the ledger, record `answers`
    (record_approval's keywords), each given for the request pending then."""

    def answer() -> None:
        with open_ledger(url) as other:
            while len([e for e in other.events(RID) if e.type == ev.APPROVAL_REQUESTED]) < asked:
                time.sleep(0.02)
            for a in answers:
                other.record_approval(RID, STEP, host="h2", **a)

    thread = threading.Thread(target=answer)
    thread.start()
    return thread


def test_a_leftover_answer_to_pause_one_does_not_answer_pause_two(url: str, ledger: Ledger) -> None:
    """Two answers to pause 1: the first is taken, the second is recorded and answers nothing, also not
    pause 2, which waits for an answer of its own."""
    thread = answer_when_asked(url, 1, {"approved": True, "by": "bob", "reason": "first"},
                               {"approved": False, "by": "carol", "reason": "late no"})
    ops, _seen = channel(ledger)
    one = ops.request(STEP, "continue?", None, timeout=10)
    thread.join(timeout=30)
    assert (one.approved, one.by, one.reason) == (True, "bob", "first")
    two = ops.request(STEP, "continue again?", None, timeout=0.5)
    assert (two.approved, two.how) == (False, "timeout")  # not carol's leftover no
    thread = answer_when_asked(url, 3, {"approved": True, "by": "dave", "reason": "third"})
    three = ops.request(STEP, "and again?", None, timeout=10)
    thread.join(timeout=30)
    assert (three.approved, three.by) == (True, "dave")
    requests = [e.seq for e in ledger.events(RID) if e.type == ev.APPROVAL_REQUESTED]
    stored = ledger.approvals(RID, STEP)
    # carol's late no is recorded for request 1 if it was still pending, or for nothing if bob's yes was
    # already taken (the answering thread races the requester); either way it answers nothing
    late = stored[1].for_seq
    assert late in (requests[0], None), late
    assert [(a.by, a.for_seq, a.lead, a.request_seq) for a in stored] == [
        ("bob", requests[0], True, requests[0]), ("carol", late, False, None),
        ("dave", requests[2], True, requests[2])]
    answers = [e.data["approval_id"] for e in ledger.events(RID) if e.type == ev.APPROVAL_GIVEN]
    assert answers == [stored[0].id, None, stored[2].id]
    assert ledger.verify() == []


def test_an_answer_given_when_nothing_is_asked_answers_nothing(ledger: Ledger) -> None:
    early = ledger.record_approval(RID, STEP, approved=False, by="bob", host="h2", reason="in advance")
    assert (early.for_seq, early.lead) == (None, False)
    ops, _seen = channel(ledger)
    answer = ops.request(STEP, "continue?", None, timeout=0.5)
    assert (answer.approved, answer.how) == (False, "timeout")
    (stored,) = ledger.approvals(RID, STEP)
    assert (stored.id, stored.request_seq) == (early.id, None)


def test_two_concurrent_answers_to_one_request_are_both_recorded_one_leads(url: str, ledger: Ledger) -> None:
    request = ledger.append(Event(ev.APPROVAL_REQUESTED, RID, {}, step_key=STEP)).seq
    others = [open_ledger(url) for _ in range(2)]
    start = threading.Barrier(2)
    results: list[Any] = []

    def answer(other: Ledger, name: str) -> None:
        start.wait()
        results.append(other.record_approval(RID, STEP, approved=True, by=name, host="h"))

    threads = [threading.Thread(target=answer, args=(o, n)) for o, n in zip(others, ("bob", "carol"), strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for o in others:
        o.close()
    assert sorted(r.lead for r in results) == [False, True]
    stored = ledger.approvals(RID, STEP)
    assert sorted(a.by for a in stored) == ["bob", "carol"] and {a.for_seq for a in stored} == {request}
    assert [a.lead for a in stored] == [True, False]  # the lead is the older row: the run takes it first


def test_the_runs_own_operator_cannot_answer_a_second_person_request(url: str, ledger: Ledger) -> None:
    """Refused: the run's operator name, the run's OS identity under another name, no identity at all.
    Taken: another identity. Each refusal is a note; the answer carries the claim and the identity."""
    thread = answer_when_asked(url, 1, {"approved": True, "by": "alice", "identity": "mallory@h9"},
                               {"approved": True, "by": "bob", "identity": "alice@h1"},
                               {"approved": True, "by": "carol"},
                               {"approved": True, "by": "bob", "identity": "bob@h2"})
    ops, seen = channel(ledger)
    answer = ops.request(STEP, "go?", None, timeout=10, second_person_of="alice")
    thread.join(timeout=30)
    own, posing, unknown, other = ledger.approvals(RID, STEP)
    assert (answer.approved, answer.by, answer.how) == (True, "bob", "approve-command")
    notes = [e for e in seen if e.type == ev.NOTE]
    assert [(n.data["action"], n.data["approval_id"]) for n in notes] == [
        ("self-approval-refused", own.id), ("self-approval-refused", posing.id), ("self-approval-refused", unknown.id)]
    assert "also not as bob" in notes[1].data["message"] and "no identity" in notes[2].data["message"]
    (request,) = [e for e in seen if e.type == ev.APPROVAL_REQUESTED]
    assert (request.data["operator"], request.data["identity"]) == ("alice", "alice@h1")
    (given,) = [e for e in seen if e.type == ev.APPROVAL_GIVEN]
    assert (given.data["by"], given.data["identity"], given.data["approval_id"]) == ("bob", "bob@h2", other.id)
    consumed = {a.id: a.request_seq for a in ledger.approvals(RID, STEP)}
    assert [consumed[a.id] for a in (own, posing, unknown)] == [None] * 3 and consumed[other.id] is not None
