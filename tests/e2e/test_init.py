"""`tminus init`: every template validates and plans as written, the web release's gates pass
against a real service, nothing is overwritten without --force, and no name breaks the YAML."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest
from tests.helpers import tminus
from tests.servers.backend import backends

from tminus.cli.init import TEMPLATES


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_validates_and_plans(tmp_path: Path, template: str) -> None:
    made = tminus("init", "-t", template, "-o", f"{template}.yaml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    text = (tmp_path / f"{template}.yaml").read_text()
    assert text.count("\n#") >= 5, "a starter explains its sections in comments"
    valid = tminus("validate", "--json", f"{template}.yaml", cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr
    summary = json.loads(valid.stdout)
    assert summary["valid"] and summary["runbook"] == template and summary["warnings"] == []
    assert summary["gates"] >= 1 and summary["phases"] >= 2
    plan = tminus("plan", "--json", f"{template}.yaml", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["runbook"] == template
    human = tminus("plan", f"{template}.yaml", cwd=tmp_path)
    assert human.returncode == 0 and "Rollback" in human.stdout


def test_the_web_release_gates_pass_against_a_real_service_and_block_when_it_is_down(tmp_path: Path) -> None:
    assert tminus("init", "-t", "web-release", cwd=tmp_path).returncode == 0
    true = shutil.which("true")
    assert true is not None
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    with backends("live") as b:
        url = f"http://{b['live'].address}"
        passed = tminus("gate", "runbook.yaml", "--var", f"url={url}", "--var", f"deploy={true}",
                        "--ledger", ledger, "--json", cwd=tmp_path)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert json.loads(passed.stdout)["status"] == "completed"
        b["live"].healthy = False
        blocked = tminus("gate", "runbook.yaml", "--var", f"url={url}", "--var", f"deploy={true}",
                         "--ledger", ledger, cwd=tmp_path)
        assert blocked.returncode == 10, blocked.stderr
        assert "/healthz answers 200, quickly" in blocked.stderr
    # the deploy command is a gate too: a missing one blocks before anything changes
    missing = tminus("gate", "runbook.yaml", "--var", "url=http://127.0.0.1:9", "--ledger", ledger, cwd=tmp_path)
    assert missing.returncode == 10


def test_an_existing_file_is_never_overwritten_without_force(tmp_path: Path) -> None:
    target = tmp_path / "runbook.yaml"
    target.write_text("mine\n")
    refused = tminus("init", "-t", "db-migration", cwd=tmp_path)
    assert refused.returncode == 2
    assert "runbook.yaml exists; not overwritten" in refused.stderr and "--force" in refused.stderr
    assert target.read_text() == "mine\n"
    forced = tminus("init", "-t", "db-migration", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "migrate:" in target.read_text()


def test_stdout_list_and_the_default_without_a_terminal(tmp_path: Path) -> None:
    listed = tminus("init", "--list", cwd=tmp_path)
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(TEMPLATES)
    printed = tminus("init", "-o", "-", cwd=tmp_path)  # stdin is not a terminal: no question asked
    assert printed.returncode == 0
    assert "using web-release" in printed.stderr
    assert 'name: "web-release"' in printed.stdout
    assert list(tmp_path.iterdir()) == []
    bad = tminus("init", "-t", "nope", cwd=tmp_path)
    assert bad.returncode == 2 and "web-release" in bad.stderr


def test_the_name_defaults_to_the_file_name(tmp_path: Path) -> None:
    assert tminus("init", "-o", "ops/orders-api.yaml", cwd=tmp_path).returncode == 0
    valid = tminus("validate", "--json", "ops/orders-api.yaml", cwd=tmp_path)
    assert json.loads(valid.stdout)["runbook"] == "orders-api"
    # the commands its comments suggest name the file as written, quoted for a shell
    text = (tmp_path / "ops" / "orders-api.yaml").read_text()
    assert "tminus plan ops/orders-api.yaml" in text and "runbook.yaml" not in text
    assert tminus("init", "-o", "my runbook.yaml", cwd=tmp_path).returncode == 0
    text = (tmp_path / "my runbook.yaml").read_text()
    assert "tminus validate 'my runbook.yaml'" in text
    assert tminus("validate", "my runbook.yaml", cwd=tmp_path).returncode == 0


HOSTILE = [
    'say "hello"',
    "it's {{ vars.deploy }} {% raw %}",
    "a: b # not a comment",
    "back\\slash and \\n written out",
    "- [list] {map: 1} &anchor *alias !tag",
    "ünïcødé ✓ release",
    "'",
    "%YAML 1.1",
]


def _in_process(*args: str) -> tuple[int, str]:
    from click.testing import CliRunner

    from tminus.cli.app import cli

    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_is_kept_exactly_and_the_runbook_still_validates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # in-process (the same code as the command): eight names, three commands each
    monkeypatch.chdir(tmp_path)
    code, _out = _in_process("init", "-t", "blue-green", "--name", name)
    assert code == 0
    code, out = _in_process("validate", "--json", "runbook.yaml")
    assert code == 0, out
    assert json.loads(out)["runbook"] == name
    code, out = _in_process("plan", "--json", "runbook.yaml")
    assert code == 0 and json.loads(out)["runbook"] == name


def test_a_hostile_name_through_the_real_command(tmp_path: Path) -> None:
    name = HOSTILE[1]
    assert tminus("init", "-t", "db-migration", "--name", name, cwd=tmp_path).returncode == 0
    valid = tminus("validate", "--json", "runbook.yaml", cwd=tmp_path)
    assert valid.returncode == 0 and json.loads(valid.stdout)["runbook"] == name


@pytest.mark.parametrize(("name", "why"), [
    ("two\nlines", "control character '\\n'"),
    ("carriage\rreturn", "control character '\\r'"),
    ("tab\there", "control character '\\t'"),
    ("nul\x00", "control character"),
    ("   ", "is empty"),
    ("x" * 201, "at most 200"),
])
def test_a_name_that_cannot_be_one_is_a_usage_error_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, why: str) -> None:
    from click.testing import CliRunner

    from tminus.cli.app import cli

    monkeypatch.chdir(tmp_path)  # in-process: a NUL cannot be an argument of a real process
    refused = CliRunner().invoke(cli, ["init", "-t", "web-release", "--name", name])
    assert refused.exit_code == 2, refused.output
    assert "--name" in refused.stderr and why in refused.stderr
    assert not (tmp_path / "runbook.yaml").exists()


def test_a_multiline_name_refused_by_the_real_command(tmp_path: Path) -> None:
    refused = tminus("init", "--name", "two\nlines", cwd=tmp_path)
    assert refused.returncode == 2 and "control character" in refused.stderr
    assert list(tmp_path.iterdir()) == []


def test_on_a_terminal_the_template_is_asked(tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys
    import time

    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tminus", "init"], cwd=tmp_path, stdin=child, stdout=child,
                            stderr=child, env={**os.environ, "TMINUS_OPERATOR": "tester"})
    os.close(child)
    seen = b""
    deadline = time.monotonic() + 30
    while b"Template" not in seen and time.monotonic() < deadline:
        seen += os.read(main, 4096)
    os.write(main, b"nope\n")  # not a choice: asked again
    os.write(main, b"db-migration\n")
    assert proc.wait(timeout=30) == 0
    with contextlib.suppress(OSError):
        while chunk := os.read(main, 4096):
            seen += chunk
    os.close(main)
    assert b"blue-green" in seen  # the choices were shown with what each is
    assert "migrate:" in (tmp_path / "runbook.yaml").read_text()
