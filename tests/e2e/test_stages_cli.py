"""Stages in time and `requires:` as an operator meets them: real `tminus` subprocesses, real shell
checks, a real SQLite ledger; hostile `--at`, `--stage` and `at:` refused with a usage error or a
positioned validation error."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.helpers import run_json, tminus, write_runbook

CUTOVER = """
    name: orders-cutover
    vars: {when: "2026-12-05T22:00Z"}
    at: "{{ vars.when }}"
    require_stages: true
    gates:
      - name: staging validated
        stage: T-48h
        checks:
          - run: "echo t48 >> log"
      - name: final preparation
        stage: T-2h
        checks:
          - run: "test ! -e not-ready && echo t2 >> log"
      - name: day
        checks:
          - run: "echo day >> log"
    phases:
      - name: change
        steps:
          - run: "touch changed"
"""


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(tmp_path: Path) -> list[str]:
    path = tmp_path / "log"
    return path.read_text().split() if path.exists() else []


def test_stages_before_the_day_then_the_run(tmp_path: Path) -> None:
    write_runbook(tmp_path, CUTOVER)
    at = iso(timedelta(hours=1))
    code, stage = run_json("gate", "runbook.yaml", "--stage", "T-48h", "--at", at, cwd=tmp_path)
    assert (code, stage["status"]) == (0, "completed"), stage
    assert log(tmp_path) == ["t48"]
    # the day's run: T-2h never ran, so it is blocked, nothing changed, the reason names the stage
    code, blocked = run_json("run", "runbook.yaml", "--at", at, cwd=tmp_path)
    assert (code, blocked["status"]) == (10, "blocked"), blocked
    assert not (tmp_path / "changed").exists()
    assert [f.split(":")[0] for f in blocked["failures"]] == ["stage T-2h missing"]
    why = tminus("why", blocked["run_id"], cwd=tmp_path).stdout
    assert "blocked at the gates: 1 stage not passed, so nothing was changed" in why
    assert "  stage T-2h missing: no `tminus gate --stage T-2h` run of orders-cutover in default" in why
    assert "runbook.yaml --stage T-2h`" in why
    # T-2h fails: still blocked, now as failed, with the failed stage run's id
    (tmp_path / "not-ready").touch()
    code, failed_stage = run_json("gate", "runbook.yaml", "--stage", "T-2h", "--at", at, cwd=tmp_path)
    assert code == 10
    code, blocked = run_json("run", "runbook.yaml", "--at", at, cwd=tmp_path)
    assert code == 10 and blocked["failures"][0].startswith("stage T-2h failed at ")
    assert failed_stage["run_id"] in blocked["failures"][0]
    (tmp_path / "not-ready").unlink()
    code, _ = run_json("gate", "runbook.yaml", "--stage", "T-2h", "--at", at, cwd=tmp_path)
    assert code == 0
    run = tminus("run", "runbook.yaml", "--at", at, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "changed").exists()
    assert "note: stage T-48h passed at " in run.stderr and "note: stage T-2h passed at " in run.stderr
    assert log(tmp_path) == ["t48", "day", "day", "t2", "day"]  # no stage re-ran on the day
    show = tminus("show", run.stderr.split("run ")[-1].split()[0], cwd=tmp_path)
    assert "stage T-2h passed" in show.stdout + show.stderr


def test_a_stage_too_early_or_after_the_cutover_does_not_count(tmp_path: Path) -> None:
    write_runbook(tmp_path, CUTOVER)
    for stage in ("T-48h", "T-2h"):
        assert run_json("gate", "runbook.yaml", "--stage", stage, cwd=tmp_path)[0] == 0  # towards 2026-12-05
    # the same records against a cutover three hours from now: T-2h ran too early
    code, blocked = run_json("run", "runbook.yaml", "--at", iso(timedelta(hours=3)), cwd=tmp_path)
    assert code == 10 and blocked["failures"][0].startswith("stage T-2h stale: its latest run, at ")
    assert "before its window opened" in blocked["failures"][0]
    # and against one a minute ago: both ran after it
    code, blocked = run_json("run", "runbook.yaml", "--at", iso(timedelta(minutes=-1)), cwd=tmp_path)
    assert code == 10 and len(blocked["failures"]) == 2
    assert all("started at or after the cutover" in f for f in blocked["failures"])
    assert not (tmp_path / "changed").exists()


def test_without_a_cutover_time_a_stage_goes_stale_after_its_offset(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: quick
        require_stages: true
        gates:
          - name: just before
            stage: T-5s
            checks: [{run: "true"}]
        phases:
          - name: change
            steps: [{run: "touch changed"}]
    """)
    assert run_json("gate", "runbook.yaml", "--stage", "T-5s", cwd=tmp_path)[0] == 0
    time.sleep(5.2)
    code, blocked = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 10 and "stage T-5s stale" in blocked["failures"][0], blocked
    assert "before this run" in blocked["failures"][0]
    assert run_json("gate", "runbook.yaml", "--stage", "T-5s", cwd=tmp_path)[0] == 0
    assert run_json("run", "runbook.yaml", cwd=tmp_path)[0] == 0
    assert (tmp_path / "changed").exists()


