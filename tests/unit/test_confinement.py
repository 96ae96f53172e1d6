"""`file` paths, `run`'s cwd and a `sql` step's files stay inside the runbook's folder or its
declared `roots:` (issue 9, item 12): at run time, symlinks resolved, and at validation."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from helpers_kinds import run_step
from tminus.errors import RunbookError
from tminus.runbook.loader import load_runbook


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A runbook folder `book/` and, beside it, a folder it must not read: `secret/`."""
    book, secret = tmp_path / "book", tmp_path / "secret"
    book.mkdir()
    secret.mkdir()
    (secret / "passwd").write_text("root:x:0:0:hunter2\n")
    (book / "conf").mkdir()
    (book / "conf" / "app.yaml").write_text("port: 8080\n")
    return book, secret


def test_file_outside_the_runbook_folder_fails_and_reads_nothing(layout: tuple[Path, Path]) -> None:
    book, secret = layout
    for path in ("../secret/passwd", str(secret / "passwd"), "conf/../../secret/*", "../**/passwd"):
        for spec in ({"path": path}, {"path": path, "exists": False}, {"path": path, "contains": "root"}):
            obs = run_step({"file": spec}, book)
            assert obs.error is not None, (path, spec)
            assert "outside" in obs.error and "roots:" in obs.error
            assert "hunter2" not in repr(obs)  # nothing of the file reaches the ledger
            assert obs.values == {}


def test_a_symlink_inside_pointing_out_is_refused(layout: tuple[Path, Path]) -> None:
    book, secret = layout
    (book / "conf" / "link").symlink_to(secret / "passwd")
    (book / "escape").symlink_to(secret, target_is_directory=True)
    for path in ("conf/link", "conf/*", "escape/passwd", "**/passwd"):
        obs = run_step({"file": {"path": path, "contains": "root"}}, book)
        assert obs.error is not None and "outside" in obs.error, path
        assert "hunter2" not in repr(obs)


def test_declared_roots_allow_absolute_paths_inside_them(layout: tuple[Path, Path]) -> None:
    book, secret = layout
    obs = run_step({"file": {"path": str(secret / "passwd"), "contains": "root"}}, book, roots=(str(secret),))
    assert obs.error is None and obs.failures == []
    obs = run_step({"file": {"path": "../secret/passwd"}}, book, roots=("../secret",))  # relative to the folder
    assert obs.error is None and obs.values["exists"] is True
    # a root is no licence for its neighbours
    (secret.parent / "other").mkdir()
    obs = run_step({"file": {"path": str(secret.parent / "other")}}, book, roots=(str(secret),))
    assert obs.error is not None and "outside" in obs.error


def test_paths_inside_still_work(layout: tuple[Path, Path]) -> None:
    book, _ = layout
    obs = run_step({"file": {"path": "conf/*.yaml", "contains": "port"}}, book)
    assert obs.error is None and obs.failures == [] and obs.values["files"] == ["conf/app.yaml"]
    obs = run_step({"file": {"path": "./conf/../conf/app.yaml"}}, book)
    assert obs.error is None and obs.values["exists"] is True


def test_run_cwd_is_confined(layout: tuple[Path, Path]) -> None:
    book, secret = layout
    for cwd in ("..", "../secret", str(secret), "/"):
        obs = run_step({"run": {"command": "cat passwd; pwd", "cwd": cwd}}, book)
        assert obs.error is not None and "outside" in obs.error and "cwd" in obs.error, cwd
        assert "hunter2" not in repr(obs)
    (book / "out").symlink_to(secret, target_is_directory=True)
    obs = run_step({"run": {"command": "cat passwd", "cwd": "out"}}, book)
    assert obs.error is not None and "outside" in obs.error
    obs = run_step({"run": {"command": "cat passwd", "cwd": str(secret)}}, book, roots=(str(secret),))
    assert obs.error is None and "hunter2" in obs.values["stdout"]
    obs = run_step({"run": {"command": "pwd", "cwd": "conf"}}, book)
    assert obs.error is None and Path(obs.values["stdout"].strip()) == (book / "conf").resolve()


