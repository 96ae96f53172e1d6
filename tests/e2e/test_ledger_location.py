"""Where the ledger lives: tminus.toml found upward, the nearest .tminus/ledger.db upward, and read
commands that never create anything (SQLite or PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from tests.helpers import run_json, tminus, write_runbook
from tests.helpers_db import table_names

RUNBOOK = """
    name: located
    environments:
      staging: {}
      production: {}
    phases:
      - name: p
        steps:
          - run: "echo hello"
"""

READS = (("status",), ("status", "--json"), ("history",), ("history", "--json"), ("show", "abc"),
         ("show", "abc", "--json"), ("why", "abc"), ("why", "abc", "--json"), ("replay", "abc"),
         ("ledger", "verify"), ("ledger", "verify", "--json"), ("config",), ("config", "--json"),
         # they write, but only to something already recorded: no ledger, nothing to act on
         ("approve", "abc"), ("resume", "abc"), ("rollback", "abc", "--reason", "r"),
         ("unlock", "located", "-e", "staging", "--reason", "r"))


def tree(root: Path) -> dict[str, str]:
    """Every file and folder under root with its content hash: byte-identical means equal."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def test_a_subdirectory_finds_the_project_ledger_upward(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    first = tminus("run", "runbook.yaml", "-e", "staging", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "creating the ledger" in first.stderr and str(tmp_path / ".tminus" / "ledger.db") in first.stderr
    sub = tmp_path / "deploy" / "scripts"
    sub.mkdir(parents=True)
    code, runs = run_json("history", cwd=sub)
    assert code == 0 and [r["id"] for r in runs] == [json.loads(first.stdout)["run_id"]]
    second = tminus("run", "../../runbook.yaml", "-e", "staging", "--json", cwd=sub)
    assert second.returncode == 0, second.stderr
    assert "creating the ledger" not in second.stderr
    verbose = tminus("gate", "../../runbook.yaml", "-e", "staging", "-v", cwd=sub)
    assert verbose.returncode == 0, verbose.stderr
    assert f"ledger sqlite:///{tmp_path.resolve()}/.tminus/ledger.db (found upward" in verbose.stderr
    assert not (sub / ".tminus").exists() and not (tmp_path / "deploy" / ".tminus").exists()
    assert len(run_json("history", cwd=tmp_path)[1]) == 3


def test_with_a_tminus_toml_two_directories_share_one_ledger(tmp_path: Path) -> None:
    (tmp_path / "tminus.toml").write_text('ledger = "ops/ledger.db"\nenvironment = "production"\n')
    write_runbook(tmp_path, RUNBOOK)
    for folder in ("a", "b/c"):
        (tmp_path / folder).mkdir(parents=True)
        depth = "../" * (folder.count("/") + 1)
        done = tminus("run", f"{depth}runbook.yaml", "--json", cwd=tmp_path / folder)
        assert done.returncode == 0, done.stderr
        assert not (tmp_path / folder / ".tminus").exists()
    assert (tmp_path / "ops" / "ledger.db").is_file() and not (tmp_path / ".tminus").exists()
    code, runs = run_json("history", cwd=tmp_path / "a")
    assert code == 0 and [r["environment"] for r in runs] == ["production", "production"]
    code, shown = run_json("config", cwd=tmp_path / "b")
    assert shown["ledger"] == {"value": f"sqlite:///{tmp_path.resolve()}/ops/ledger.db",
                               "source": f"{(tmp_path / 'tminus.toml').resolve()}:1 ledger"}
    assert shown["environment"]["value"] == "production"
    # the flag and the environment variable still win over the file
    code, shown = run_json("config", "-e", "staging", cwd=tmp_path, env={"TMINUS_LEDGER": "sqlite:////x.db"})
    assert (shown["ledger"]["source"], shown["environment"]["source"]) == ("env TMINUS_LEDGER", "flag --env")
    code, shown = run_json("--config", str(tmp_path / "tminus.toml"), "config", cwd=Path("/"))
    assert shown["config"]["source"] == "flag --config" and shown["ledger"]["value"].endswith("/ops/ledger.db")


@pytest.mark.parametrize("setup", ["nothing", "toml"])
def test_read_commands_create_nothing_on_sqlite(tmp_path: Path, setup: str) -> None:
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    if setup == "toml":
        (project / "tminus.toml").write_text('ledger = "state/ledger.db"\n')
    before = tree(tmp_path)
    for args in READS:
        result = tminus(*args, cwd=project / "sub")
        assert result.returncode == (0 if args[0] in ("status", "history", "config") else 1), (args, result.stderr)
        if args[0] not in ("status", "history", "config"):
            assert "no ledger at" in result.stderr and "tminus.toml" in result.stderr, (args, result.stderr)
        assert tree(tmp_path) == before, args
    assert json.loads(tminus("history", "--json", cwd=project).stdout) == []


def test_read_commands_create_no_tables_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    (tmp_path / "tminus.toml").write_text(f'ledger = "{pg_url}"\n')
    for args in READS:
        result = tminus(*args, cwd=tmp_path)
        assert result.returncode == (0 if args[0] in ("status", "history", "config") else 1), (args, result.stderr)
    assert table_names(pg_url) == set()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tminus.toml"]


def test_a_bad_tminus_toml_is_a_config_error_with_its_line(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    (tmp_path / "tminus.toml").write_text('environment = "staging"\nleger = "typo.db"\n')
    for args in (("run", "runbook.yaml"), ("history",), ("config",)):
        result = tminus(*args, cwd=tmp_path)
        assert result.returncode == 78, (args, result.stderr)
        assert f"{tmp_path / 'tminus.toml'}:2: unknown key 'leger'" in result.stderr
    assert not (tmp_path / ".tminus").exists()
    # commands that need no setting do not read it
    assert tminus("validate", "runbook.yaml", cwd=tmp_path).returncode == 0


def test_the_default_environment_comes_from_tminus_toml(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    no_default = tminus("plan", "runbook.yaml", cwd=tmp_path)
    assert no_default.returncode == 2 and "choose an environment" in no_default.stderr
    (tmp_path / "tminus.toml").write_text('environment = "production"\n')
    code, plan = run_json("plan", "runbook.yaml", cwd=tmp_path)
    assert code == 0 and plan["environment"] == "production"
    code, plan = run_json("plan", "runbook.yaml", "-e", "staging", cwd=tmp_path)
    assert plan["environment"] == "staging"
    (tmp_path / "tminus.toml").write_text('environment = "qa"\n')
    unknown = tminus("plan", "runbook.yaml", cwd=tmp_path)
    assert unknown.returncode == 2 and "tminus.toml:1 environment" in unknown.stderr, unknown.stderr
