"""decision.require_rehearsal at gate time, against real ledgers (a SQLite file and PostgreSQL): rehearsal
records written by the real RehearsalRecord, production runs driven through the Session with real `run:`
steps. Refused (exit 10, nothing changed, the evidence in a note and in the gates' end) when the rehearsal
is missing, too old, failed, of another procedure, over max_rto or missing phases; accepted otherwise,
also when only production's vars, comments or formatting changed; staging never requires it."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import write_runbook
from tests.rehearsal_records import good_cycle, plan

from tminus.engine.prerequisites import WantedRehearsal, find_rehearsal
from tminus.engine.rehearsal.record import RehearsalRecord
from tminus.engine.session import Options, Session
from tminus.ledger import open_ledger
from tminus.projection import project
from tminus.reports.why import explain
from tminus.runbook.document import RunbookDocument
from tminus.runbook.loader import load_runbook
from tminus.runbook.procedure import procedure_hash, procedure_hashes

RUNBOOK = """
    name: cutover
    # the procedure: expand, switch, then contract (no undo: the point of no return)
    environments:
      staging: {{vars: {{target: stage-db}}}}
      production: {{vars: {{target: {prod}}}}}
      {extra_env}
    decision:
      require_rehearsal: {{environment: staging, within: {within}, max_rto: 10m, all_phases: true{enforced}}}
    phases:
      - name: expand
        steps:
          - run: "echo expand-{{{{ vars.target }}}} >> log"
            undo: [{{run: "echo unexpand >> log"}}]
      - name: switch
        steps:
          - run: "echo {switch} >> log"
            undo: [{{run: "echo unswitch >> log"}}]
      - name: contract
        steps:
          - run: "echo contract >> log"
"""


def runbook(tmp_path: Path, *, prod: str = "prod-db", switch: str = "switch", within: str = "7d",
            enforced: str = "", extra_env: str = "") -> RunbookDocument:
    write_runbook(tmp_path, RUNBOOK.format(prod=prod, switch=switch, within=within, extra_env=extra_env,
                                           enforced=f", enforced_in: {enforced}" if enforced else ""))
    return load_runbook(tmp_path / "runbook.yaml")


def cycle(index: int, at: str | None, fault: str = "fail", *, ok: bool = True, rto: float | None = 2.0,
          problems: list[str] | None = None) -> dict[str, Any]:
    return good_cycle(index, at, fault=fault, ok=ok, rto_s=rto, problems=problems or [], run_id=None,
                      rehearsed_as="roll_forward_only" if fault == "roll_forward" else "rollback")


GOOD = [cycle(0, "expand"), cycle(1, "switch"), cycle(2, None, "roll_forward")]


def rehearse(ledger: Any, doc: RunbookDocument, cycles: list[dict[str, Any]] = GOOD, *,
             environment: str = "staging", hashes: dict[str, str] | None = None) -> str:
    """A rehearsal record as `tminus rehearse` writes it: a run of kind rehearsal, its plan, its cycles."""
    rid = f"rh-{uuid.uuid4().hex[:10]}"
    record = RehearsalRecord(ledger, doc, run_id=rid, environment=environment, operator="tester")
    hashes = procedure_hashes(doc, environment) if hashes is None else hashes
    record.open(plan(cycles, procedure_hashes=hashes, all_phases=True,
                     not_rehearsed=[{"phase": "contract", "why": "after the point of no return"}]))
    for c in cycles:
        record.cycle(c)
    ok = all(c["ok"] for c in cycles)
    record.finish(ok, 0 if ok else 12, "every cycle passed" if ok else "a cycle's state was not restored")
    return rid


@pytest.fixture
def ledger(url: str) -> Iterator[Any]:
    with open_ledger(url) as opened:
        yield opened


def run(tmp_path: Path, ledger: Any, env: str = "production") -> tuple[Session, Any]:
    doc = load_runbook(tmp_path / "runbook.yaml")
    s = Session(doc, ledger, Options(environment=env, operator="tester", no_input=True))
    return s, s.run()


def log(tmp_path: Path) -> list[str]:
    path = tmp_path / "log"
    return path.read_text().split() if path.exists() else []


def refused(tmp_path: Path, ledger: Any, *expected: str) -> dict[str, Any]:
    """Production is blocked at the gates, nothing ran, and the note and the gates' end say why."""
    s, result = run(tmp_path, ledger)
    assert (result.status, int(result.exit)) == ("blocked", 10), result.reason
    assert log(tmp_path) == []
    (failure,) = result.failures
    assert failure.startswith("decision.require_rehearsal: a passing rehearsal of cutover in staging"), failure
    for words in expected:
        assert words in failure, failure
    view = project(ledger.events(s.run_id))
    evidence = view.section("gates").data["rehearsal"]
    assert evidence["ok"] is False and evidence["rehearsal_id"] is None and evidence["message"] == failure
    (note,) = view.notes_for("rehearsal-required")
    assert note.message == failure and note.data["wanted"]["target"] == "production"
    why = explain(ledger.get_run(s.run_id), ledger.events(s.run_id))  # `tminus why` names it as the cause
    assert [c.text for c in why.causes] == [f"{failure}."] and "1 requirement not met" in why.summary, why.summary
    assert why.next_steps[0].startswith("Rehearse it first: `tminus rehearse ") and "-e staging`" in why.next_steps[0]
    return evidence


