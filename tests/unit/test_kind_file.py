"""The `file` kind against real files in a temporary folder."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from helpers_kinds import run_step


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.yaml").write_text("debug: false\nport: 8080\n")
    (tmp_path / "conf" / "db.yaml").write_text("host: db\nport: 5432\ndebug: true\n")
    (tmp_path / "conf" / "deep" / "er").mkdir(parents=True)
    (tmp_path / "conf" / "deep" / "er" / "x.yaml").write_text("password: hunter2\n")
    (tmp_path / "conf" / "blob.yaml").write_bytes(b"debug: true\x00\x01")
    (tmp_path / "conf" / "dir.yaml").mkdir()  # a directory matching the glob
    return tmp_path


def file(spec: dict[str, Any], base: Path, **kw: Any) -> Any:
    return run_step({"file": spec}, base, **kw)


def test_exists_is_the_default(tree: Path) -> None:
    obs = file({"path": "conf/app.yaml"}, tree)
    assert obs.failures == [] and obs.error is None
    assert obs.values["exists"] is True and obs.values["count"] == 1
    assert obs.values["content"] == "debug: false\nport: 8080\n"
    obs = file({"path": "conf/missing.yaml"}, tree)
    assert obs.failures == ["no file matches conf/missing.yaml"]
    assert obs.values["exists"] is False


def test_recursive_glob_lists_relative_paths(tree: Path) -> None:
    obs = file({"path": "conf/**/*.yaml"}, tree)
    assert obs.values["files"] == [
        "conf/app.yaml",
        "conf/blob.yaml",
        "conf/db.yaml",
        "conf/deep/er/x.yaml",
        "conf/dir.yaml",
    ]
    assert "content" not in obs.values


def test_absolute_pattern_inside_base_is_shown_relative(tree: Path) -> None:
    obs = file({"path": str(tree / "conf" / "a*.yaml")}, tree)
    assert obs.values["files"] == ["conf/app.yaml"]


def test_exists_false_lists_matches(tree: Path) -> None:
    obs = file({"path": "conf/*.yaml", "exists": False}, tree)
    assert len(obs.failures) == 1
    assert "should not exist" in obs.failures[0] and "conf/app.yaml" in obs.failures[0]
    assert file({"path": "conf/*.bak", "exists": False}, tree).failures == []


def test_contains_every_matched_file_skipping_binaries_and_dirs(tree: Path) -> None:
    obs = file({"path": "conf/*.yaml", "contains": "debug:"}, tree)
    assert obs.failures == []  # blob.yaml is binary, dir.yaml a directory: both skipped
    assert obs.values["matches"] == ["conf/app.yaml:1: debug: false", "conf/db.yaml:3: debug: true"]
    obs = file({"path": "conf/*.yaml", "contains": "port: 8080"}, tree)
    assert obs.failures == ["conf/db.yaml does not contain 'port: 8080'"]


def test_contains_with_no_match_fails(tree: Path) -> None:
    obs = file({"path": "nothing/*.txt", "contains": "x"}, tree)
    assert obs.failures == ["no file matches nothing/*.txt, so none contains 'x'"]


def test_not_contains_reports_hits_with_lines(tree: Path) -> None:
    obs = file({"path": "conf/**/*.yaml", "not_contains": "debug: true"}, tree)
    assert obs.failures == ["found 'debug: true' in conf/db.yaml:3: debug: true"]
    assert file({"path": "conf/**/*.yaml", "not_contains": "nope"}, tree).failures == []


def test_regex(tree: Path) -> None:
    obs = file({"path": "conf/**/*.yaml", "not_contains": r"password:\s*\S+", "regex": True}, tree)
    assert obs.failures == ["found 'password:\\s*\\S+' in conf/deep/er/x.yaml:1: password: hunter2"]
    assert file({"path": "conf/app.yaml", "contains": r"^port: \d+$", "regex": True}, tree).failures == []
    # Without regex: true the same text is literal.
    assert file({"path": "conf/app.yaml", "contains": r"^port: \d+$"}, tree).failures != []


def test_hits_are_bounded_in_failures(tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_text("ERROR\n" * 100)
    obs = file({"path": "log.txt", "not_contains": "ERROR"}, tmp_path)
    assert obs.failures[0].count("log.txt:") == 20 and "(and 80 more)" in obs.failures[0]
    assert obs.values["matches"][-1] == "log.txt:100: ERROR"
    assert len(obs.evidence["matches"]) == 50


def test_invalid_regex_is_an_error(tree: Path) -> None:
    obs = file({"path": "conf/*.yaml", "contains": "(", "regex": True}, tree)
    assert obs.error is not None and "invalid regular expression" in obs.error


def test_cancel_stops_the_search(tree: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    obs = file({"path": "conf/**", "contains": "x"}, tree, cancel=cancel)
    assert obs.error is not None and "cancelled" in obs.error