def test_sql_file_and_relative_sqlite_path_are_confined(layout: tuple[Path, Path]) -> None:
    book, secret = layout
    obs = run_step({"sql": {"url": "sqlite:///app.db", "file": "../secret/passwd", "write": True}}, book)
    assert obs.error is not None and "outside" in obs.error and "hunter2" not in repr(obs)
    obs = run_step({"sql": {"url": "sqlite:///../secret/app.db", "query": "CREATE TABLE t (n INT)",
                            "write": True}}, book)
    assert obs.error is not None and "outside" in obs.error
    assert not (secret / "app.db").exists()
    obs = run_step({"sql": {"url": "sqlite:///../secret/app.db", "query": "CREATE TABLE t (n INT)",
                            "write": True}}, book, roots=(str(secret),))
    assert obs.error is None, obs.error


# --- validation: a path without a template is checked before a run -------------------------------


def _load(book: Path, text: str) -> Any:
    path = book / "runbook.yaml"
    path.write_text(textwrap.dedent(text))
    return load_runbook(path)


def test_validation_refuses_a_literal_path_outside(layout: tuple[Path, Path]) -> None:
    book, secret = layout
    with pytest.raises(RunbookError) as info:
        _load(book, f"""\
            name: r
            gates:
              - name: g
                checks:
                  - file: {{path: ../../../../etc/passwd}}
                  - file: {{path: "{{{{ vars.where }}}}/x"}}
            vars: {{where: .}}
            phases:
              - name: p
                steps:
                  - run: {{command: ls, cwd: {secret}}}
                  - sql: {{url: "sqlite:///../secret/app.db", query: "SELECT 1"}}
                  - sql: {{url: "sqlite:///app.db", file: ../secret/passwd}}
            """)
    problems = info.value.problems
    got = sorted((p.location.line, p.path) for p in problems if p.location is not None)
    assert got == [(5, "gates[0].checks[0].file.path"), (11, "phases[0].steps[0].run.cwd"),
                   (12, "phases[0].steps[1].sql.url"), (13, "phases[0].steps[2].sql.file")], problems
    assert all("outside" in p.message and "roots:" in (p.hint or "") for p in problems)


def test_validation_accepts_declared_roots(layout: tuple[Path, Path]) -> None:
    book, secret = layout
    _load(book, f"""\
        name: r
        roots: [{secret}, ../secret]
        gates:
          - name: g
            checks:
              - file: {{path: {secret}/passwd}}
              - file: {{path: conf/*.yaml}}
              - run: {{command: ls, cwd: ../secret}}
        """)


def test_validation_refuses_several_statements_in_a_sql_check(layout: tuple[Path, Path]) -> None:
    book, _ = layout
    with pytest.raises(RunbookError) as info:
        _load(book, """\
            name: r
            gates:
              - name: g
                checks:
                  - sql: {url: "sqlite:///app.db", query: "SELECT 1; COMMIT; DELETE FROM t"}
                  - sql: {url: "sqlite:///app.db", query: "SELECT ';' AS semi;"}
            phases:
              - name: p
                steps:
                  - sql: {url: "sqlite:///app.db", query: "DELETE FROM t; DELETE FROM u", write: true}
            """)
    (problem,) = info.value.problems
    assert problem.path == "gates[0].checks[0].sql.query" and problem.location.line == 5
    assert "one statement" in problem.message and "3" in problem.message
    assert "write: true" in problem.message


def test_a_root_is_no_template(layout: tuple[Path, Path]) -> None:
    book, _ = layout
    with pytest.raises(RunbookError) as info:
        _load(book, """\
            name: r
            vars: {d: /tmp}
            roots: ["{{ vars.d }}"]
            gates: [{name: g, checks: [{file: {path: x}}]}]
            """)
    (problem,) = info.value.problems
    assert problem.path == "roots[0]" and "template" in problem.message
