"""decision.require_rehearsal as an operator meets it: the real `tminus` command refuses production
(`gate` and `run` exit 10, the reason printed, nothing changed) until the ledger holds a passing
rehearsal of this procedure (written with the real RehearsalRecord), and `plan` says whether it is met
(without a ledger: not checked, and none created)."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.helpers import run_json, tminus, write_runbook

from tminus.engine.rehearsal.record import RehearsalRecord
from tminus.ledger import open_ledger
from tminus.runbook.loader import load_runbook
from tminus.runbook.procedure import procedure_hashes

RUNBOOK = """
    name: cutover
    environments: {{staging: {{}}, production: {{}}}}
    decision:
      require_rehearsal: {{environment: staging, within: 7d, max_rto: 10m}}
    phases:
      - name: switch
        steps:
          - run: "echo {word} >> log"
            undo: [{{run: "echo unswitch >> log"}}]
"""


def rehearse(url: str, path: Path) -> str:
    doc = load_runbook(path)
    rid = f"rh-{uuid.uuid4().hex[:8]}"
    with open_ledger(url) as ledger:
        record = RehearsalRecord(ledger, doc, run_id=rid, environment="staging", operator="tester")
        record.open({"procedure_hashes": procedure_hashes(doc, "staging"), "not_rehearsed": [], "all_phases": True,
                     "cycles": [{"index": 0, "at": "switch", "fault": "fail", "rehearsed_as": "rollback"}]})
        record.cycle({"index": 0, "at": "switch", "fault": "fail", "rehearsed_as": "rollback", "ok": True,
                      "rto_s": 1.5, "status": "rolled_back", "problems": []})
        record.finish(True, 0, "every cycle passed")
    return rid


def test_production_refuses_an_unrehearsed_runbook_through_the_cli(tmp_path: Path) -> None:
    path = write_runbook(tmp_path, RUNBOOK.format(word="switch"))
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = {"TMINUS_LEDGER": url}
    plan = tminus("plan", "runbook.yaml", "-e", "production", cwd=tmp_path, env=env)
    assert plan.returncode == 0, plan.stderr
    assert "Rehearsal required" in plan.stdout and "not checked: no ledger at" in plan.stdout, plan.stdout
    assert not (tmp_path / "ledger.db").exists()  # looking created nothing

    gate = tminus("gate", "runbook.yaml", "-e", "production", cwd=tmp_path, env=env)
    out = gate.stdout + gate.stderr
    assert gate.returncode == 10, out
    assert "decision.require_rehearsal" in out and "no rehearsal of cutover in staging has finished" in out, out

    rid = rehearse(url, path)
    code, data = run_json("plan", "runbook.yaml", "-e", "production", cwd=tmp_path, env=env)
    assert code == 0 and data["rehearsal"]["met"] is True and data["rehearsal"]["rehearsal_id"] == rid, data

    write_runbook(tmp_path, RUNBOOK.format(word="switch-now"))  # a step changed after the rehearsal
    run = tminus("run", "runbook.yaml", "-e", "production", "--yes", cwd=tmp_path, env=env)
    out = run.stdout + run.stderr
    assert run.returncode == 10, out
    assert f"latest rehearsal {rid} passed" in out and "another procedure: it rehearsed" in out, out
    assert not (tmp_path / "log").exists()  # nothing changed
    plan = tminus("plan", "runbook.yaml", "-e", "production", cwd=tmp_path, env=env)
    assert f"not met: latest rehearsal {rid} passed" in plan.stdout, plan.stdout
    assert "another procedure" in plan.stdout
