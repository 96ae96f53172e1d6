"""The RunReport model (reports/run_report.py) of four real runs: each ending's sections in order,
the failed step with its failed expectation (expected vs actual), the rollback plan with each undo's
status, the monitor's chart (threshold, readings, firing point), approvals and the chain's verdict;
a tampered ledger row turns the verdict; the canary secret printed by a step is nowhere in it.

Each scenario is run once for the module (a real `tminus run` subprocess each, side by side)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tests import report_runs
from tests.report_runs import CANARY, EXPECTED, ReportRun

from tminus.ledger import open_reader
from tminus.reports.formats import render
from tminus.reports.run_report import RunReport, build_report


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ReportRun]:
    base = tmp_path_factory.mktemp("report-runs")
    with ThreadPoolExecutor(len(report_runs.SCENARIOS)) as pool:  # four subprocesses at once: one's time
        futures = {name: pool.submit(make, base / name) for name, make in report_runs.SCENARIOS.items()}
        return {name: f.result() for name, f in futures.items()}


def report(run: ReportRun, **kw: Any) -> RunReport:
    reader = open_reader(run.ledger_url)
    try:
        return build_report(reader, run.run_id, **kw)
    finally:
        reader.close()


SECTIONS = {
    "completed": ["gates", "phase:prepare", "phase:deploy", "verify", "decision"],
    "rolled_back": ["gates", "phase:prepare", "phase:deploy", "verify", "rollback", "undo:deploy",
                    "undo:prepare", "verify-after-rollback"],
    "rollback_failed": ["gates", "phase:prepare", "phase:deploy", "verify", "rollback", "undo:deploy"],
    "monitor_fired": ["gates", "phase:prepare", "phase:deploy", "verify", "decision", "monitor", "rollback",
                      "undo:deploy", "undo:prepare", "verify-after-rollback"],
}


@pytest.mark.parametrize("name", list(report_runs.SCENARIOS))
def test_each_ending_is_reported_with_its_sections_in_order(runs: dict[str, ReportRun], name: str) -> None:
    run = runs[name]
    status, code = EXPECTED[name]
    assert (run.status, run.exit_code) == (status, code)
    r = report(run)
    assert (r.status, r.exit_code, r.run_id, r.runbook, r.operator) == (status, code, run.run_id, "report-demo",
                                                                        "tester")
    assert [s.id for s in r.sections] == SECTIONS[name]
    assert r.summary and r.content_hash and r.chain.intact is True and r.chain.problems == []
    # T+0 is the first phase's start: gates before it, the phases from it on
    gates, prepare = r.sections[0], r.sections[1]
    assert gates.start is not None and gates.start < 0 and prepare.start == 0
    assert prepare.planned_start == 0 and prepare.budget == 5 and r.sections[2].planned_start == 5
    # every step of the runbook's gates and phases is there, in the order it began
    keys = [s.key for s in r.steps()]
    assert sorted(keys[:2]) == ["gates[0].checks[0]", "gates[0].checks[1]"]  # a gate's checks run side by side
    assert keys[2:6] == ["phases[0].steps[0]", "phases[0].steps[1]", "phases[1].steps[0]", "phases[1].steps[1]"]
    starts = [s.start for s in r.steps() if s.section_kind != "gate"]  # gate checks may run side by side
    assert starts == sorted(starts)
    # the manual step's approval: who, how, when
    (a,) = r.approvals
    assert (a.key, a.approved, a.by, a.how) == ("phases[1].steps[1]", True, "tester", "--yes")
    assert a.requested is not None and a.answered is not None and a.requested <= a.answered


def test_the_failed_verify_check_carries_its_failed_expectation(runs: dict[str, ReportRun]) -> None:
    for name in ("rolled_back", "rollback_failed"):
        r = report(runs[name])
        failed = [s for s in r.steps() if s.status == "failed"]
        assert failed[0].key == "verify[0]" and failed[0].section == "verify"
        (x,) = failed[0].failures
        assert (x.assertion, x.expected, x.actual, x.passed) == ("exit_code == 0", "== 0", 1, False)
        assert x.location == "runbook.yaml:40:9"
        assert "expected 0, got 1" in failed[0].message
        verify = next(s for s in r.sections if s.id == "verify")
        assert verify.status == "failed"


def test_rollback_plans_say_what_was_undone(runs: dict[str, ReportRun]) -> None:
    assert report(runs["completed"]).rollback is None
    rb = report(runs["rolled_back"]).rollback
    assert rb is not None and rb.state == "ok" and "verify failed" in rb.reason
    assert [(p["name"], p["status"]) for p in rb.plan] == [("undeploy", "ok"), ("forget the release", "ok")]
    failed = report(runs["rollback_failed"])
    assert failed.rollback is not None and failed.rollback.state == "failed"
    assert [(p["name"], p["status"]) for p in failed.rollback.plan] == [("undeploy", "failed"),
                                                                         ("forget the release", "not run")]
    undo = next(s for s in failed.steps() if s.key == "phases[1].steps[0].undo[0]")
    assert undo.status == "failed" and undo.failures[0].actual == 3
    assert undo.output.get("stderr") == "cannot undeploy"
    md = render(failed, "md")
    assert "Undone: nothing.\nUndo failed: undeploy.\nNot undone: forget the release." in md
    assert "Undone: undeploy, forget the release.\nNot undone: nothing." in render(report(runs["rolled_back"]), "md")


def test_the_monitor_chart_has_its_threshold_and_firing_point(runs: dict[str, ReportRun]) -> None:
    assert report(runs["completed"]).monitor is None
    r = report(runs["monitor_fired"])
    m = r.monitor
    assert m is not None and m.outcome == "rollback"
    (stage,) = m.stages
    assert stage.stage == "window" and stage.samples >= 2
    (rule,) = m.rules
    assert (rule.name, rule.threshold, rule.breach_when, rule.action) == ("pool saturated", 0.9, ">= 0.9", "rollback")
    assert rule.fired and rule.final == "firing"
    assert [p.value for p in rule.points][:2] == [0.95, 0.95]
    firing = [t for t in rule.transitions if t["to"] == "firing"]
    assert len(firing) == 1 and firing[0]["t"] == rule.points[1].t  # the second breach fires (consecutive: 2)
    monitor = next(s for s in r.sections if s.id == "monitor")
    assert monitor.start is not None and firing[0]["t"] >= monitor.start


def test_the_point_of_no_return_is_marked_on_its_step(runs: dict[str, ReportRun]) -> None:
    r = report(runs["completed"], point_of_no_return="phases[0].steps[1]")
    marked = [s.key for s in r.steps() if s.point_of_no_return]
    assert marked == ["phases[0].steps[1]"] and r.point_of_no_return == "phases[0].steps[1]"
    assert not any(s.point_of_no_return for s in report(runs["completed"]).steps())


def test_a_tampered_ledger_row_turns_the_chain_verdict(runs: dict[str, ReportRun], tmp_path: Path) -> None:
    run = runs["rolled_back"]
    copy = tmp_path / "ledger.db"
    shutil.copy(run.folder / ".tminus" / "ledger.db", copy)
    with sqlite3.connect(copy) as db:  # rewrite history: the failed health check now passed
        db.execute("UPDATE tminus_events SET data = replace(data, 'expected 0, got 1', 'expected 0, got 0') "
                   "WHERE run_id = ?", (run.run_id,))
        assert db.total_changes >= 1
    db.close()
    reader = open_reader(f"sqlite:///{copy}")
    try:
        r = build_report(reader, run.run_id)
    finally:
        reader.close()
    assert r.chain.intact is False and r.chain.problems
    assert "NOT intact" in render(r, "md")
    assert report(run).chain.intact is True  # the original is untouched


@pytest.mark.parametrize("name", list(report_runs.SCENARIOS))
def test_the_canary_secret_is_in_no_report(runs: dict[str, ReportRun], name: str) -> None:
    r = report(runs[name])
    token = next(s for s in r.steps() if s.key == "phases[0].steps[1]")
    assert token.output["stdout"] == "token=***"  # the step printed it; the ledger holds it masked
    as_json = json.dumps(r.to_dict())
    assert CANARY not in as_json and CANARY not in render(r, "md") and CANARY not in render(r, "json")
    assert json.loads(render(r, "json")) == r.to_dict()


def test_the_markdown_report_is_deterministic_and_has_every_part(runs: dict[str, ReportRun]) -> None:
    run = runs["monitor_fired"]
    first = render(report(run, point_of_no_return="phases[0].steps[1]"), "md")
    assert first == render(report(run, point_of_no_return="phases[0].steps[1]"), "md")
    for part in ("## Timeline", "## Steps", "## Approvals", "## Decision", "## Rollback", "## Monitor",
                 "### Rule pool saturated", "threshold: 0.9", "## Ledger chain", "**point of no return**",
                 "↩ rollback", "min 0.95, max 0.95, last 0.95", "Content hash"):
        assert part in first, part
    for step in report(run).steps():  # every step has its heading
        assert step.name is not None
    # the step named `deploy <b>v2</b> & friends` reads as that text, never as bold
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").enable("table").render(first)
    assert "<b>" not in html and "deploy &lt;b&gt;v2&lt;/b&gt; &amp; friends" in html
