"""`tminus rehearse`'s orchestrator, in-process, against a real PostgreSQL database (one per test,
dropped after) with real `sql:` and `run:` steps and a real SQLite ledger: the record, the cycles'
runs, the fingerprints before and after, the figures read back through the projection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import write_runbook
from tests.helpers_db import run_sql

from tminus.engine.context import Options
from tminus.engine.exitcodes import Exit
from tminus.engine.rehearsal.cycles import judge
from tminus.engine.rehearsal.plan import PlanError, plan_rehearsal
from tminus.engine.rehearsal.rehearse import Outcome, rehearse
from tminus.ledger import open_ledger
from tminus.projection import project
from tminus.runbook.loader import load_runbook

HEAD = """
    name: notes-change
    vars:
      db: "{url}"
    environments:
      staging: {{}}
      production: {{}}
    decision:
      mode: auto
      require_rehearsal: {{environment: staging}}
    gates:
      - name: state
        checks:
          - name: fingerprint
            fingerprint: {{url: "{{{{ vars.db }}}}"}}
"""

# Three phases whose undo is right; each phase takes a little time, so reaching a later one takes longer.
GOOD = HEAD + """
    phases:
      - name: schema
        id: schema_phase
        budget: 30s
        steps:
          - name: add column
            sql: {{url: "{{{{ vars.db }}}}", query: "ALTER TABLE notes ADD COLUMN extra text", write: true}}
            undo:
              - sql: {{url: "{{{{ vars.db }}}}", query: "ALTER TABLE notes DROP COLUMN extra", write: true}}
          - run: "sleep 0.2"
            effect: none
      - name: data
        budget: 30s
        steps:
          - name: add row
            sql: {{url: "{{{{ vars.db }}}}", query: "INSERT INTO notes VALUES (2, 'b')", write: true}}
            undo:
              - sql: {{url: "{{{{ vars.db }}}}", query: "DELETE FROM notes WHERE id = 2", write: true}}
          - run: "sleep 0.2"
            effect: none
      - name: rename
        budget: 1m
        steps:
          - name: index body
            sql: {{url: "{{{{ vars.db }}}}", query: "CREATE INDEX notes_body ON notes (body)", write: true}}
            undo:
              - sql: {{url: "{{{{ vars.db }}}}", query: "DROP INDEX notes_body", write: true}}
          - run: "sleep 0.2"
            effect: none
    verify:
      - name: notes readable
        sql: {{url: "{{{{ vars.db }}}}", query: "SELECT count(*) FROM notes"}}
        after_rollback: true
"""

# The column is added; the undo forgets to drop it.
INCOMPLETE = HEAD + """
    phases:
      - name: schema
        budget: 30s
        steps:
          - name: add column
            sql: {{url: "{{{{ vars.db }}}}", query: "ALTER TABLE notes ADD COLUMN extra text", write: true}}
            undo:
              - name: forget to drop it
                run: "true"
      - name: data
        steps:
          - sql: {{url: "{{{{ vars.db }}}}", query: "INSERT INTO notes VALUES (2, 'b')", write: true}}
            undo:
              - sql: {{url: "{{{{ vars.db }}}}", query: "DELETE FROM notes WHERE id = 2", write: true}}
"""

# A phase after the point of no return (an audit row nobody can take back), and a kill switch.
PONR = HEAD + """
    phases:
      - name: schema
        budget: 30s
        steps:
          - name: add column
            sql: {{url: "{{{{ vars.db }}}}", query: "ALTER TABLE notes ADD COLUMN extra text", write: true}}
            undo:
              - sql: {{url: "{{{{ vars.db }}}}", query: "ALTER TABLE notes DROP COLUMN extra", write: true}}
      - name: announce
        budget: 30s
        steps:
          - name: audit row
            sql: {{url: "{{{{ vars.db }}}}", query: "INSERT INTO audit VALUES ('announced')", write: true}}
    kill_switch:
      target: 5s
      steps:
        - name: flag off
          run: "touch {flag}"
