"""`vars_file:` through the real `tminus` command: the documented precedence (the docs' own example),
positioned errors in the vars file, names the runbook does not declare, confinement and hostile files."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import run_json, tminus, write_runbook

ROOT = Path(__file__).resolve().parents[2]


def _docs_example(tmp_path: Path) -> Path:
    """The runbook of docs/runbook.md's "Variables from a file", with the two files shown beside it."""
    text = (ROOT / "docs" / "runbook.md").read_text()
    section = text[text.index("### Variables from a file"):text.index("### Gates")]
    runbook = re.search(r"```yaml\n(.*?)```", section, re.S)
    files = re.search(r"```text\n(.*?)```", section, re.S)
    assert runbook is not None and files is not None
    common, prod = [], []
    for line in files.group(1).splitlines()[1:]:  # two columns: vars/common.yaml | vars/prod.yaml
        left, right = line[:30].strip(), line[30:].strip()
        common += [left] if left else []
        prod += [right] if right else []
    (tmp_path / "vars").mkdir()
    (tmp_path / "vars" / "common.yaml").write_text("\n".join(common) + "\n")
    (tmp_path / "vars" / "prod.yaml").write_text("\n".join(prod) + "\n")
    path = tmp_path / "runbook.yaml"
    path.write_text(runbook.group(1))
    return path


def _vars(tmp_path: Path, *args: str) -> dict[str, Any]:
    code, plan = run_json("plan", "runbook.yaml", *args, cwd=tmp_path)
    assert code == 0, plan
    return dict(plan["vars"])


