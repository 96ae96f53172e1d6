"""find_rehearsal's verdict and its messages, word for word: each record written by the real
RehearsalRecord into a SQLite ledger, read back through the projection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tminus.engine.prerequisites import WantedRehearsal, find_rehearsal
from tminus.engine.rehearsal.record import RehearsalRecord
from tminus.ledger import open_ledger
from tminus.runbook.loader import load_runbook

DAY = 86400.0
HASH = "ab" * 32


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Any]:
    with open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as opened:
        yield opened


@pytest.fixture
def doc(tmp_path: Path) -> Any:
    (tmp_path / "runbook.yaml").write_text("name: cutover\nphases:\n  - name: a\n    steps: [{run: 'true'}]\n")
    return load_runbook(tmp_path / "runbook.yaml")


def cycle(index: int, at: str | None, fault: str = "fail", ok: bool = True, rto: float | None = 5.0,
          problems: list[str] | None = None) -> dict[str, Any]:
    return {"index": index, "at": at, "fault": fault, "ok": ok, "rto_s": rto, "problems": problems or [],
            "run_id": f"c{index}", "status": "rolled_back"}


def record(ledger: Any, doc: Any, rid: str, cycles: list[dict[str, Any]], *, hashes: dict[str, str] | None = None,
           not_rehearsed: list[dict[str, Any]] | None = None, finish: bool = True, env: str = "staging",
           reason: str | None = None) -> None:
    r = RehearsalRecord(ledger, doc, run_id=rid, environment=env, operator="tester")
    r.open({"procedure_hashes": {"production": HASH} if hashes is None else hashes, "cycles": [],
            "not_rehearsed": not_rehearsed or [], "all_phases": True})
    for c in cycles:
        r.cycle(c)
    if finish:
        ok = all(c["ok"] for c in cycles)
        r.finish(ok, 0 if ok else 12, reason or ("every cycle passed" if ok else "a cycle failed"))
    time.sleep(0.01)  # newest first is by start


def wanted(**kw: Any) -> WantedRehearsal:
    return WantedRehearsal(**{"runbook": "cutover", "environment": "staging", "target": "production",
                              "procedure_hash": HASH, **kw})


def test_describe_says_what_is_asked() -> None:
    assert wanted().describe() == "a passing rehearsal of cutover in staging, same procedure"
    assert wanted(within=7 * DAY, max_rto=600, phases=("a",)).describe() == (
        "a passing rehearsal of cutover in staging within 7d, every RTO <= 10m00s, every phase, same procedure")


def test_none_and_a_running_or_elsewhere_record_is_none(ledger: Any, doc: Any) -> None:
    assert find_rehearsal(ledger, wanted(), now=time.time()).message == (
        "no rehearsal of cutover in staging has finished (the ledger holds none)")
    record(ledger, doc, "running", [cycle(0, "a")], finish=False)  # crashed or still going: proves nothing
    record(ledger, doc, "elsewhere", [cycle(0, "a")], env="qa")
    verdict = find_rehearsal(ledger, wanted(), now=time.time())
    assert not verdict.ok and verdict.latest is None and verdict.evidence()["latest"] is None


def test_met_names_the_record(ledger: Any, doc: Any) -> None:
    record(ledger, doc, "good", [cycle(0, "a", rto=61.0), cycle(1, None, "monitor", rto=2.0)])
    verdict = find_rehearsal(ledger, wanted(max_rto=90, phases=("a",)), now=time.time() + 2 * 3600)
    assert verdict.ok and verdict.message == "rehearsal good passed 2h ago (2 cycles, max RTO 1m01s)"
    evidence = verdict.evidence()
    assert evidence["rehearsal_id"] == "good" and evidence["satisfied_by"]["problems"] == []
    assert evidence["wanted"]["phases"] == ["a"] and evidence["satisfied_by"]["ended"].endswith("Z")


def test_each_problem_in_words(ledger: Any, doc: Any) -> None:
    record(ledger, doc, "r1", [cycle(0, "a", ok=False, rto=None, problems=["rows differ: t 1 -> 2"]),
                               cycle(1, "b", "kill", rto=700.0), cycle(2, None, "monitor", ok=False)],
           hashes={"production": "cd" * 32, "staging": "ef" * 32})
    verdict = find_rehearsal(ledger, wanted(within=7 * DAY, max_rto=600, phases=("a", "b", "c")),
                             now=time.time() + 9 * DAY)
    assert not verdict.ok and verdict.satisfied_by is None
    assert verdict.message == (
        "latest rehearsal r1 failed 9d ago (3 cycles, max RTO 11m40s): "
        "failed: cycle 1 (fail at a): rows differ: t 1 -> 2; cycle 3 (monitor); "
        "too old: finished 9d ago, more than 7d; "
        f"another procedure: it rehearsed {'cd' * 6} for production, this runbook is {'ab' * 6} (edited since?); "
        "over max_rto: cycle 2 (kill at b) RTO 11m40s, 1m40s over 10m00s; "
        "phases not rehearsed: a, c")


def test_a_failed_record_without_failed_cycles_gives_its_reason(ledger: Any, doc: Any) -> None:
    r = RehearsalRecord(ledger, doc, run_id="blocked", environment="staging", operator="tester")
    r.open({"procedure_hashes": {"production": HASH}})
    r.finish(False, 10, "cycle 0 was blocked by its gates")
    message = find_rehearsal(ledger, wanted(), now=time.time()).message
    assert message.endswith("(0 cycles): failed: cycle 0 was blocked by its gates"), message


def test_roll_forward_covers_only_phases_after_the_point_of_no_return(ledger: Any, doc: Any) -> None:
    after = [{"phase": "c", "why": "after the point of no return"}]
    record(ledger, doc, "fwd", [cycle(0, "a"), cycle(1, None, "roll_forward")], not_rehearsed=after)
    message = find_rehearsal(ledger, wanted(phases=("a", "b", "c")), now=time.time()).message
    assert message.endswith("phases not rehearsed: b"), message  # b is before the PONR: it needs its own cycle
    record(ledger, doc, "fwd-failed", [cycle(0, "a"), cycle(1, "b"), cycle(2, None, "roll_forward", ok=False)],
           not_rehearsed=after)
    message = find_rehearsal(ledger, wanted(phases=("a", "b", "c")), now=time.time()).message
    assert message.endswith("phases not rehearsed: c"), message
    assert find_rehearsal(ledger, wanted(phases=("a", "b")), now=time.time()).satisfied_by is None  # failed
    assert find_rehearsal(ledger, wanted(phases=("a",)), now=time.time()).satisfied_by.run_id == "fwd"


def test_the_newest_satisfying_record_wins_and_the_latest_is_named(ledger: Any, doc: Any) -> None:
    record(ledger, doc, "old-good", [cycle(0, "a")])
    record(ledger, doc, "new-good", [cycle(0, "a")])
    record(ledger, doc, "newest-bad", [cycle(0, "a", ok=False)])
    verdict = find_rehearsal(ledger, wanted(phases=("a",)), now=time.time())
    assert verdict.ok and verdict.satisfied_by.run_id == "new-good" and verdict.latest.run_id == "newest-bad"


def test_an_undeclared_target_matches_the_whole_model_hash(ledger: Any, doc: Any) -> None:
    """A runbook without `environments:` hashes the same for every environment; the rehearsal recorded
    only its own: that is the hash to compare."""
    record(ledger, doc, "r", [cycle(0, "a")], hashes={"staging": HASH})
    assert find_rehearsal(ledger, wanted(), now=time.time()).ok
    record(ledger, doc, "r2", [cycle(0, "a")], hashes={"staging": "00" * 32})
    verdict = find_rehearsal(ledger, wanted(), now=time.time())
    assert verdict.satisfied_by.run_id == "r" and verdict.latest.run_id == "r2"
    assert verdict.latest.problems == (
        f"another procedure: it recorded no procedure hash for production, this runbook is {'ab' * 6} (edited since?)",)


def test_a_careless_record_does_not_break_the_gate(ledger: Any, doc: Any) -> None:
    """An RTO that is no number (a hand-made or future payload) is read as not measured, not as a crash."""
    record(ledger, doc, "odd", [cycle(0, "a", rto="12m"), cycle(1, "b", rto=True), cycle(2, "c", rto=None)])
    verdict = find_rehearsal(ledger, wanted(max_rto=60, phases=("a", "b", "c")), now=time.time())
    assert verdict.ok and verdict.message == "rehearsal odd passed 0s ago (3 cycles)"
