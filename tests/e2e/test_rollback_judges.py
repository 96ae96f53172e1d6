"""The rollback judges what it can (issue 10, part 5): a verify-after-rollback check that reads the
outputs of a step that never ran (the quickstart's `steps.notes_before` when the run failed before
it) is skipped with its reason recorded, not a failure of the rollback; a check whose step ran is
judged as ever."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import lines, run_json, tminus, write_runbook

RUNBOOK = """
    name: judged
    phases:
      - name: prepare
        steps:
          - name: may fail early
            run: "echo early >> log; test ! -f fail-early"
          - name: Count the notes
            id: notes_before
            run: "cat notes"
      - name: change
        steps:
          - name: may lose a note and fail
            run: "echo change >> log; if [ -f lose-note ]; then echo 2 > notes; fi; test ! -f fail-late"
        undo: [{run: "echo undo-change >> log"}]
    verify:
      - name: no note was lost
        run: "cat notes"
        expect: ['stdout trim == "{{ steps.notes_before.stdout | trim }}"']
      - name: healthy
        run: "echo healthy >> log"
"""


def _setup(tmp_path: Path, *flags: str) -> None:
    write_runbook(tmp_path, RUNBOOK)
    (tmp_path / "notes").write_text("3\n")
    for flag in flags:
        (tmp_path / flag).touch()


def _verify_after_rollback(tmp_path: Path, run_id: str) -> list[dict[str, Any]]:
    code, shown = run_json("show", run_id, cwd=tmp_path)
    assert code == 0, shown
    return [e for e in shown["events"] if e["type"] in ("step.finished", "step.skipped")
            and e["data"].get("section") == "verify-after-rollback"]


def test_a_check_needing_a_step_that_never_ran_is_skipped_with_its_reason(tmp_path: Path) -> None:
    _setup(tmp_path, "fail-early")
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 11 and result["status"] == "rolled_back", result
    checks = _verify_after_rollback(tmp_path, result["run_id"])
    assert [(e["type"], e["data"]["name"]) for e in checks] == [
        ("step.skipped", "no note was lost"), ("step.finished", "healthy")]
    assert checks[0]["data"]["message"] == "needs steps.notes_before, which never ran"
    assert lines(tmp_path / "log") == ["early", "healthy"]  # the check that could run did
    shown = tminus("show", result["run_id"], cwd=tmp_path)
    assert "needs steps.notes_before, which never ran" in shown.stdout, shown.stdout
    why = tminus("why", result["run_id"], cwd=tmp_path)
    assert why.returncode == 0, why.stderr
    assert "notes_before, which never ran" in why.stdout, why.stdout


def test_a_check_whose_step_ran_is_judged(tmp_path: Path) -> None:
    _setup(tmp_path, "fail-late")
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 11 and result["status"] == "rolled_back", result
    checks = _verify_after_rollback(tmp_path, result["run_id"])
    assert [(e["type"], e["data"]["name"], e["data"]["status"]) for e in checks] == [
        ("step.finished", "no note was lost", "ok"), ("step.finished", "healthy", "ok")]


def test_a_check_whose_step_ran_still_fails_the_rollback(tmp_path: Path) -> None:
    _setup(tmp_path, "fail-late", "lose-note")
    code, result = run_json("run", "runbook.yaml", "--no-input", cwd=tmp_path)
    assert code == 12 and result["status"] == "rollback_failed", result
    assert "no note was lost" in result["reason"]


def test_a_misspelt_step_id_is_a_validation_error(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK.replace("steps.notes_before.stdout", "steps.notes_befor.stdout"))
    proc = tminus("validate", "runbook.yaml", cwd=tmp_path)
    assert proc.returncode == 78, proc.stdout + proc.stderr
    assert "notes_befor" in proc.stdout + proc.stderr and "notes_before" in proc.stdout + proc.stderr
