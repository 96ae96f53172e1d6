"""`tminus releases`: the release ledger read from real runs, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import tminus, write_runbook

RUNBOOK = """
    name: shop
    vars: {release: v0}
    secrets: [BUILD_TOKEN]
    release: "{{ vars.release }}{{ '+' ~ secrets.BUILD_TOKEN if vars.release == 'v5' else '' }}"
    phases:
      - name: deploy
        steps:
          - run: "echo {{ vars.release }} > live.txt"
            undo: [{run: "echo undone > live.txt"}]
    verify:
      - run: "grep -qv broken live.txt"
        after_rollback: false
"""

ENV = {"BUILD_TOKEN": "s3cr3t-build"}


def run(tmp: Path, url: str, release: str, env: str = "prod", operator: str = "alice") -> tuple[int, str]:
    done = tminus("run", "runbook.yaml", "-e", env, "--var", f"release={release}", "--ledger", url, "--json",
                  cwd=tmp, env={**ENV, "TMINUS_OPERATOR": operator})
    return done.returncode, json.loads(done.stdout)["run_id"]


def test_releases_lists_what_is_live_and_what_was(tmp_path: Path, url: str) -> None:
    write_runbook(tmp_path, RUNBOOK)
    assert run(tmp_path, url, "v1")[0] == 0
    code, v2 = run(tmp_path, url, "v2", operator="bob")
    assert code == 0
    assert run(tmp_path, url, "broken3")[0] == 11  # verify failed before go: never live
    code, v4 = run(tmp_path, url, "v4")
    assert code == 0
    back = tminus("rollback", v4, "--reason", "errors up", "--ledger", url, cwd=tmp_path, env=ENV)
    assert back.returncode == 11, back.stderr
    assert run(tmp_path, url, "v9", env="staging")[0] == 0

    listed = tminus("releases", "runbook.yaml", "--ledger", url, "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    envs = {e["environment"]: e for e in json.loads(listed.stdout)}
    assert sorted(envs) == ["prod", "staging"]
    prod = envs["prod"]
    assert prod["live"]["release"] == "v2" and prod["live"]["run"] == v2 and prod["live"]["operator"] == "bob"
    assert prod["live"]["live_since"] and prod["live"]["state"] == "live"
    assert [(r["release"], r["state"]) for r in prod["releases"]] == [
        ("v4", "rolled_back"), ("v2", "live"), ("v1", "superseded")]
    assert "errors up" in prod["releases"][0]["rollback_reason"]
    assert envs["staging"]["live"]["release"] == "v9"

    text = tminus("releases", "shop", "-e", "prod", "--ledger", url, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "prod:" and lines[1].startswith("  live: v2 since ") and f"run {v2}" in lines[1]
    assert "ROLLED BACK" in lines[2] and "v4" in lines[2] and "was live" in lines[3] and "v1" in lines[3]
    assert "staging" not in text.stdout and "broken3" not in text.stdout


def test_a_secret_in_the_release_is_masked_and_a_rollback_uncovers_the_previous(tmp_path: Path, url: str) -> None:
    write_runbook(tmp_path, RUNBOOK)
    assert run(tmp_path, url, "v4")[0] == 0
    code, v5 = run(tmp_path, url, "v5")
    assert code == 0
    listed = json.loads(tminus("releases", "--ledger", url, "--json", cwd=tmp_path).stdout)
    assert listed[0]["live"]["release"] == "v5+***"
    assert "s3cr3t" not in json.dumps(listed)
    assert tminus("rollback", v5, "--reason", "bad", "--ledger", url, cwd=tmp_path, env=ENV).returncode == 11
    listed = json.loads(tminus("releases", "--ledger", url, "--json", cwd=tmp_path).stdout)
    assert listed[0]["live"]["release"] == "v4"  # the one before it is live again


def test_no_release_declared_or_no_ledger_lists_nothing(tmp_path: Path) -> None:
    empty = tminus("releases", "--json", cwd=tmp_path)
    assert empty.returncode == 0 and json.loads(empty.stdout) == []
    assert not (tmp_path / ".tminus").exists()  # looking never creates a ledger
    write_runbook(tmp_path, """
        name: plain
        phases: [{name: p, steps: [{run: "true"}]}]
    """)
    assert tminus("run", "runbook.yaml", cwd=tmp_path).returncode == 0
    text = tminus("releases", cwd=tmp_path)
    assert text.returncode == 0 and "no releases recorded" in text.stdout