def accepted(tmp_path: Path, ledger: Any, rid: str) -> dict[str, Any]:
    s, result = run(tmp_path, ledger)
    assert (result.status, int(result.exit)) == ("completed", 0), result.failures or result.reason
    evidence = project(ledger.events(s.run_id)).section("gates").data["rehearsal"]
    assert evidence["ok"] and evidence["rehearsal_id"] == rid, evidence
    (tmp_path / "log").unlink()
    return evidence


def test_production_is_refused_until_a_satisfying_rehearsal_and_accepted_then(tmp_path: Path, ledger: Any) -> None:
    doc = runbook(tmp_path)
    evidence = refused(tmp_path, ledger,
                       "not met: no rehearsal of cutover in staging has finished (the ledger holds none)")
    assert evidence["latest"] is None
    # a rehearsal elsewhere, or an ordinary staging run, is no rehearsal of staging
    rehearse(ledger, doc, environment="production")
    s, staged = run(tmp_path, ledger, env="staging")  # staging itself never requires it
    assert staged.status == "completed" and "rehearsal" not in project(ledger.events(s.run_id)).section("gates").data
    (tmp_path / "log").unlink()
    refused(tmp_path, ledger, "no rehearsal of cutover in staging has finished")
    failed = rehearse(ledger, doc, [cycle(0, "expand"), cycle(1, "switch", ok=False, rto=3.0,
                                                                 problems=["table users: row count 3 -> 4"])])
    evidence = refused(tmp_path, ledger, f"latest rehearsal {failed} failed", "cycle 1 (fail at switch): table users:"
                       " row count 3 -> 4", "phases not rehearsed: switch, contract")
    assert evidence["latest"]["run_id"] == failed and evidence["latest"]["status"] == "failed"
    slow = rehearse(ledger, doc, [cycle(0, "expand", rto=601.0), cycle(1, "switch", rto=900.0),
                                  cycle(2, None, "roll_forward", rto=30.0)])
    evidence = refused(tmp_path, ledger, f"rehearsal {slow} passed", "max RTO 15m00s",
                       "over max_rto: cycle 0 (fail at expand) RTO 10m01s, 1.0s over 10m00s",
                       "cycle 1 (fail at switch) RTO 15m00s, 5m00s over 10m00s")
    assert "cycle 2" not in evidence["message"]
    partial = rehearse(ledger, doc, [cycle(0, "expand"), cycle(1, None, "monitor")])
    refused(tmp_path, ledger, f"rehearsal {partial} passed", "phases not rehearsed: switch, contract")
    killed = rehearse(ledger, doc, [cycle(0, "expand", "kill"), cycle(1, "switch", "kill")])  # no roll-forward
    refused(tmp_path, ledger, f"rehearsal {killed} passed", "phases not rehearsed: contract")
    good = rehearse(ledger, doc)
    accepted(tmp_path, ledger, good)
    # the newest satisfying one counts: a later failed rehearsal does not hide it
    rehearse(ledger, doc, [cycle(0, "expand", ok=False, problems=["undo failed"])])
    accepted(tmp_path, ledger, good)


