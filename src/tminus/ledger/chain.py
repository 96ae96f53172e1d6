"""The hash chain: how events are hashed, and how a run's chain is checked. Pure functions, no database.

Each run's chain starts from a genesis hash over the run's own details (runbook, text, environment,
operator, host, start time), so editing the run row is detected like editing an event. Event n
carries prev_hash (event n-1's hash, or the genesis) and
hash = sha256(prev_hash + canonical JSON of [run_id, seq, type, step_key, at, lseq, data]) (lseq: its
place in the ledger-wide chain, below; absent for events written before it), an HMAC-SHA256 when the
ledger is keyed: without the key nobody can rewrite a whole chain consistently.

A run's chain alone cannot show that its *last* events were deleted (the run row that records its
head is as writable as the events). So every event is also a link of one ledger-wide chain, in the
order events were written across all runs: link n = digest(link n-1 + canonical([n, run_id, seq,
event hash])), from a genesis digest. Deleting any event that something was written after leaves a
gap there, whichever run it belonged to (see docs/concepts.md for what verify proves).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

_KEY_CHECK = "tminus-ledger-key-check"
_LEDGER_GENESIS = "tminus-ledger-chain"


def canonical(value: Any) -> str:
    """One text per value: sorted keys, no whitespace, UTF-8 kept as is."""
    return _CANONICAL.encode(value)


def _scalars(values: list[Any]) -> str:
    """canonical() of a list of str, int and None (a hash's header, a link), byte for byte, without
    the encoder's generic walk (it runs twice for every event written and verified)."""
    parts = []
    for value in values:
        if value is None:
            parts.append("null")
        elif type(value) is int:
            parts.append(str(value))
        elif type(value) is str:
            parts.append(_quote(value))
        else:
            return canonical(values)
    return "[" + ",".join(parts) + "]"


def _fallback(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)  # Path, Decimal, UUID, enums: their text is the evidence


def normalise(data: Mapping[Any, Any]) -> tuple[dict[str, Any], str]:
    """Event data as plain JSON (what is stored and hashed) and its canonical text.

    Going through json once makes what we hash exactly what a later reader loads back
    (tuples become lists, non-string keys become strings, unknown types become text).
    """
    plain: dict[str, Any] = json.loads(_PLAIN.encode(dict(data)))
    return plain, _CANONICAL.encode(plain)


# Built once: json.dumps with any option builds a new encoder on every call. Same options, same bytes.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_PLAIN = json.JSONEncoder(default=_fallback)
_quote = json.encoder.encode_basestring  # what _CANONICAL writes for a str (ensure_ascii=False)


@dataclass(frozen=True)
class Hasher:
    key: bytes | None = None

    def digest(self, text: str) -> str:
        raw = text.encode()
        if self.key is None:
            return hashlib.sha256(raw).hexdigest()
        return hmac.new(self.key, raw, hashlib.sha256).hexdigest()

    def key_check(self) -> str:
        """Stored in meta so a wrong key is reported as such, not as a chain of mismatches."""
        return self.digest(_KEY_CHECK)

    def genesis(self, run: Mapping[str, Any]) -> str:
        text_hash = hashlib.sha256((run["runbook_text"] or "").encode()).hexdigest()
        identity = [
            run["id"], run["runbook_name"], run["runbook_path"], run["content_hash"], text_hash,
            run["environment"], run["operator"], run["host"], run["pid"], run["kind"],
            run["parent_run_id"], run["started_at"],
        ]
        return self.digest("run:" + canonical(identity))

    def event(
        self, prev_hash: str, run_id: str, seq: int, type_: str, step_key: str | None, at: str, data_text: str,
        lseq: int | None = None,
    ) -> str:
        # Equal to prev_hash + canonical([run_id, seq, type, step_key, at, (lseq,) data]) for canonical
        # data_text, without serialising the data a second time on the hot path. `lseq`, the event's
        # place in the ledger-wide chain, is covered since that chain exists (schema 3): unlinking an
        # event changes its hash. Older events (None) keep the older form.
        if (type(run_id) is str and type(seq) is int and type(type_) is str and type(at) is str
                and (step_key is None or type(step_key) is str) and (lseq is None or type(lseq) is int)):
            key = "null" if step_key is None else _quote(step_key)
            head = f"[{_quote(run_id)},{seq},{_quote(type_)},{key},{_quote(at)}" + ("" if lseq is None else f",{lseq}")
            return self.digest(prev_hash + head + "," + data_text + "]")
        fields: list[Any] = [run_id, seq, type_, step_key, at]
        head = _scalars(fields if lseq is None else [*fields, lseq])
        return self.digest(prev_hash + head[:-1] + "," + data_text + "]")

    def link(self, prev_link: str, lseq: int, run_id: str, seq: int, event_hash: str) -> str:
        """Link `lseq` of the ledger-wide chain; `prev_link` "" means the chain's start."""
        return self.digest((prev_link or self.digest(_LEDGER_GENESIS)) + _scalars([lseq, run_id, seq, event_hash]))


class StoredEvent(NamedTuple):  # a tuple: verify builds one per event of the ledger
    seq: int
    type: str
    step_key: str | None
    at: str
    data_text: str
    prev_hash: str
    hash: str
    lseq: int | None = None


def verify_chain(hasher: Hasher, run: Mapping[str, Any], events: Iterable[StoredEvent]) -> list[str]:
    """Problems in one run's chain, in human words; [] when intact. `events` in seq order."""
    rid = run["id"]
    problems: list[str] = []
    genesis = hasher.genesis(run)
    prev_seq, prev_hash = 0, genesis
    for e in events:
        label = f"run {rid}: event {e.seq} ({e.type})"
        if e.seq != prev_seq + 1:
            gap = f"event {prev_seq + 1}" if e.seq == prev_seq + 2 else f"events {prev_seq + 1}-{e.seq - 1}"
            problems.append(f"run {rid}: {gap} missing - deleted from the ledger after being written")
        elif e.prev_hash != prev_hash:
            if prev_seq == 0:
                problems.append(
                    f"{label} does not link to the run's recorded details - the run's runbook, text, "
                    "environment, operator, host or start time, or this event's prev_hash, was changed"
                )
            else:
                problems.append(
                    f"{label} does not link to event {prev_seq}: its prev_hash was changed, "
                    "or events were replaced or reordered"
                )
        try:
            data_text = canonical(json.loads(e.data_text))
        except ValueError:
            problems.append(f"{label} data is not valid JSON - the event was changed after it was written")
        else:
            if hasher.event(e.prev_hash, rid, e.seq, e.type, e.step_key, e.at, data_text, e.lseq) != e.hash:
                problems.append(f"{label} hash mismatch - the event was changed after it was written")
        prev_seq, prev_hash = e.seq, e.hash

    count, head = run["event_count"], run["head_hash"]
    if prev_seq < count:
        missing = f"event {count}" if prev_seq + 1 == count else f"events {prev_seq + 1}-{count}"
        problems.append(
            f"run {rid}: {missing} missing at the end - the run records {count} events "
            f"but the ledger holds {prev_seq}; they were deleted"
        )
    elif prev_seq > count:
        problems.append(
            f"run {rid}: {prev_seq - count} event(s) after the run's recorded last event {count} - "
            "added outside tminus, or the run's event count was changed"
        )
    elif prev_hash != head:
        what = "its recorded details were changed" if count == 0 else "the last event was replaced"
        problems.append(f"run {rid}: the run's head hash does not match its chain - {what}")
    return problems


class StoredLink(NamedTuple):
    lseq: int
    run_id: str
    seq: int
    hash: str
    lhash: str


def _where(link: StoredLink | None) -> str:
    return "the ledger's start" if link is None else f"run {link.run_id} event {link.seq}"


def verify_links(hasher: Hasher, links: Iterable[StoredLink], expected: tuple[int, str] | None = None) -> list[str]:
    """Problems in the ledger-wide chain, `links` in lseq order; `expected` a head (count, last link)
    recorded elsewhere earlier (`ledger verify --head`), if any. The chain's own head is its last link:
    deleting the ledger's newest events leaves nothing to compare with but `expected`."""
    problems: list[str] = []
    prev: StoredLink | None = None
    at_expected: str | None = None  # the link found where the recorded head says (not every link: memory stays flat)
    for link in links:
        last = 0 if prev is None else prev.lseq
        within = prev is not None and prev.run_id == link.run_id and link.seq - prev.seq == link.lseq - last
        if link.lseq != last + 1 and within:
            pass  # events of this run alone were deleted: its own chain reports them
        elif link.lseq != last + 1:
            gap = f"link {last + 1}" if link.lseq == last + 2 else f"links {last + 1}-{link.lseq - 1}"
            problems.append(f"ledger-wide chain: {gap} missing between {_where(prev)} and run {link.run_id} event "
                            f"{link.seq} - events written there were deleted (a run's tail, or a whole run)")
        elif hasher.link("" if prev is None else prev.lhash, link.lseq, link.run_id, link.seq, link.hash) != link.lhash:
            problems.append(f"ledger-wide chain: link {link.lseq} (run {link.run_id} event {link.seq}) does not "
                            "match - events were deleted, replaced or reordered and the links rewritten")
        if expected is not None and link.lseq == expected[0]:
            at_expected = link.lhash
        prev = link
    if expected is not None and at_expected != expected[1]:
        problems.append(f"ledger-wide chain: the recorded head {expected[0]}:{expected[1]} is not in the ledger - "
                        "events written up to then were deleted, or the ledger was rewritten or replaced")
    return problems