"""


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("TMINUS_LEDGER_KEY", raising=False)
    with open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as opened:
        yield opened


@pytest.fixture
def db(pg_url: str) -> str:
    """The database the runbooks change (the tests that take it need the local PostgreSQL)."""
    run_sql(pg_url, "CREATE TABLE notes (id int PRIMARY KEY, body text)", "INSERT INTO notes VALUES (1, 'a')",
            "CREATE TABLE audit (what text)")
    return pg_url


def _doc(tmp_path: Path, text: str, db: str) -> Any:
    return load_runbook(write_runbook(tmp_path, text.format(url=db, flag=tmp_path / "flag")))


def _opts() -> Options:
    return Options(environment="staging", operator="tester", yes=True, no_input=True)


def _rehearse(doc: Any, ledger: Any, **kw: Any) -> tuple[Outcome, Any]:
    plan = plan_rehearsal(doc, _opts(), **kw)
    outcome = rehearse(doc, ledger, _opts(), plan)
    return outcome, project(ledger.events(outcome.rehearsal_id))


@pytest.mark.postgres
def test_a_correct_undo_rehearses_green_with_equal_fingerprints_at_every_phase(tmp_path, ledger, db) -> None:
    outcome, view = _rehearse(_doc(tmp_path, GOOD, db), ledger)
    assert (outcome.ok, outcome.exit) == (True, Exit.COMPLETED), outcome.reason
    assert view.finished.status == "completed" and view.finished.exit_code == 0
    r = view.rehearsal
    assert [c.at for c in r.cycles] == ["schema", "data", "rename"]
    assert all(c.ok and c.status == "rolled_back" and c.fingerprints_equal is True for c in r.cycles)
    assert r.all_phases and r.not_rehearsed == [] and set(r.procedure_hashes) == {"staging", "production"}
    # figures are sane: a recovery takes time, a later phase is reached later, verify after the rollback
    assert all(c.rto_s is not None and 0 < c.rto_s < 10 for c in r.cycles)
    reached = [c.reached_s for c in r.cycles]
    assert reached == sorted(reached) and reached[0] >= 0.2, reached
    assert all(c.verify_s is not None and c.verify_s <= c.rto_s for c in r.cycles)
    assert [c.budget_s for c in r.cycles] == [30, 30, 60] and all(c.data["within_budget"] for c in r.cycles)
    # each cycle is a normal run in the ledger, tagged with the rehearsal, and the state is as it was
    for c in r.cycles:
        started = project(ledger.events(c.run_id)).started
        assert started is not None and started.data["rehearsal"] == {
            "id": outcome.rehearsal_id, "cycle": c.index, "fault": "fail", "at": c.at}
    assert ledger.get_run(outcome.rehearsal_id).kind == "rehearsal"
    # the rehearsal's own cost is visible beside the runs and the fingerprints it measured
    t = outcome.timing
    assert t["runs_s"] == pytest.approx(sum(c.data["run_s"] for c in r.cycles), abs=0.01)
    assert t["fingerprint_s"] == pytest.approx(sum(c.data["fingerprint_s"] for c in r.cycles), abs=0.01)
    assert t["total_s"] >= t["runs_s"] + t["fingerprint_s"] and t["overhead_s"] >= 0
    assert reached[-1] < t["runs_s"] and t["runs_s"] > 3 * 0.2


@pytest.mark.postgres
def test_an_incomplete_undo_is_caught_with_the_exact_difference(tmp_path, ledger, db) -> None:
    outcome, view = _rehearse(_doc(tmp_path, INCOMPLETE, db), ledger)
    assert (outcome.ok, outcome.exit) == (False, Exit.ROLLBACK_FAILED)
    assert view.finished.status == "failed" and view.finished.exit_code == 12
    # the next cycle would add the column again onto a database the rehearsal did not begin with: not run
    (cycle,) = view.rehearsal.cycles
    assert "1 not run" in view.finished.reason and len(view.rehearsal.planned) == 2
    # the rollback itself "passed": only the fingerprints tell the column is still there
    assert cycle.status == "rolled_back" and cycle.data["rollback_ok"] is True and not cycle.ok
    assert cycle.fingerprints_equal is False
    assert cycle.differences == ["table notes: content differs (1 rows, same count)",
                                 "column notes.extra is new (not in the earlier fingerprint)"]
    assert "state not restored" in cycle.problems[0] and "notes.extra" in cycle.problems[0]


@pytest.mark.postgres
def test_at_selects_phases_by_name_or_id_and_refuses_unknown_ones(tmp_path, ledger, db) -> None:
    doc = _doc(tmp_path, GOOD, db)
    plan = plan_rehearsal(doc, _opts(), at=["rename", "schema_phase"])
    assert [(c.at, c.phase_index) for c in plan.cycles] == [("schema", 0), ("rename", 2)]
    assert not plan.all_phases  # 'data' is not rehearsed by this plan
    with pytest.raises(PlanError, match="no such phase; the runbook's phases: 'schema' \\(id schema_phase\\), "
                                        "'data', 'rename'"):
        plan_rehearsal(doc, _opts(), at=["Schema"])
    outcome, view = _rehearse(doc, ledger, at=["data"])
    assert outcome.ok and [c.at for c in view.rehearsal.cycles] == ["data"]


@pytest.mark.postgres
def test_a_phase_after_the_point_of_no_return_is_not_rehearsed_but_rolled_forward(tmp_path, ledger, db) -> None:
    doc = _doc(tmp_path, PONR, db)
    with pytest.raises(PlanError, match=r"point of no return.*--roll-forward"):
        plan_rehearsal(doc, _opts(), at=["announce"])
    plan = plan_rehearsal(doc, _opts())
    assert [c.fault for c in plan.cycles] == ["fail", "kill_switch"] and not plan.all_phases
    assert plan.not_rehearsed == [{"phase": "announce", "why": "its step 'audit row' is the point of no return "
                                   "(no undo)", "covered_by": None}]

    outcome, view = _rehearse(doc, ledger, roll_forward=True)
    assert outcome.ok, outcome.reason
    r = view.rehearsal
    assert r.all_phases and r.not_rehearsed[0]["covered_by"] == "roll_forward"
    fail, switch, forward = r.cycles
    assert (fail.at, fail.fingerprints_equal) == ("schema", True)
    # the roll-forward run completed, was rolled back; the audit row stays, as expected after the PONR
    assert (forward.fault, forward.rehearsed_as, forward.status) == ("roll_forward", "roll_forward_only", "rolled_back")
    assert forward.fingerprints_equal is False and forward.data["fingerprints"]["expected"] is True
    assert forward.differences == ["table audit: 0 rows vs 1 rows"]
    assert [u["step"] for u in forward.data["undo_missing"]] == ["phases[1].steps[0]"]
    assert forward.rto_s is not None and forward.rto_s > 0 and forward.data["covers"] == ["announce"]
    # the kill switch cycle: every phase before the PONR, the kill switch against its target, rolled back
    ks = switch.data["kill_switch"]
    assert switch.ok and switch.fingerprints_equal is True and switch.status == "rolled_back"
    assert ks["status"] == "completed" and ks["within"] is True and 0 < ks["actual_s"] < ks["target_s"] == 5
    assert (tmp_path / "flag").exists()
    assert switch.rto_s is not None and switch.rto_s >= ks["actual_s"]
    assert ledger.get_run(ks["run_id"]).kind == "kill_switch"


@pytest.mark.postgres
def test_a_cycle_blocked_by_its_gates_stops_the_rehearsal_with_exit_10(tmp_path, ledger, db) -> None:
    run_sql(db, "DROP TABLE notes")  # the first phase's table is gone: the gate's fingerprint still passes
    text = GOOD.replace("checks:\n          - name: fingerprint",
                        "checks:\n          - sql: {{url: \"{{{{ vars.db }}}}\", query: \"SELECT 1 FROM notes\"}}\n"
                        "          - name: fingerprint")
    outcome, view = _rehearse(_doc(tmp_path, text, db), ledger)
    assert outcome.exit == Exit.BLOCKED and not outcome.ok
    (cycle,) = view.rehearsal.cycles  # the next two were not run: the gates would block them too
    assert cycle.status == "blocked" and "blocked by its gates" in cycle.problems[-1]
    assert "2 not run" in view.finished.reason


@pytest.mark.postgres
def test_a_source_that_needs_step_outputs_is_skipped_with_a_note_and_errors_fail(tmp_path, ledger, db) -> None:
    from tminus.engine.rehearsal import state

    text = GOOD.replace('fingerprint: {{url: "{{{{ vars.db }}}}"}}',
                        'fingerprint: {{url: "{{{{ vars.db }}}}"}}\n'
                        '          - fingerprint: {{url: "sqlite:///missing.db"}}\n'
                        '          - fingerprint: {{url: "mysql://u:s3cret@db.example/x"}}')
    text = text.replace("          - name: add column\n", "          - name: add column\n            id: added\n")
    text += """
      - name: by an output
        fingerprint: {{url: "sqlite:///{{{{ steps.added.rowcount }}}}.db"}}
    """
    doc = _doc(tmp_path, text, db)
    found = state.sources(doc, _opts())
    assert [s.origin for s in found.found] == ["fingerprint", "fingerprint"]
    assert len(found.notes) == 2 and found.notes[1].startswith("verify[1]: "), found.notes
    assert found.notes[0].startswith("gates[0].checks[2]: not fingerprinted: mysql://u:***@db.example/x: ")
    assert "s3cret" not in found.notes[0]
    # rendered with the --var overrides, as the cycles' runs are; a password never shown
    other = db.replace("postgres@", "postgres:pw@", 1) + "_other"
    (first, *_) = state.sources(doc, Options(environment="staging", overrides={"db": other})).found
    assert first.url == other and first.masked == other.replace(":pw@", ":***@")
    snap = state.take(found.found, tmp_path)
    assert len(snap.errors) == 1 and "missing.db does not exist" in snap.errors[0]
    compared = state.compare(found.found, snap, snap)
    assert compared["equal"] is True and compared["errors"] == snap.errors
    # a source that cannot be read fails the cycle: its state is not proven
    problems, code = judge({"status": "rolled_back", "rollback_ok": True, "fingerprints": compared}, [])
    assert code == Exit.FAILED and problems == [f"fingerprint: {snap.errors[0]}"]


# No database: files the steps touch. Nothing to fingerprint, so only the runs' ends judge the cycles.
FILES = """
    name: files
    phases:
      - name: one
        steps:
          - run: "touch one"
            undo: [{run: "rm one"}]
      - name: two
        steps:
          - run: "touch two"
            undo: [{run: "false"}]
