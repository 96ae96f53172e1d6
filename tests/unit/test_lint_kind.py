"""The `migration_lint` kind through the registry, as the engine runs it."""

from __future__ import annotations

import shutil
from pathlib import Path

from helpers_kinds import run_step
from tminus.kinds import registry
from tminus.runbook.models import Step

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lint"


def test_registered_as_a_check() -> None:
    kind = registry.get("migration_lint")
    assert kind.queries == ("count", "findings")
    assert Step.model_validate({"migration_lint": {"dir": "migrations"}}).is_check


def test_findings_become_failures(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES, tmp_path / "migrations")
    obs = run_step({"migration_lint": {"dir": "migrations"}}, tmp_path)
    assert obs.error is None
    assert obs.values["count"] == len(obs.values["findings"]) == len(obs.failures) == 17
    first = obs.values["findings"][0]
    assert set(first) == {"file", "line", "rule", "risk", "message", "safer"}
    assert obs.failures[0] == (
        f"0002_risky.sql:3: [high] add-column-not-null-no-default: {first['message']} safer: {first['safer']}"
    )
    assert any(f.startswith("0009_opt_outs.sql:14: [high] drop-table: ") for f in obs.failures)
    assert obs.outputs["count"] == 17
    assert obs.evidence["dir"] == "migrations" and obs.evidence["files"] == 9


def test_ignore_from_config(tmp_path: Path) -> None:
    obs = run_step(
        {"migration_lint": {"dir": "lint", "ignore": ["drop-table", "missing-lock-timeout"]}}, FIXTURES.parent
    )
    rules = {f["rule"] for f in obs.values["findings"]}
    assert "drop-table" not in rules and "missing-lock-timeout" not in rules and "drop-column" in rules
    assert obs.values["count"] == 13


def test_clean_directory_passes(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "0001_init.sql").write_text("CREATE TABLE t (id int);\nCREATE INDEX ON t (id);\n")
    (tmp_path / "m" / "0001_init.down.sql").write_text("DROP TABLE t;\n")
    obs = run_step({"migration_lint": {"dir": "m"}}, tmp_path)
    assert obs.error is None and obs.failures == []
    assert obs.values == {"count": 0, "findings": []}


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    obs = run_step({"migration_lint": {"dir": "nope"}}, tmp_path)
    assert obs.error is not None and "nope" in obs.error and "does not exist" in obs.error
    (tmp_path / "afile").write_text("")
    assert run_step({"migration_lint": {"dir": "afile"}}, tmp_path).error is not None


def test_unknown_ignored_rule_is_an_error(tmp_path: Path) -> None:
    obs = run_step({"migration_lint": {"dir": "lint", "ignore": ["no-such-rule"]}}, FIXTURES.parent)
    assert obs.error is not None and "no-such-rule" in obs.error
