"""Rehearsal records fabricated with the real writer (engine/rehearsal/record.py) in a real ledger, for
the tests of what reads them back (reports/rehearsal.py, `tminus rehearsals`, `tminus show`)."""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from typing import Any

from tests.helpers import write_runbook

from tminus.engine.rehearsal.record import RehearsalRecord
from tminus.events import Event
from tminus.ledger import Ledger
from tminus.runbook.loader import load_runbook
from tminus.runbook.procedure import procedure_hashes

RUNBOOK = """
    name: shop
    environments:
      qa: {vars: {db: qa}}
      staging: {vars: {db: staging}}
      production: {vars: {db: prod}}
    phases:
      - name: expand
        budget: 5m
        steps:
          - run: "true"
            undo: [{run: "true"}]
      - name: migrate
        budget: 2m
        steps:
          - run: "true"
            undo: [{run: "true"}]
      - name: contract
        steps:
          - run: "true"
"""

SECRET = "hunter2-s3cret"
MASKED_URL = "postgresql://app:***@db.internal/shop"


def plan(measured: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    """`rehearsal.started`'s payload planning the cycles `measured` (`more` overrides any key)."""
    return {
        "options": {"at": [], "fault": "fail", "roll_forward": any(c.get("fault") == "roll_forward" for c in measured)},
        "cycles": [{k: c.get(k) for k in ("index", "at", "phase_index", "fault", "rehearsed_as")}
                   | {"budget": c.get("budget_s")} for c in measured],
        "not_rehearsed": [{"phase": "contract", "why": "after the point of no return: step 'drop old column'"}],
        "point_of_no_return": {"phase": "contract", "step": "drop old column", "location": "runbook.yaml:17"},
        "fingerprints": [{"name": "shop db", "url": MASKED_URL, "tables": ["orders"], "source": "migrate"}],
        "all_phases": False,
        **more,
    }


def good_cycle(index: int, at: str | None, **more: Any) -> dict[str, Any]:
    """A passing cycle's figures; `index` is the cycle's number as printed (1-based; the record keeps 0-based)."""
    base: dict[str, Any] = {
        "index": index - 1, "at": at, "phase_index": index - 1 if at else None, "fault": "fail",
        "rehearsed_as": "rollback", "run_id": None, "status": "rolled_back", "exit_code": 11, "ok": True,
        "problems": [], "reached_s": 1.5, "fault_at": 1_700_000_000.0, "rto_s": 2.25, "verify_s": 2.5,
        "budget_s": 300.0, "within_budget": True, "kill_switch": None,
        "fingerprints": {"equal": True, "differences": [], "expected": [], "errors": [], "sources": ["shop db"]},
        "undo_failed": [], "undo_missing": [], "drills": [], "fingerprint_s": 0.2, "run_s": 4.0,
    }
    return copy.deepcopy(base) | more


def fabricate(ledger: Ledger, tmp: Path, rehearsal_id: str, measured: list[dict[str, Any]], *, ok: bool | None,
              exit_code: int = 0, reason: str = "every cycle passed", environment: str = "staging",
              **plan_more: Any) -> str:
    """A rehearsal record with its cycles, each cycle's own run recorded (kind run, tagged) unless its
    run_id is None; `ok` None leaves the record unfinished (running). Returns the rehearsal id."""
    path = tmp / "runbook.yaml"
    if not path.exists():
        write_runbook(tmp, RUNBOOK)
    doc = load_runbook(path)
    record = RehearsalRecord(ledger, doc, run_id=rehearsal_id, environment=environment, operator="rita")
    record.open(plan(measured, procedure_hashes=procedure_hashes(doc, environment), **plan_more))
    for c in measured:
        if c.get("run_id"):
            cycle_run(ledger, doc, c["run_id"], rehearsal_id, c, environment)
        record.cycle(c)
    if ok is not None:
        record.finish(ok, exit_code, reason)
    return rehearsal_id


def cycle_run(ledger: Ledger, doc: Any, run_id: str, rehearsal_id: str, c: dict[str, Any], env: str) -> None:
    ledger.create_run(run_id=run_id, runbook_name=doc.runbook.name, runbook_path=str(doc.path),
                      content_hash=doc.content_hash, runbook_text=doc.text, environment=env, operator="rita",
                      host=socket.gethostname(), pid=1)
    writer = ledger.open_writer(run_id)
    writer.append(Event("run.started", run_id, {
        "runbook": doc.runbook.name, "environment": env, "operator": "rita", "action": "run",
        "rehearsal": {"id": rehearsal_id, "cycle": c["index"], "fault": c["fault"], "at": c.get("at")}}))
    writer.finish("rolled_back", 11, "rehearsal fault",
                  Event("run.finished", run_id, {"status": "rolled_back", "exit_code": 11, "reason": "fault"}))