"""


def test_a_failing_undo_step_is_named_and_ends_the_rehearsal_with_exit_12(tmp_path, ledger) -> None:
    doc = load_runbook(write_runbook(tmp_path, FILES))
    plan = plan_rehearsal(doc, Options(environment="default"))
    outcome = rehearse(doc, ledger, Options(environment="default", no_input=True), plan)
    assert (outcome.ok, outcome.exit) == (False, Exit.ROLLBACK_FAILED)
    one, two = outcome.cycles
    assert one["ok"] and one["fingerprints"]["equal"] is None
    assert two["status"] == "rollback_failed" and two["rollback_ok"] is False
    assert [u["step"] for u in two["undo_failed"]] == ["phases[1].steps[0].undo[0]"]
    assert any("undo step 'run step' failed" in p for p in two["problems"])
    assert (tmp_path / "one").exists()  # the rollback stopped at the failing undo: phase one is not undone


def test_a_held_lease_ends_the_rehearsal_with_exit_14_and_the_record_finished(tmp_path, ledger) -> None:
    import os
    import socket

    doc = load_runbook(write_runbook(tmp_path, FILES))
    ledger.acquire_lease("files@default", run_id="someone-else", operator="other", host=socket.gethostname(),
                         pid=os.getpid())  # a live holder: this very process
    opts = Options(environment="default", no_input=True)
    outcome = rehearse(doc, ledger, opts, plan_rehearsal(doc, opts))
    assert (outcome.ok, outcome.exit) == (False, Exit.LOCKED)
    (cycle,) = outcome.cycles  # the second cycle was not run
    assert cycle["run_id"] is None and cycle["problems"][0].startswith("lease held: ")
    record = project(ledger.events(outcome.rehearsal_id))
    assert record.finished.status == "failed" and record.finished.exit_code == 14
    assert "1 not run" in record.finished.reason


# No fingerprint step: the databases come from the backup and migrate steps. The last phase's undo is
# the real restore of the backup taken in the first (with its drill).
RESTORE = """
    name: orders
    vars:
      db: "{url}"
    phases:
      - name: backup
        steps:
          - id: backup
            backup: {{url: "{{{{ vars.db }}}}", dir: backups, drill: true}}
      - name: migrate
        budget: 1m
        steps:
          - migrate: {{url: "{{{{ vars.db }}}}", dir: migrations}}
      - name: purge
        budget: 2m
        steps:
          - name: purge old notes
            sql: {{url: "{{{{ vars.db }}}}", query: "DELETE FROM notes", write: true}}
            undo:
              - restore: {{url: "{{{{ vars.db }}}}", file: "{{{{ steps.backup.path }}}}", maintenance: true}}