def test_requires_another_runbooks_run(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: rehearsal
        environments: {staging: {}, prod: {}}
        phases:
          - name: change
            steps: [{run: "test ! -e broken"}]
    """, name="rehearsal.yaml")
    write_runbook(tmp_path, """
        name: cutover
        vars: {rehearsed_in: staging, age: 1h}
        requires:
          - runbook: rehearsal
            environment: "{{ vars.rehearsed_in }}"
            within: 8s
        phases:
          - name: change
            steps: [{run: "touch changed"}]
    """)
    code, none = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 10 and none["failures"] == [
        "requires rehearsal in staging: completed within 8s: not met: "
        "no run of rehearsal in staging has ended (the ledger holds none)"]
    why = tminus("why", none["run_id"], cwd=tmp_path).stdout
    assert "blocked at the gates: 1 requirement not met, so nothing was changed" in why
    assert "Run what is required first: rehearsal in staging (`tminus history --runbook rehearsal`" in why
    assert "  Then run again (`tminus gate " in why
    code, rehearsed = run_json("run", "rehearsal.yaml", "-e", "staging", cwd=tmp_path)
    assert code == 0
    ended = time.monotonic()
    code, done = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 0, done
    assert (tmp_path / "changed").exists()
    code, other = run_json("run", "runbook.yaml", "--var", "rehearsed_in=prod", cwd=tmp_path)
    assert code == 10 and "no run of rehearsal in prod has ended" in other["failures"][0]
    time.sleep(max(0.0, ended + 8.5 - time.monotonic()))  # now the rehearsal is older than `within`
    code, old = run_json("run", "runbook.yaml", cwd=tmp_path)
    assert code == 10
    assert "not met: latest rehearsal in staging: completed " in old["failures"][0]
    assert old["failures"][0].endswith(f"s ago, run {rehearsed['run_id']} (older than 8s)")


def test_plan_shows_the_stages_before_t0(tmp_path: Path) -> None:
    write_runbook(tmp_path, CUTOVER)
    code, plan = run_json("plan", "runbook.yaml", cwd=tmp_path)
    assert code == 0
    assert plan["at"] == "2026-12-05T22:00:00Z"
    assert [(s["stage"], s["opens"], [g["name"] for g in s["gates"]]) for s in plan["stages"]] == [
        ("T-48h", "2026-12-03T22:00:00Z", ["staging validated"]),
        ("T-2h", "2026-12-05T20:00:00Z", ["final preparation"])]
    assert [g["name"] for g in plan["gates"]] == ["day"] and plan["require_stages"] is True
    text = tminus("plan", "runbook.yaml", "--at", "2027-01-01T00:00+01:00", cwd=tmp_path).stdout
    assert text.index("Cutover (T+0): 2026-12-31T23:00:00Z") < text.index("Stages") < text.index("Timeline")
    assert "T-48h  window opens 2026-12-29T23:00:00Z" in text


def test_hostile_times_are_refused_where_they_enter(tmp_path: Path) -> None:
    write_runbook(tmp_path, CUTOVER)
    for flag, value, words in (("--at", "tomorrow", "'tomorrow' is not an ISO 8601 time"),
                               ("--at", "2026-12-05T22:00", "has no zone"),
                               ("--stage", "T+2h", "'T+2h' is not a stage"),
                               ("--stage", "T-3h", "the runbook has no gate of stage T-3h")):
        args = ["gate", "runbook.yaml", flag, value] if flag == "--stage" else ["run", "runbook.yaml", flag, value]
        proc = tminus(*args, cwd=tmp_path)
        assert proc.returncode == 2, (value, proc.stderr)
        assert f"error: {flag}: " in proc.stderr and words in proc.stderr
    assert "its stages: T-48h, T-2h" in tminus("gate", "runbook.yaml", "--stage", "T-3h", cwd=tmp_path).stderr
    # `at:` is rendered from vars when the run starts: junk there is an invalid runbook, at its position
    proc = tminus("run", "runbook.yaml", "--var", "when=next friday", cwd=tmp_path)
    assert proc.returncode == 78
    assert "runbook.yaml:3:1: 'next friday' is not an ISO 8601 time (rendered from '{{ vars.when }}')" in proc.stderr
    assert not (tmp_path / "log").exists()
    write_runbook(tmp_path, CUTOVER.replace('"{{ vars.when }}"', "2026-12-05T22:00").replace("T-2h", "T-0m"))
    proc = tminus("validate", "runbook.yaml", "--json", cwd=tmp_path)
    assert proc.returncode == 78
    problems = {(p["location"], p["message"]) for p in json.loads(proc.stdout)["problems"]}
    assert problems == {
        ("runbook.yaml:3:1", "'2026-12-05T22:00' has no zone: it would mean another moment on each machine"),
        ("runbook.yaml:11:5", "'T-0m' is the cutover itself, not a stage before it")}


@pytest.mark.postgres
def test_stages_and_requires_with_the_ledger_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    env = {"TMINUS_LEDGER": pg_url}
    write_runbook(tmp_path, CUTOVER.replace("require_stages: true", "requires: [{runbook: orders-cutover, "
                                            "environment: default, outcome: blocked, within: 1h}]\n"
                                            "    require_stages: true"))
    at = iso(timedelta(hours=1))
    for stage in ("T-48h", "T-2h"):
        assert run_json("gate", "runbook.yaml", "--stage", stage, "--at", at, cwd=tmp_path, env=env)[0] == 0
    # the requirement: a blocked run of itself in the last hour (a gate-only run is not a run)
    code, first = run_json("run", "runbook.yaml", "--at", at, cwd=tmp_path, env=env)
    assert code == 10 and first["failures"][0].startswith("requires orders-cutover in default: blocked")
    code, second = run_json("run", "runbook.yaml", "--at", at, cwd=tmp_path, env=env)
    assert code == 0, second
    assert (tmp_path / "changed").exists()
