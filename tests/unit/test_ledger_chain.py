"""The hash chain and the records, without a database."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tminus.ledger.chain import Hasher, StoredEvent, canonical, normalise, verify_chain
from tminus.ledger.records import EventRecord, LeaseRecord, iso_from_epoch

RUN = {
    "id": "r1", "runbook_name": "deploy", "runbook_path": "/rb.yaml", "content_hash": "c", "runbook_text": "t",
    "environment": "prod", "operator": "alice", "host": "h", "pid": 1, "kind": "run", "parent_run_id": None,
    "started_at": "2026-01-01T00:00:00.000000+00:00",
}


def chain(hasher: Hasher, n: int) -> tuple[dict[str, object], list[StoredEvent]]:
    prev = hasher.genesis(RUN)
    events = []
    for seq in range(1, n + 1):
        data_text = normalise({"seq": seq})[1]
        digest = hasher.event(prev, "r1", seq, "step.finished", "p.s", "at", data_text)
        events.append(StoredEvent(seq, "step.finished", "p.s", "at", data_text, prev, digest))
        prev = digest
    return {**RUN, "event_count": n, "head_hash": prev}, events


def test_event_hash_is_sha256_of_prev_hash_and_canonical_envelope() -> None:
    data = {"b": [1, 2.5, None], "a": "é"}
    _, data_text = normalise(data)
    expected = hashlib.sha256(
        ("p" * 64 + canonical(["r1", 3, "step.finished", None, "2026-01-01T00:00:00Z", data])).encode()
    ).hexdigest()
    assert Hasher().event("p" * 64, "r1", 3, "step.finished", None, "2026-01-01T00:00:00Z", data_text) == expected


def test_keyed_hashes_differ_from_plain_and_between_keys() -> None:
    plain, a, b = Hasher(), Hasher(b"k1"), Hasher(b"k2")
    assert len({h.event("", "r", 1, "t", None, "at", "{}") for h in (plain, a, b)}) == 3
    assert a.key_check() != b.key_check()


def test_normalise_makes_data_plain_json() -> None:
    plain, text = normalise({"path": Path("/x"), "when": datetime(2026, 1, 1, tzinfo=UTC), "t": (1, 2),
                             "s": {"b", "a"}, 1: "int key"})
    assert plain == {"path": "/x", "when": "2026-01-01T00:00:00+00:00", "t": [1, 2], "s": ["a", "b"],
                     "1": "int key"}
    assert canonical(json.loads(text)) == text


def test_intact_chain_has_no_problems() -> None:
    run, events = chain(Hasher(), 3)
    assert verify_chain(Hasher(), run, events) == []


def test_chain_checked_with_another_key_fails() -> None:
    run, events = chain(Hasher(b"right"), 2)
    assert len(verify_chain(Hasher(b"wrong"), run, events)) >= 2


def test_invalid_json_data_is_reported() -> None:
    run, events = chain(Hasher(), 2)
    events[1] = StoredEvent(2, "step.finished", "p.s", "at", "{broken", events[1].prev_hash, events[1].hash)
    assert verify_chain(Hasher(), run, events) == [
        "run r1: event 2 (step.finished) data is not valid JSON - the event was changed after it was written"
    ]


def test_extra_events_beyond_the_head_are_reported() -> None:
    run, events = chain(Hasher(), 3)
    run = {**run, "event_count": 2}
    problems = verify_chain(Hasher(), run, events)
    assert problems == ["run r1: 1 event(s) after the run's recorded last event 2 - added outside tminus, "
                        "or the run's event count was changed"]


def test_rewritten_last_event_with_valid_hash_is_caught_by_head() -> None:
    run, events = chain(Hasher(), 2)
    last = events[-1]
    forged_text = normalise({"seq": "forged"})[1]
    forged = Hasher().event(last.prev_hash, "r1", 2, last.type, last.step_key, last.at, forged_text)
    events[-1] = StoredEvent(2, last.type, last.step_key, last.at, forged_text, last.prev_hash, forged)
    assert verify_chain(Hasher(), run, events) == [
        "run r1: the run's head hash does not match its chain - the last event was replaced"
    ]


def test_lease_staleness_by_heartbeat_and_by_pid() -> None:
    now = datetime.now(UTC)
    beat = iso_from_epoch((now - timedelta(seconds=5)).timestamp())
    alive_here = LeaseRecord("k", "r", "alice", socket.gethostname(), os.getpid(), beat, beat, ttl=15)
    assert alive_here.stale_reason(now) is None
    assert alive_here.is_stale(now + timedelta(seconds=20))

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    gone = LeaseRecord("k", "r", "alice", alive_here.host, proc.pid, beat, beat, ttl=15)
    assert gone.stale_reason(now) == f"process {proc.pid} on {gone.host} is no longer running"
    elsewhere = LeaseRecord("k", "r", "alice", "elsewhere.example", proc.pid, beat, beat, ttl=15)
    assert not elsewhere.is_stale(now)


def test_records_are_json_safe() -> None:
    record = EventRecord("r1", 1, "note", None, "at", {"x": [1]}, "p", "h")
    assert json.loads(json.dumps(record.to_dict())) == {
        "run_id": "r1", "seq": 1, "type": "note", "step_key": None, "at": "at", "data": {"x": [1]},
        "prev_hash": "p", "hash": "h",
    }


def test_the_hash_inputs_are_the_json_encoders_bytes() -> None:
    """The chain's hash inputs must stay byte-identical across versions, or old ledgers stop verifying:
    the fast header/link encoding and the prebuilt encoders give exactly json.dumps's text."""
    from tminus.ledger.chain import _scalars

    def dumps(value: object) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    tricky = ["", "é ✓ 😀", "\u2028\u2029", "\x00\x1f\x7f", '"\\/', "\ud800", "a\tb\nc"]
    for text in tricky:
        for values in ([text, 1, None, -5, 10**30], ["r1", 7, "step.finished", text, "2026-12-03T19:46:11+00:00", 3]):
            assert _scalars(values) == dumps(values)
    assert _scalars([True, 1.5, "x"]) == dumps([True, 1.5, "x"])  # other types: the encoder itself
    hasher = Hasher(b"k")
    for text in [t for t in tricky if t != "\ud800"]:  # a lone surrogate cannot be hashed (UTF-8), then or now
        for lseq in (None, 0, 12):
            fields = [text, 3, "step.finished", None if lseq == 0 else text, "2026-12-03T19:46:11+00:00"]
            reference = dumps(fields if lseq is None else [*fields, lseq])[:-1] + ',{"a":1}]'
            assert hasher.event("prev", *fields, '{"a":1}', lseq) == hasher.digest("prev" + reference)
        assert hasher.link("l", 4, text, 2, "h") == hasher.digest("l" + dumps([4, text, 2, "h"]))
    data = {"b": (1, 2), 3: "int key", "a": {"z": {1, 2}, "y": float("nan")}, "é": b"\xff", "p": Path("/x")}
    plain, text = normalise(data)
    assert text == dumps(json.loads(json.dumps(data, default=lambda v: sorted(v) if isinstance(v, set) else (
        v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)))))
    assert plain == json.loads(text) and canonical(plain) == text