def test_another_procedure_is_refused_but_vars_comments_and_formatting_are_not(tmp_path: Path,
                                                                                ledger: Any) -> None:
    doc = runbook(tmp_path)
    good = rehearse(ledger, doc)
    runbook(tmp_path, prod="another-db")  # only production's values changed
    accepted(tmp_path, ledger, good)
    text = (tmp_path / "runbook.yaml").read_text()
    block = "  staging:\n    vars:\n      target: 'stage-db'  # block style"
    reformatted = "# reviewed after the rehearsal\n\n" + text.replace(
        "  staging: {vars: {target: stage-db}}", block).replace(
        '"echo contract >> log"', "'echo contract >> log'  # quoted otherwise").replace("# the procedure", "# ...")
    assert reformatted.count("block style") == 1 and reformatted.count("quoted otherwise") == 1
    (tmp_path / "runbook.yaml").write_text(reformatted)
    assert load_runbook(tmp_path / "runbook.yaml").content_hash != doc.content_hash
    accepted(tmp_path, ledger, good)
    edited = runbook(tmp_path, switch="switch-now")  # a step changed: another procedure
    old, new = procedure_hash(doc, "production")[:12], procedure_hash(edited, "production")[:12]
    evidence = refused(tmp_path, ledger, f"another procedure: it rehearsed {old} for production, this runbook is {new}")
    assert evidence["latest"]["procedure_hash"] == procedure_hash(doc, "production")
    runbook(tmp_path, extra_env="qa: {vars: {target: qa-db}}")  # another environment declared: counts too
    refused(tmp_path, ledger, "another procedure")
    again = rehearse(ledger, load_runbook(tmp_path / "runbook.yaml"))
    accepted(tmp_path, ledger, again)


def test_a_record_without_the_target_hash_is_another_procedure(tmp_path: Path, ledger: Any) -> None:
    doc = runbook(tmp_path)
    rehearse(ledger, doc, hashes={"staging": procedure_hash(doc, "staging")})
    refused(tmp_path, ledger, "another procedure: it recorded no procedure hash for production, this runbook is ")


def test_too_old_and_enforced_in(tmp_path: Path, ledger: Any) -> None:
    doc = runbook(tmp_path, within="1s", enforced="[production]", extra_env="qa: {vars: {target: qa-db}}")
    rid = rehearse(ledger, doc, hashes=procedure_hashes(doc, "staging"))
    accepted(tmp_path, ledger, rid)
    time.sleep(1.1)
    evidence = refused(tmp_path, ledger, f"rehearsal {rid} passed", "s ago, more than 1s")
    assert re.search(r": too old: finished [1-9]\d*s ago, more than 1s$", evidence["message"]), evidence["message"]
    s, qa = run(tmp_path, ledger, env="qa")  # not enforced in qa
    assert qa.status == "completed" and "rehearsal" not in project(ledger.events(s.run_id)).section("gates").data
    # nine days on, the message names the age (read with the same reader the gates use)
    wanted = WantedRehearsal("cutover", "staging", "production", procedure_hash(doc, "production"), within=7 * 86400)
    old = find_rehearsal(ledger, wanted, now=time.time() + 9 * 86400)
    assert not old.ok and old.message.endswith("too old: finished 9d ago, more than 7d"), old.message
    assert find_rehearsal(ledger, wanted, now=time.time()).ok


def test_a_duration_templated_from_production_vars_is_the_same_procedure(tmp_path: Path, ledger: Any) -> None:
    """The hash is taken of the runbook as written (durations unrendered), as the rehearsal took it."""
    write_runbook(tmp_path, """
        name: cutover
        environments:
          staging: {vars: {window: 1m, fresh: 1h}}
          production: {vars: {window: 5m, fresh: 7d}}
        decision:
          require_rehearsal: {environment: staging, all_phases: false, within: "{{ vars.fresh }}"}
        phases:
          - name: expand
            budget: "{{ vars.window }}"
            steps:
              - run: "echo expand >> log"
    """)
    doc = load_runbook(tmp_path / "runbook.yaml")
    rid = rehearse(ledger, doc, [cycle(0, "expand")])
    evidence = accepted(tmp_path, ledger, rid)
    assert evidence["wanted"]["within"] == 7 * 86400  # production's, rendered for the run
