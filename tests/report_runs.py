"""Real runs for the report tests: `tminus run` subprocesses over a SQLite ledger in a folder of the
test's, one per ending a report must render (completed, rolled back, rollback failed, monitor fired).

Every runbook declares the secret REPORT_CANARY and a step prints it, so a report that holds
CANARY anywhere leaked it. Each scenario returns the folder (the ledger is .tminus/ledger.db there)
and the run's id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import run_json, write_runbook

CANARY = "canary-4f9c2e-do-not-print"
ENV = {"REPORT_CANARY": CANARY}

_HEAD = """
name: report-demo
description: A small cutover whose every ending a report renders.
secrets: [REPORT_CANARY]
vars:
  release: v2
gates:
  - name: workspace ready
    checks:
      - name: the folder is writable
        run: "test -w ."
        expect:
          - exit_code == 0
      - name: the canary is set
        run: 'test -n "$REPORT_CANARY"'
phases:
  - name: prepare
    budget: 5s
    steps:
      - name: note the release
        run: "echo {{ vars.release }} > release.txt"
        undo:
          - name: forget the release
            run: "echo v1 > release.txt"
      - name: print the token
        run: 'echo "token=$REPORT_CANARY"'
  - name: deploy
    budget: 1s
    steps:
      - name: deploy <b>v2</b> & friends
        run: "sleep 0.05; {deploy_cmd}"
        undo:
          - name: undeploy
            run: "{undo_cmd}"
      - name: operator confirms
        manual: "Check the dashboard shows {{ vars.release }}."
verify:
  - name: the service is healthy
    run: "test ! -f broken"
    expect:
      - exit_code == 0
  - name: the release is written
    run: "cat release.txt"
    expect:
      - stdout contains "v"
"""

_MONITOR = """
monitor:
  duration: 3s
  interval: 200ms
  probes:
    - name: pool
      run: {command: "cat pool.json", output: json}
  rules:
    - name: pool saturated
      when: 'jsonpath "$.saturation" >= 0.9'
      consecutive: 2
      action: rollback
"""


def _head(deploy_cmd: str, undo_cmd: str) -> str:
    return _HEAD.replace("{deploy_cmd}", deploy_cmd).replace("{undo_cmd}", undo_cmd)


@dataclass
class ReportRun:
    folder: Path
    run_id: str
    status: str
    exit_code: int

    @property
    def ledger_url(self) -> str:
        return f"sqlite:///{self.folder / '.tminus' / 'ledger.db'}"


def _run(folder: Path, runbook: str, *args: str) -> ReportRun:
    folder.mkdir(parents=True, exist_ok=True)
    write_runbook(folder, runbook)
    code, result = run_json("run", "runbook.yaml", "--yes", *args, cwd=folder, env=ENV)
    return ReportRun(folder, str(result["run_id"]), str(result["status"]), code)


def completed(folder: Path) -> ReportRun:
    return _run(folder, _head("echo deployed", "true"))


def rolled_back(folder: Path) -> ReportRun:
    """The deploy breaks the service: verify fails, the run rolls back, every undo passes."""
    return _run(folder, _head("touch broken", "rm -f broken"))


def rollback_failed(folder: Path) -> ReportRun:
    """The deploy breaks the service, and its undo fails: the rollback stops there."""
    return _run(folder, _head("touch broken", "echo cannot undeploy >&2; exit 3"))


def monitor_fired(folder: Path) -> ReportRun:
    """The run completes its phases; in the window the pool reads 0.95: the rule fires, rollback."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pool.json").write_text(json.dumps({"saturation": 0.95}))
    return _run(folder, _head("echo deployed", "true") + _MONITOR)


SCENARIOS = {"completed": completed, "rolled_back": rolled_back, "rollback_failed": rollback_failed,
             "monitor_fired": monitor_fired}
EXPECTED = {"completed": ("completed", 0), "rolled_back": ("rolled_back", 11),
            "rollback_failed": ("rollback_failed", 12), "monitor_fired": ("rolled_back", 11)}
