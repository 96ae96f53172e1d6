"""`tminus docs` and the `docs` check kind through the real command: --check holds a committed page
to the runbook (one word of drift either way fails it), and a gate with a `docs` check blocks a run
while the page is stale (a SQLite ledger in tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_json, tminus, write_runbook

RUNBOOK = """
name: docs-drift
secrets: [API_TOKEN]
vars: {release: "2.4.0"}
environments:
  staging: {vars: {release: "2.4.0-rc1"}}
  production: {}
gates:
  - name: runbook docs current
    checks:
      - name: the page is current
        docs: {file: RUNBOOK.md}
phases:
  - name: deploy
    budget: 5m
    steps:
      - name: Switch traffic to green
        run: "echo switch {{ vars.release }} {{ env.API_TOKEN }}"
        undo: [{run: echo back}]
"""


def _setup(tmp_path: Path) -> Path:
    write_runbook(tmp_path, RUNBOOK)
    made = tminus("docs", "runbook.yaml", "-e", "production", "-o", "RUNBOOK.md", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    return tmp_path / "RUNBOOK.md"


def test_check_passes_then_fails_on_one_word_either_way(tmp_path: Path) -> None:
    page = _setup(tmp_path)
    ok = tminus("docs", "runbook.yaml", "-e", "production", "--check", "RUNBOOK.md", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().splitlines() == ["RUNBOOK.md is current (runbook.yaml, production)"]

    # line endings and trailing spaces do not count
    page.write_bytes(page.read_bytes().replace(b"\n", b"  \r\n"))
    assert tminus("docs", "runbook.yaml", "-e", "production", "--check", "RUNBOOK.md", cwd=tmp_path).returncode == 0

    # one word of a step name in the runbook
    runbook = tmp_path / "runbook.yaml"
    runbook.write_text(runbook.read_text().replace("Switch traffic to green", "Switch traffic to blue"))
    drift = tminus("docs", "runbook.yaml", "-e", "production", "--check", "RUNBOOK.md", cwd=tmp_path)
    assert drift.returncode == 1
    assert "-1. **Switch traffic to green**" in drift.stdout and "+1. **Switch traffic to blue**" in drift.stdout
    assert drift.stdout.startswith("--- RUNBOOK.md (committed)\n+++ RUNBOOK.md (rendered from the runbook)\n")
    assert "regenerate with: tminus docs runbook.yaml -e production -o RUNBOOK.md" in drift.stderr

    # one word in the committed page (the runbook as it was)
    runbook.write_text(runbook.read_text().replace("Switch traffic to blue", "Switch traffic to green"))
    _setup(tmp_path)
    page.write_text(page.read_text().replace("budget 5m00s", "budget 6m00s"))
    edited = tminus("docs", "runbook.yaml", "-e", "production", "--check", "RUNBOOK.md", "--json", cwd=tmp_path)
    assert edited.returncode == 1
    out = json.loads(edited.stdout)
    assert out["current"] is False and "-### T+0:00 deploy (budget 6m00s)" in out["diff"]
    assert out["regenerate"] == "tminus docs runbook.yaml -e production -o RUNBOOK.md"

    # another environment renders another page
    staging = tminus("docs", "runbook.yaml", "-e", "staging", "--check", "RUNBOOK.md", cwd=tmp_path)
    assert staging.returncode == 1 and "+| release | 2.4.0-rc1 |" in staging.stdout


def test_check_of_a_missing_file_and_bad_usage(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    missing = tminus("docs", "runbook.yaml", "-e", "production", "--check", "nope/RUNBOOK.md", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stdout == ""
    assert "error: --check nope/RUNBOOK.md: no such file" in missing.stderr
    assert "write it with: tminus docs runbook.yaml -e production -o nope/RUNBOOK.md" in missing.stderr
    both = tminus("docs", "runbook.yaml", "-e", "production", "-o", "a.md", "--check", "b.md", cwd=tmp_path)
    assert both.returncode == 2 and not (tmp_path / "a.md").exists()
    unknown = tminus("docs", "runbook.yaml", "-e", "qa", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown environment 'qa'" in unknown.stderr


def test_a_secret_in_the_environment_never_reaches_the_page(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    shown = tminus("docs", "runbook.yaml", "-e", "production", cwd=tmp_path, env={"API_TOKEN": "tok-9f8e7d6c5b"})
    assert shown.returncode == 0, shown.stderr
    assert "tok-9f8e7d6c5b" not in shown.stdout and "`$ echo switch 2.4.0 '***'`" in shown.stdout
    as_json = tminus("docs", "runbook.yaml", "-e", "production", "--json", cwd=tmp_path,
                     env={"API_TOKEN": "tok-9f8e7d6c5b"})
    assert "tok-9f8e7d6c5b" not in as_json.stdout and json.loads(as_json.stdout)["environment"] == "production"


def _failed_checks(tmp_path: Path, run_id: str) -> list[dict[str, object]]:
    code, shown = run_json("show", run_id, "--ledger", f"sqlite:///{tmp_path / 'ledger.db'}", cwd=tmp_path)
    assert code == 0, shown
    return [e["data"] for e in shown["events"] if e["type"] == "step.finished" and e["data"]["status"] != "ok"]


def test_the_docs_kind_blocks_a_gate_while_the_page_drifted(tmp_path: Path) -> None:
    _setup(tmp_path)
    ledger = ["--ledger", f"sqlite:///{tmp_path / 'ledger.db'}"]
    code, result = run_json("gate", "runbook.yaml", "-e", "production", *ledger, cwd=tmp_path)
    assert code == 0, result

    runbook = tmp_path / "runbook.yaml"
    runbook.write_text(runbook.read_text().replace("Switch traffic to green", "Switch traffic to blue"))
    code, result = run_json("gate", "runbook.yaml", "-e", "production", *ledger, cwd=tmp_path)
    assert code == 10 and result["status"] == "blocked", result
    [failed] = _failed_checks(tmp_path, result["run_id"])
    assert failed["name"] == "the page is current"
    said = json.dumps(failed)
    # rendered for the run's environment (-e production), the changed line quoted
    assert "Switch traffic to blue" in said and "RUNBOOK.md drifted from the runbook (production)" in said
    assert "regenerate with: tminus docs runbook.yaml -e production -o RUNBOOK.md" in said

    made = tminus("docs", "runbook.yaml", "-e", "production", "-o", "RUNBOOK.md", cwd=tmp_path)
    assert made.returncode == 0
    code, result = run_json("gate", "runbook.yaml", "-e", "production", *ledger, cwd=tmp_path)
    assert code == 0, result


def test_the_docs_kind_checks_another_runbook_and_refuses_paths_outside(tmp_path: Path) -> None:
    """`runbook:` and `environment:` name the page's runbook; a page outside the runbook's folder is
    refused; a check that outlives its timeout is stopped (its process group killed) and fails."""
    service = tmp_path / "service"
    service.mkdir()
    _setup(service)
    write_runbook(tmp_path, """
    name: docs-of-another
    roots: [service]
    gates:
      - name: pages current
        checks:
          - name: the service runbook's production page
            docs: {file: service/RUNBOOK.md, runbook: service/runbook.yaml, environment: production}
          - name: a page outside
            docs: {file: ../elsewhere.md}
          - name: too slow
            docs: {file: service/RUNBOOK.md, runbook: service/runbook.yaml, environment: production}
            timeout: 20ms
    phases:
      - name: nothing
        steps: [{run: "true", undo: [{run: "true"}]}]
    """)
    ledger = ["--ledger", f"sqlite:///{tmp_path / 'ledger.db'}"]
    code, result = run_json("gate", "runbook.yaml", *ledger, cwd=tmp_path)
    assert code == 10, result
    outside, slow = _failed_checks(tmp_path, result["run_id"])
    assert outside["name"] == "a page outside" and "outside" in json.dumps(outside)
    assert slow["name"] == "too slow" and "timed out after 20ms rendering the page" in json.dumps(slow)
