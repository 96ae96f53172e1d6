"""The rehearsal report (reports/rehearsal.py) read back from records written by the real writer in a real
SQLite ledger: passing, failing with each difference, over budget, phases not rehearsed, a late kill
switch, figures never reached, careless payloads, and secrets that must never come out."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.rehearsal_records import MASKED_URL, SECRET, fabricate, good_cycle

from tminus.ledger import Ledger, open_ledger
from tminus.projection import project
from tminus.reports import rehearsal as report
from tminus.runbook.loader import load_runbook
from tminus.runbook.procedure import procedure_hashes

JSON_KEYS = {"rehearsal_id", "kind", "runbook", "runbook_path", "environment", "operator", "host", "started_at",
             "finished_at", "status", "verdict", "exit_code", "reason", "content_hash", "procedure_hashes",
             "options", "point_of_no_return", "fingerprint_sources", "all_phases", "planned", "not_rehearsed",
             "cycles", "summary"}
CYCLE_KEYS = {"index", "at", "phase_index", "fault", "rehearsed_as", "run_id", "status", "exit_code", "ok",
              "problems", "reached_s", "fault_at", "rto_s", "verify_s", "budget_s", "within_budget",
              "over_budget_s", "kill_switch", "fingerprints", "undo_failed", "undo_missing", "drills",
              "fingerprint_s", "run_s"}


@pytest.fixture
def ledger(sqlite_url: str) -> Any:
    with open_ledger(sqlite_url) as store:
        yield store


def read(ledger: Ledger, rid: str) -> tuple[list[str], dict[str, Any]]:
    record = ledger.get_run(rid)
    view = project(ledger.events(rid)).rehearsal
    return report.render(view, record), report.to_json(record, view)


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def cycle_block(lines: list[str], index: int) -> list[str]:
    """The lines of cycle `index`: its head line and the indented lines below it."""
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(("✓ ", "✗ "))
                 and line.split()[1] == str(index))
    end = start + 1
    while end < len(lines) and lines[end].startswith("      "):
        end += 1
    return lines[start:end]


def test_a_passing_rehearsal_reads_back_with_every_hash_and_stable_keys(ledger: Ledger, tmp_path: Path) -> None:
    fabricate(ledger, tmp_path, "R-ok", [good_cycle(1, "expand", run_id="C-1"),
                                         good_cycle(2, "migrate", run_id="C-2", rto_s=0.4, budget_s=120.0)],
              ok=True)
    lines, data = read(ledger, "R-ok")
    hashes = procedure_hashes(load_runbook(tmp_path / "runbook.yaml"))
    assert lines[0] == "Rehearsal R-ok: shop in staging · PASSED"
    assert (f"procedure hash: production {hashes['production'][:12]}, qa {hashes['qa'][:12]}, "
            f"staging {hashes['staging'][:12]}") in lines
    assert "options: fault fail · at every phase before the point of no return · no roll-forward" in lines
    assert cycle_block(lines, 1) == [
        "  ✓ 1 phase expand · fault fail · rehearsed as rollback · ended rolled_back · run C-1",
        "      reached 1.5s · RTO 2.2s against budget 5m00s · verify 2.5s",
        "      fingerprints equal (1 source)"]
    assert "RTO 400ms against budget 2m00s" in cycle_block(lines, 2)[1]
    assert lines[-1] == "Verdict: PASSED: every cycle ok (2) · max RTO 2.2s · exit 0"
    assert not any("OVER BUDGET" in line or "Why:" in line for line in lines)

    assert set(data) == JSON_KEYS and data["verdict"] == "passed" and data["procedure_hashes"] == hashes
    assert [set(c) for c in data["cycles"]] == [CYCLE_KEYS, CYCLE_KEYS]
    assert [c["run_id"] for c in data["cycles"]] == ["C-1", "C-2"]
    assert data["summary"] == {"cycles": 2, "ok": 2, "planned": 2, "max_rto_s": 2.25}
    json.dumps(data)  # plain JSON all through


def test_a_failing_cycle_lists_each_difference_and_each_undo_on_its_own_line(ledger: Ledger, tmp_path: Path) -> None:
    bad = good_cycle(2, "migrate", ok=False, status="rolled_back", problems=["state not restored"],
                     fingerprints={"equal": False, "sources": ["shop db"], "errors": ["orders_archive: timeout"],
                                   "differences": ["table orders: column nickname added",
                                                   "table orders: rows 3 -> 4"]},
                     undo_failed=[{"step": "migrate.s1", "name": "drop column", "error": "exit 1"}],
                     undo_missing=[{"step": "migrate.s2", "name": "send mail", "why": "no undo"}])
    fabricate(ledger, tmp_path, "R-bad", [good_cycle(1, "expand"), bad], ok=False, exit_code=12,
              reason="cycle 2: the state was not restored")
    lines, data = read(ledger, "R-bad")
    block = cycle_block(lines, 2)
    assert block[0].startswith("  ✗ 2 phase migrate")
    assert block[2:] == [
        "      fingerprints DIFFER (1 source):",
        "        table orders: column nickname added",
        "        table orders: rows 3 -> 4",
        "      fingerprint error: orders_archive: timeout",
        "      undo FAILED: drop column (migrate.s1): exit 1",
        "      undo MISSING: send mail (migrate.s2): no undo",
        "      problem: state not restored"]
    assert lines[0].endswith("· FAILED")
    assert lines[-2:] == ["Verdict: FAILED: cycle(s) not ok: 2 · max RTO 2.2s · exit 12",
                          "Why: cycle 2: the state was not restored"]
    c2 = data["cycles"][1]
    assert c2["fingerprints"]["equal"] is False and len(c2["fingerprints"]["differences"]) == 2
    assert data["summary"]["ok"] == 1 and data["verdict"] == "failed"


def test_over_budget_is_marked_by_how_much_and_a_recorded_verdict_wins(ledger: Ledger, tmp_path: Path) -> None:
    fabricate(ledger, tmp_path, "R-slow", [
        good_cycle(1, "expand", rto_s=400.0, budget_s=120.0, within_budget=None),  # judged here
        good_cycle(2, "migrate", rto_s=100.0, budget_s=120.0, within_budget=False),  # as the rehearsal judged
        good_cycle(3, "migrate", rto_s=120.0, budget_s=120.0, within_budget=None),  # exactly on budget
        good_cycle(4, "migrate", rto_s=5.0, budget_s=None, within_budget=None)], ok=False)
    lines, data = read(ledger, "R-slow")
    assert "RTO 6m40s against budget 2m00s: OVER BUDGET by 4m40s" in cycle_block(lines, 1)[1]
    assert "RTO 1m40s against budget 2m00s: OVER BUDGET ·" in cycle_block(lines, 2)[1]
    assert "OVER BUDGET" not in cycle_block(lines, 3)[1]
    assert "RTO 5.0s (no budget)" in cycle_block(lines, 4)[1]
    assert [(c["within_budget"], c["over_budget_s"]) for c in data["cycles"]] == [
        (False, 280.0), (False, None), (True, None), (None, None)]


@pytest.mark.parametrize(("forward", "cover"), [
    (None, "not rehearsed (rehearse with --roll-forward)"),
    (True, "covered by the roll-forward cycle"),
    (False, "the roll-forward cycle FAILED"),
])
def test_phases_after_the_point_of_no_return_are_roll_forward_only(
        ledger: Ledger, tmp_path: Path, forward: bool | None, cover: str) -> None:
    cycles = [good_cycle(1, "expand")]
    if forward is not None:
        cycles.append(good_cycle(2, None, fault="roll_forward", rehearsed_as="roll_forward_only", ok=forward,
                                 budget_s=None, fingerprints={"equal": False, "expected": True,
                                                              "differences": ["table orders: column old dropped"]}))
    fabricate(ledger, tmp_path, "R-pnr", cycles, ok=forward is not False)
    lines, data = read(ledger, "R-pnr")
    assert ("point of no return: drop old column (runbook.yaml:17) in phase contract: later phases are "
            "roll-forward only") in lines
    i = lines.index("Not rehearsed with a rollback:")
    assert lines[i + 1] == (f"  contract: roll-forward only: {cover} "
                            "(after the point of no return: step 'drop old column')")
    why = "after the point of no return: step 'drop old column'"
    assert data["not_rehearsed"] == [{"phase": "contract", "why": why}]
    if forward is not None:
        block = cycle_block(lines, 2)
        assert block[0].startswith("  ✓ 2 full run, then rolled back · fault roll_forward · rehearsed as "
                                   "roll-forward only" if forward else "  ✗ 2 full run")
        assert "      fingerprints DIFFER (expected after the point of no return):" in block


def test_the_kill_switch_against_its_target(ledger: Ledger, tmp_path: Path) -> None:
    late = {"run_id": "K-1", "status": "completed", "actual_s": 40.0, "target_s": 30.0, "within": False}
    met = {"run_id": "K-2", "status": "completed", "actual_s": 12.0, "target_s": 30.0, "within": None}
    fabricate(ledger, tmp_path, "R-ks", [
        good_cycle(1, None, fault="kill_switch", kill_switch=late, ok=False),
        good_cycle(2, None, fault="kill_switch", kill_switch=met)], ok=False)
    lines, data = read(ledger, "R-ks")
    assert cycle_block(lines, 1)[0].startswith("  ✗ 1 kill switch · fault kill_switch")
    assert "      kill switch 40.0s against target 30.0s: LATE by 10.0s (run K-1, completed)" in cycle_block(lines, 1)
    assert "      kill switch 12.0s against target 30.0s: within target (run K-2, completed)" in cycle_block(lines, 2)
    assert data["cycles"][0]["kill_switch"] == late
    assert cycle_block(lines, 2)[0].startswith("  ✓ 2 kill switch") and "LATE" not in "".join(cycle_block(lines, 2))


def test_figures_never_reached_are_a_dash_and_careless_payloads_do_not_crash(
        ledger: Ledger, tmp_path: Path) -> None:
    none = good_cycle(1, "expand", ok=False, status="failed", reached_s=None, rto_s=None, verify_s=None,
                      budget_s=None, within_budget=None, fingerprints=None,
                      kill_switch={"run_id": None, "actual_s": None, "target_s": 30.0, "within": None},
                      drills=[{"step": "backup", "name": None, "drill_seconds": None}])
    careless: dict[str, Any] = {"index": 1}  # a writer that recorded nothing else
    fabricate(ledger, tmp_path, "R-none", [none, careless], ok=False)
    lines, data = read(ledger, "R-none")
    assert cycle_block(lines, 1)[1:] == [
        "      reached - · RTO - · drill backup - · verify -",
        "      kill switch - against target 30.0s",
        "      fingerprints: - (nothing fingerprinted)"]
    assert cycle_block(lines, 2)[0] == "  ✗ 2 - · fault - · rehearsed as rollback · ended -"
    assert data["summary"]["max_rto_s"] is None and "max RTO -" in lines[-2]
    assert data["cycles"][1]["fingerprints"] == {"equal": None, "differences": [], "expected": None, "errors": [],
                                                 "sources": None}


def test_a_record_without_its_plan_or_its_end(ledger: Ledger, tmp_path: Path) -> None:
    """The rehearse process died: right after creating the record, or between two cycles."""
    doc_path = tmp_path / "runbook.yaml"
    fabricate(ledger, tmp_path, "R-half", [good_cycle(1, "expand")], ok=None)
    doc = load_runbook(doc_path)
    ledger.create_run(run_id="R-empty", runbook_name="shop", runbook_path=str(doc_path), content_hash="c" * 64,
                      runbook_text=doc.text, environment="staging", operator="rita", host="h", pid=1,
                      kind="rehearsal")
    lines, data = read(ledger, "R-half")
    assert lines[0].endswith("· UNFINISHED")
    assert "Planned, not measured (the rehearsal ended first):" not in lines
    assert lines[-1].startswith("Verdict: UNFINISHED (record running")
    assert data["verdict"] == "unfinished" and data["finished_at"] is None
    lines, data = read(ledger, "R-empty")
    assert lines[-1] == "no plan recorded: the rehearsal stopped before it began"
    assert data["cycles"] == [] and data["procedure_hashes"] == {} and set(data) == JSON_KEYS


def test_planned_cycles_never_measured_are_listed(ledger: Ledger, tmp_path: Path) -> None:
    fabricate(ledger, tmp_path, "R-short", [good_cycle(1, "expand")], ok=False,
              cycles=[{"index": 0, "at": "expand", "fault": "fail"}, {"index": 1, "at": "migrate", "fault": "fail"},
                      {"index": 2, "at": None, "fault": "monitor"}])
    lines, _data = read(ledger, "R-short")
    assert "Cycles (1 of 1 ok, 3 planned):" in lines
    i = lines.index("Planned, not measured (the rehearsal ended first):")
    assert lines[i + 1:i + 3] == ["  phase migrate", "  monitor window"]


def test_secrets_never_come_out_and_a_masked_url_stays_masked(ledger: Ledger, tmp_path: Path) -> None:
    leaky = f"postgresql://app:{SECRET}@db.internal/shop"
    bad = good_cycle(1, "expand", ok=False, problems=[f"could not connect to {leaky}"],
                     fingerprints={"equal": None, "errors": [f"{leaky}: refused"], "differences": []},
                     undo_failed=[{"step": "expand.s1", "name": "undo", "error": f"psql {leaky} exit 2"}])
    fabricate(ledger, tmp_path, "R-secret", [bad], ok=False, reason=f"cycle 1 failed: {leaky}",
              fingerprints=[{"name": "shop db", "url": MASKED_URL, "source": "migrate"},
                            {"name": "leaky", "url": leaky, "tables": ["a", "b"], "source": "fingerprint"}])
    lines, data = read(ledger, "R-secret")
    text = "\n".join(lines)
    dumped = json.dumps(data)
    assert SECRET not in text and SECRET not in dumped
    assert f"fingerprinted: shop db: {MASKED_URL} (all tables) [migrate]" in lines
    assert "fingerprinted: leaky: postgresql://app:***@db.internal/shop (a, b) [fingerprint]" in lines
    assert text.count("postgresql://app:***@db.internal/shop") == 6
    summary = report.summary(ledger.get_run("R-secret"), project(ledger.events("R-secret")).rehearsal)
    assert SECRET not in json.dumps(summary)


def test_why_status_and_verify_read_a_rehearsal_record(ledger: Ledger, tmp_path: Path) -> None:
    """Readers made for runs do not crash on a record of kind rehearsal, and say what it is."""
    from tminus.cli.render import status_rows
    from tminus.reports.why import explain

    bad = good_cycle(2, "migrate", ok=False, problems=["state not restored"],
                     fingerprints={"equal": False, "differences": ["table orders: rows 3 -> 4"]})
    fabricate(ledger, tmp_path, "R-why", [good_cycle(1, "expand"), bad], ok=False, exit_code=12)
    fabricate(ledger, tmp_path, "R-gone", [good_cycle(1, "expand")], ok=None)
    x = explain(ledger.get_run("R-why"), ledger.events("R-why"))
    assert x.summary == "Rehearsal R-why failed: 1 of 2 cycle(s) ok, max RTO 2.2s."
    assert [c.text for c in x.causes] == ["Cycle 2 (phase migrate, fail) failed: state not restored."]
    assert x.causes[0].details == ["table orders: rows 3 -> 4"]
    assert "0 gate checks" not in "\n".join(x.lines())
    gone = explain(ledger.get_run("R-gone"), ledger.events("R-gone"))
    assert not any("tminus resume" in n for n in gone.next_steps)
    assert any("rehearse again" in n for n in gone.next_steps)

    ledger.create_run(run_id="R-dead", runbook_name="shop", runbook_path="/rb.yaml", content_hash="c" * 64,
                      runbook_text="", environment="staging", operator="rita", host=socket.gethostname(),
                      pid=dead_pid(), kind="rehearsal")
    rows = {r["run_id"]: r for r in status_rows(ledger)}
    assert set(rows) == {"R-gone", "R-dead"} and rows["R-gone"]["kind"] == "rehearsal"
    assert rows["R-gone"]["state"] == "running"  # its process (this test) is alive
    assert rows["R-dead"]["state"] == "rehearsal unfinished (its process is gone): rehearse again"
    assert ledger.verify() == [] and ledger.verify("R-why") == []


def test_the_listing_constant_is_the_writers_kind() -> None:
    from tminus.cli.rehearsals import KIND
    from tminus.engine.rehearsal.record import KIND as WRITTEN

    assert KIND == WRITTEN == "rehearsal"


def test_a_cycles_run_names_its_rehearsal_in_its_first_line() -> None:
    """The tag keeps the 0-based index; the line counts as people do."""
    from tminus.cli.lines import format_event
    from tminus.events import Event

    tagged = Event("run.started", "C-1", {"runbook": "shop", "environment": "staging", "operator": "rita",
                                          "host": "h", "rehearsal": {"id": "R-1", "cycle": 1, "fault": "kill",
                                                                     "at": "migrate"}})
    line = format_event(tagged, "T+0:00")
    assert line is not None and line.endswith("by rita@h · rehearsal R-1 cycle 2: fault kill after 'migrate'")
    plain = Event("run.started", "C-1", {"runbook": "shop", "environment": "staging", "operator": "rita",
                                         "host": "h", "rehearsal": "not a mapping"})
    assert (format_event(plain, "T+0:00") or "").endswith("by rita@h")