def test_the_documented_precedence(tmp_path: Path) -> None:
    _docs_example(tmp_path)
    assert _vars(tmp_path, "-e", "prod") == {"region": "eu-west-1", "queue": "jobs", "release": "2.4.1",
                                             "replicas": 6, "dry_run": False}
    assert _vars(tmp_path, "-e", "staging") == {"region": "eu-west-1", "queue": "jobs", "release": "2.4.0",
                                                "replicas": 1, "dry_run": False}
    assert _vars(tmp_path, "-e", "prod", "--var", "replicas=8")["replicas"] == 8
    (tmp_path / "override.yaml").write_text("replicas: 7\nrelease: 2.5.0\n")
    over = _vars(tmp_path, "-e", "prod", "--var-file", "override.yaml", "--var", "replicas=8")
    assert over["replicas"] == 8 and over["release"] == "2.5.0"  # --var > --var-file > the files
    # a name the top-level file declares can be set by --var, like one under vars:
    assert _vars(tmp_path, "-e", "prod", "--var", "region=us-east-1")["region"] == "us-east-1"
    proc = tminus("run", "runbook.yaml", "-e", "prod", "--yes", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_values_are_read_as_the_declared_type(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: typed
        vars: {release: "1.0", replicas: 2, ratio: 0.5, debug: false, hosts: [a]}
        environments:
          prod: {vars_file: prod.json}
        verify: [{run: "true"}]
    """)
    (tmp_path / "prod.json").write_text('{"release": 1.10, "replicas": "4", "ratio": 1, "debug": "yes",\n'
                                        ' "hosts": ["web-1", "web-2"]}\n')
    assert _vars(tmp_path, "-e", "prod") == {"release": "1.10", "replicas": 4, "ratio": 1.0, "debug": True,
                                             "hosts": ["web-1", "web-2"]}


def _refused(tmp_path: Path, runbook: str, files: dict[str, str], *args: str) -> str:
    write_runbook(tmp_path, runbook)
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    proc = tminus("validate", "runbook.yaml", *args, cwd=tmp_path)
    assert proc.returncode == 78, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


PROD = """
    name: positions
    vars: {release: "1.0", replicas: 2, debug: false}
    environments:
      prod:
        vars_file: vars/prod.yaml
    verify: [{run: "true"}]
"""


def test_undeclared_names_and_wrong_types_are_positioned_in_the_vars_file(tmp_path: Path) -> None:
    out = _refused(tmp_path, PROD, {"vars/prod.yaml": """
        release: 2.0
        replcas: 4
        debug: maybe
    """})
    assert "vars/prod.yaml:2:1: the runbook declares no variable 'replcas' (environment 'prod')" in out
    assert "did you mean 'replicas'?" in out
    assert "vars/prod.yaml:3:1: variable 'debug' expects true or false (the default is false), got 'maybe'" in out


def test_bad_yaml_is_positioned_in_the_vars_file(tmp_path: Path) -> None:
    out = _refused(tmp_path, PROD, {"vars/prod.yaml": "release: 2.0\nreplicas: [3, 4\ndebug: no\n"})
    assert re.search(r"vars/prod\.yaml:\d+:\d+: YAML syntax error", out), out
    out = _refused(tmp_path, PROD, {"vars/prod.yaml": "release: 2.0\nrelease: 3.0\n"})
    assert "vars/prod.yaml:2:1: YAML syntax error" in out or "duplicate" in out, out


def test_a_vars_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    out = _refused(tmp_path, PROD, {"vars/prod.yaml": "- release\n- 2.0\n"})
    assert "vars/prod.yaml:1:1: expected a mapping of variable names to values" in out


def test_a_missing_file_is_positioned_at_vars_file(tmp_path: Path) -> None:
    out = _refused(tmp_path, PROD, {})
    assert "runbook.yaml:5:5: cannot read the vars file" in out and "No such file" in out


@pytest.mark.parametrize("path", ["../outside.yaml", "/etc/hostname", "link/secrets.yaml"])
def test_the_path_is_confined_to_the_runbook_folder_and_its_roots(tmp_path: Path, path: str) -> None:
    folder = tmp_path / "rb"
    folder.mkdir()
    (tmp_path / "outside.yaml").write_text("release: 9\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secrets.yaml").write_text("release: 9\n")
    (folder / "link").symlink_to(tmp_path / "elsewhere")
    out = _refused(folder, PROD.replace("vars/prod.yaml", path), {})
    assert "the vars file" in out and "is outside the folders this runbook may use" in out
    assert "roots:" in out  # the hint says how to allow it


def test_a_declared_root_allows_it(tmp_path: Path) -> None:
    folder = tmp_path / "rb"
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "prod.yaml").write_text("release: 3.1\n")
    folder.mkdir()
    write_runbook(folder, PROD.replace("vars/prod.yaml", "../shared/prod.yaml")
                  .replace("    verify:", "    roots: [../shared]\n    verify:"))
    assert _vars(folder, "-e", "prod")["release"] == "3.1"


def test_a_templated_path_is_refused(tmp_path: Path) -> None:
    out = _refused(tmp_path, PROD.replace("vars/prod.yaml", '"vars/{{ vars.release }}.yaml"'), {})
    assert "a vars file is a path written out, not a template" in out


@pytest.mark.parametrize(("text", "message"), [
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefg", "bcdefgh", strict=True)), "alias"),
    ("release: !!python/object/apply:os.system ['touch pwned']\n", "tag"),
    ("release: " + "[" * 300 + "]" * 300 + "\n", "open at once"),
    ("release: 1\n\x07bell: 2\n", "u+0007"),
])
def test_hostile_vars_files_are_refused_with_positions(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "vars").mkdir()
    (tmp_path / "vars" / "prod.yaml").write_text(text)
    write_runbook(tmp_path, PROD)
    proc = tminus("validate", "runbook.yaml", cwd=tmp_path, timeout=20)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 78, out
    assert re.search(r"vars/prod\.yaml:\d+:\d+: ", out) and message in out.lower(), out
    assert not (tmp_path / "pwned").exists()


def test_a_huge_vars_file_is_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "vars").mkdir()
    with (tmp_path / "vars" / "prod.yaml").open("w") as f:
        f.write("release: '" + "x" * 2_000_000 + "'\n")
    out = _refused(tmp_path, PROD, {})
    assert "vars/prod.yaml is over 524,288 bytes" in out


def test_resume_refuses_a_run_whose_vars_file_changed(tmp_path: Path) -> None:
    import os
    import signal

    from tests.helpers import spawn, wait_for

    write_runbook(tmp_path, """
        name: resumable
        vars: {release: "1.0"}
        environments:
          prod: {vars_file: prod.yaml}
        phases:
          - name: deploy
            steps:
              - idempotent: true
                run: >-
                  echo $$ > pgid; touch started; while [ ! -f go ]; do sleep 0.1; done;
                  echo {{ vars.release }} > deployed
            undo: [{run: "true"}]
    """)
    (tmp_path / "prod.yaml").write_text("release: 2.0\n")
    proc = spawn("run", "runbook.yaml", "-e", "prod", cwd=tmp_path)
    wait_for(lambda: (tmp_path / "started").exists())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    os.killpg(int((tmp_path / "pgid").read_text()), signal.SIGKILL)
    _code, runs = run_json("history", cwd=tmp_path)
    run_id = runs[0]["id"]
    (tmp_path / "go").touch()

    (tmp_path / "prod.yaml").write_text("release: 3.0\n")  # the values the run would now render with differ
    refused = tminus("resume", run_id, cwd=tmp_path)
    assert refused.returncode == 15 and "(or a vars file it reads) changed" in refused.stderr, refused.stderr
    assert not (tmp_path / "deployed").exists()

    (tmp_path / "prod.yaml").write_text("release: 2.0\n")  # as it was: the same run
    resumed = tminus("resume", run_id, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (tmp_path / "deployed").read_text() == "2.0\n"
