"""What the docs say about signals and about --var on resume and rollback, against the real command."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.helpers import lines, run_json, spawn, tminus, wait_for, write_runbook


def test_rollback_renders_with_the_runs_recorded_overrides(tmp_path: Path) -> None:
    # docs/cli.md (rollback), docs/examples/*: the original run's --var overrides apply again.
    write_runbook(tmp_path, """
        name: vars-rollback
        vars: {target: default}
        phases:
          - name: p
            steps:
              - run: "echo do-{{ vars.target }} >> log"
                undo: [{run: "echo undo-{{ vars.target }} >> log"}]
    """)
    code, result = run_json("run", "runbook.yaml", "--var", "target=v7", cwd=tmp_path)
    assert code == 0, result
    run_id = run_json("history", cwd=tmp_path)[1][0]["id"]
    refused = tminus("rollback", run_id, "--reason", "test", "--var", "target=v8", cwd=tmp_path)
    assert refused.returncode == 2
    assert "--var is not taken by `tminus rollback`" in refused.stderr and "start a new run" in refused.stderr
    rolled = tminus("rollback", run_id, "--reason", "test", cwd=tmp_path)
    assert rolled.returncode == 11, rolled.stderr
    assert lines(tmp_path / "log") == ["do-v7", "undo-v7"]


def test_resume_refuses_var_and_var_file_saying_why(tmp_path: Path) -> None:
    for option, value in (("--var", "target=v8"), ("--var-file", "vars.yaml")):
        proc = tminus("resume", "20261123-094512", option, value, cwd=tmp_path)
        assert proc.returncode == 2
        assert f"{option} is not taken by `tminus resume`" in proc.stderr, proc.stderr


def test_sigterm_interrupts_an_idempotent_step_and_resume_reruns_it(tmp_path: Path) -> None:
    # docs/runbook.md (idempotent), docs/cli.md (run), docs/concepts.md: a signalled step is
    # interrupted, the run exits 130, and resume re-runs the step by itself when it is idempotent.
    write_runbook(tmp_path, """
        name: term-idempotent
        phases:
          - name: p
            steps:
              - run: "echo start >> log; if [ ! -e again ]; then touch started; sleep 30; fi"
                idempotent: true
              - run: "echo after >> log"
    """)
    proc = spawn("run", "runbook.yaml", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 130
    runs = run_json("history", cwd=tmp_path)[1]
    assert runs[0]["status"] == "interrupted"
    (tmp_path / "again").touch()
    resumed = tminus("resume", runs[0]["id"], "--no-input", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr  # no question asked: the step is idempotent
    assert lines(tmp_path / "log") == ["start", "start", "after"]
