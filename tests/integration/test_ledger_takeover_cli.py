"""A real run whose lease is broken and taken by another run while a step acts: the step's
`step.finished` is refused (fenced), the run stops as interrupted and resumable, the chains verify."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_json, spawn, tminus, wait_for, write_runbook


def test_a_stale_holders_step_finished_is_refused_after_a_takeover(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: takeover
        phases:
          - name: p
            steps:
              - id: work
                run: "touch started-{{ run.id }}; sleep 3; touch done-{{ run.id }}"
              - run: "touch second-{{ run.id }}"
    """)
    first = spawn("run", "runbook.yaml", "--json", cwd=tmp_path)
    wait_for(lambda: any(tmp_path.glob("started-*")))
    (started,) = tmp_path.glob("started-*")
    old = started.name.removeprefix("started-")
    unlock = tminus("unlock", "runbook.yaml", "-e", "default", "--reason", "taking over", cwd=tmp_path)
    assert unlock.returncode == 0, unlock.stderr
    second = tminus("run", "runbook.yaml", "--json", cwd=tmp_path)  # takes the lease at once
    assert second.returncode == 0, second.stderr
    new = json.loads(second.stdout)["run_id"]

    assert first.wait(timeout=60) == 130
    out = json.loads(first.stdout.read() if first.stdout else "{}")
    assert "lease was broken" in out["reason"]
    assert (tmp_path / f"done-{old}").exists()  # the step did finish its work...
    assert not (tmp_path / f"second-{old}").exists()  # ...and the run went no further
    _code, shown = run_json("show", old, cwd=tmp_path)
    types = [(e["type"], e["step_key"]) for e in shown["events"]]
    (key,) = [k for t, k in types if t == "step.started"]
    assert ("step.finished", key) not in types  # ...but its result was refused: not recorded
    assert types[-1] == ("note", None) and shown["events"][-1]["data"]["action"] == "unlock"
    assert shown["run"]["status"] == "running"  # still resumable; nothing after the unlock landed

    _code, other = run_json("show", new, cwd=tmp_path)
    assert other["run"]["status"] == "completed"
    verify = tminus("ledger", "verify", cwd=tmp_path)
    assert verify.returncode == 0 and "intact" in verify.stdout, verify.stderr