"""


@pytest.mark.postgres
def test_backup_and_migrate_databases_are_fingerprinted_and_a_restore_undo_rehearsed(tmp_path, ledger, db) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_tags.sql").write_text("CREATE TABLE tags (name text PRIMARY KEY);\n")
    (migrations / "0001_tags.down.sql").write_text("DROP TABLE tags;\n")
    doc = load_runbook(write_runbook(tmp_path, RESTORE.format(url=db)))
    opts = Options(environment="default", no_input=True)
    plan = plan_rehearsal(doc, opts, at=["purge"])  # one cycle: a backup with its drill is slow
    outcome = rehearse(doc, ledger, opts, plan)
    assert outcome.ok, outcome.reason
    record = project(ledger.events(outcome.rehearsal_id)).rehearsal
    assert [s["source"] for s in record.data["fingerprints"]] == ["backup"]  # one database, once
    (purge,) = record.cycles
    assert purge.fingerprints_equal is True and purge.status == "rolled_back"
    # the rollback restored the backup and reverted the migration (its kind's undo: no undo missing)
    run = project(ledger.events(purge.run_id))
    assert [p.key for p in run.rollback.plan] == ["phases[2].steps[0].undo[0]", "phases[1].steps[0].undo[auto]"]
    assert purge.data["undo_missing"] == [] and purge.data["undo_failed"] == []
    # the drill's figure sits beside the RTO, which covers the real restore
    (drill,) = purge.data["drills"]
    assert drill["step"] == "phases[0].steps[0]" and 0 < drill["drill_seconds"] < 60
    assert purge.rto_s is not None and purge.rto_s > 0 and purge.verify_s is None  # no verify checks


def test_a_failure_before_the_fault_point_fails_the_cycle_though_it_rolled_back(tmp_path, ledger) -> None:
    text = FILES.replace('undo: [{run: "false"}]', 'undo: [{run: "rm two"}]\n          - manual: "Check the dashboard"')
    doc = load_runbook(write_runbook(tmp_path, text))
    opts = Options(environment="default", no_input=True)  # nobody to answer: the manual step fails
    outcome = rehearse(doc, ledger, opts, plan_rehearsal(doc, opts))
    assert (outcome.ok, outcome.exit) == (False, Exit.FAILED)
    one, two = outcome.cycles
    assert one["ok"] and one["fault_by"] == "policy:rehearsal"
    assert two["status"] == "rolled_back" and not two["ok"] and two["reached_s"] is None
    assert two["problems"][0].startswith("phase 'two' did not pass, the fault point was not reached: ")
    assert "--no-input" in two["problems"][0]
    assert not (tmp_path / "one").exists() and not (tmp_path / "two").exists()


def test_a_run_stopped_part_way_is_rolled_back_by_the_rehearsal_and_fails_its_cycle(tmp_path, ledger) -> None:
    live = """
    decision: {mode: auto}
    after_go:
      - name: announce
        steps:
          - run: "touch three; false"
            undo: [{run: "rm -f three"}]
    """
    doc = load_runbook(write_runbook(tmp_path, FILES.replace('{run: "false"}', '{run: "rm two"}') + live))
    opts = Options(environment="default", no_input=True)
    with pytest.raises(PlanError, match="phase 'announce' runs after the go decision"):
        plan_rehearsal(doc, opts, at=["announce"])
    plan = plan_rehearsal(doc, opts, at=["one"], roll_forward=True)
    assert plan.not_rehearsed == [{"phase": "announce", "covered_by": "roll_forward",
                                   "why": "runs after the go decision: rehearsed by the roll-forward cycle only"}]
    outcome = rehearse(doc, ledger, opts, plan)
    assert (outcome.ok, outcome.exit) == (False, Exit.FAILED)
    one, forward = outcome.cycles
    assert one["ok"] and not forward["ok"] and forward["status"] == "rolled_back"
    # the after_go step failed: the run stopped live, not finalized; the rehearsal does not leave it so
    assert forward["problems"][0].startswith("the full run ended not_finalized, not completed")
    assert forward["problems"][1].startswith("the cycle's run stopped not_finalized (")
    assert not any((tmp_path / name).exists() for name in ("one", "two", "three"))  # as the rehearsal found it


def test_the_operators_ctrl_c_stops_the_rehearsal_and_leaves_the_run_as_it_is(tmp_path, ledger) -> None:
    text = FILES.replace('run: "touch two"', 'run: "touch two; kill -INT $PPID; sleep 5"')
    doc = load_runbook(write_runbook(tmp_path, text))
    opts = Options(environment="default", no_input=True)
    outcome = rehearse(doc, ledger, opts, plan_rehearsal(doc, opts))
    assert (outcome.ok, outcome.exit) == (False, Exit.INTERRUPTED)
    one, two = outcome.cycles
    assert one["ok"] and "was interrupted (signal SIGINT)" in two["problems"][0]
    assert ledger.get_run(two["run_id"]).status == "interrupted"  # not undone behind the operator's back
    assert (tmp_path / "one").exists() and (tmp_path / "two").exists()
    record = project(ledger.events(outcome.rehearsal_id))
    assert record.finished.exit_code == 130 and f"tminus rollback {two['run_id']}" in record.finished.reason

