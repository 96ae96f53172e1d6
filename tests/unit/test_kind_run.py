"""The `run` kind against real subprocesses."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from helpers_kinds import pid_alive, run_step
from tminus.kinds import registry


def test_registered_with_default_expectation() -> None:
    kind = registry.get("run")
    assert kind.default_expect == ("exit_code == 0",)
    assert "stdout" in kind.queries


def test_exit_code_stdout_and_stderr(tmp_path: Path) -> None:
    obs = run_step({"run": "echo out; echo err >&2; exit 3"}, tmp_path)
    assert obs.error is None
    assert obs.values["exit_code"] == 3
    assert obs.values["stdout"] == "out\n"
    assert obs.values["stderr"] == "err\n"
    assert obs.outputs == {"stdout": "out", "stderr": "err", "exit_code": 3}
    assert obs.evidence["exit_code"] == 3
    assert obs.evidence["command"].startswith("echo out")
    assert isinstance(obs.evidence["pid"], int)
    assert obs.values["duration"] >= 0
    assert "json" not in obs.values


def test_env_merges_context_and_step_and_cwd_is_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    environ = {"PATH": os.environ["PATH"], "FROM_CTX": "ctx", "OVERRIDDEN": "old"}
    obs = run_step(
        {
            "run": {
                "command": 'echo "$FROM_CTX $OVERRIDDEN $STEP_ONLY ${HOME:-nohome}"; pwd',
                "cwd": "sub",
                "env": {"OVERRIDDEN": "new", "STEP_ONLY": "step"},
            }
        },
        tmp_path,
        environ=environ,
    )
    lines = obs.values["stdout"].splitlines()
    # HOME is in the test process's environment but not in ctx.environ: it must not leak in.
    assert lines[0] == "ctx new step nohome"
    assert Path(lines[1]).resolve() == (tmp_path / "sub").resolve()


def test_stdin_is_fed_and_defaults_to_empty(tmp_path: Path) -> None:
    assert run_step({"run": {"command": "cat", "stdin": "hello\nworld"}}, tmp_path).values["stdout"] == ("hello\nworld")
    # Without stdin the command reads EOF at once instead of hanging on the terminal.
    assert run_step({"run": "cat"}, tmp_path, timeout=10).values["stdout"] == ""


def test_json_stdout_is_parsed(tmp_path: Path) -> None:
    obs = run_step({"run": """printf '{"version": "1.2", "ok": true}\\n'"""}, tmp_path)
    assert obs.values["json"] == {"version": "1.2", "ok": True}
    assert "json" not in run_step({"run": "echo '{not json'"}, tmp_path).values


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    start = time.monotonic()
    obs = run_step({"run": f"echo started; sleep 60 & echo $! > {pidfile}; sleep 60"}, tmp_path, timeout=0.5)
    assert time.monotonic() - start < 10
    assert obs.timed_out is True
    assert obs.error == "timed out after 0.5s"
    assert "started" in obs.evidence["stdout"]  # output so far is kept as evidence
    shell_pid, child_pid = obs.evidence["pid"], int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while (pid_alive(shell_pid) or pid_alive(child_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(shell_pid)
    assert not pid_alive(child_pid)


def test_term_ignoring_child_is_killed_after_grace(tmp_path: Path) -> None:
    pidfile = tmp_path / "stubborn.pid"
    obs = run_step(
        {"run": f"sh -c 'trap \"\" TERM; echo $$ > {pidfile}; while :; do sleep 0.1; done'"},
        tmp_path,
        timeout=0.5,
    )
    assert obs.timed_out
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)


def test_cancel_stops_the_command(tmp_path: Path) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    start = time.monotonic()
    obs = run_step({"run": "sleep 60"}, tmp_path, cancel=cancel)
    timer.cancel()
    assert time.monotonic() - start < 10
    assert obs.error is not None and "cancelled" in obs.error
    assert obs.timed_out is False
    assert not pid_alive(obs.evidence["pid"])


def test_background_child_holding_the_pipes_does_not_hang(tmp_path: Path) -> None:
    start = time.monotonic()
    obs = run_step({"run": "sleep 30 & echo $!; echo done"}, tmp_path)
    try:
        assert time.monotonic() - start < 10
        assert obs.error is None
        assert obs.values["exit_code"] == 0
        assert obs.values["stdout"].splitlines()[-1] == "done"
        assert "note" in obs.evidence
    finally:
        os.kill(int(obs.values["stdout"].split()[0]), signal.SIGKILL)


def test_command_not_found_is_an_error(tmp_path: Path) -> None:
    obs = run_step({"run": "definitely-not-a-command-xyz"}, tmp_path)
    assert obs.error is not None and "command not found" in obs.error
    assert obs.values["exit_code"] == 127


def test_missing_shell_and_bad_cwd_are_errors(tmp_path: Path) -> None:
    obs = run_step({"run": {"command": "true", "shell": "/no/such/shell"}}, tmp_path)
    assert obs.error is not None and "/no/such/shell" in obs.error and "not found" in obs.error
    obs = run_step({"run": {"command": "true", "cwd": "missing"}}, tmp_path)
    assert obs.error is not None and "working directory" in obs.error and "missing" in obs.error


def test_long_output_is_truncated_in_evidence_only(tmp_path: Path) -> None:
    obs = run_step({"run": "seq 1 20000"}, tmp_path)
    assert obs.values["stdout"].endswith("20000\n")
    assert len(obs.values["stdout"]) > 100_000
    assert len(obs.evidence["stdout"]) < 5000
    assert "truncated" in obs.evidence["stdout"]


def test_large_stdin_and_output_do_not_deadlock(tmp_path: Path) -> None:
    data = "x" * 1_000_000
    obs = run_step({"run": {"command": "cat; wc -c >&2", "stdin": data}}, tmp_path, timeout=20)
    assert obs.error is None
    assert len(obs.values["stdout"]) == 1_000_000


def test_works_without_pidfd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # macOS and old kernels have no pidfd_open: the fallback polls the process instead.
    monkeypatch.delattr(os, "pidfd_open", raising=False)
    obs = run_step({"run": {"command": "cat; exit 4", "stdin": "in"}}, tmp_path, timeout=10)
    assert (obs.values["exit_code"], obs.values["stdout"]) == (4, "in")
    obs = run_step({"run": "sleep 0.2; echo late"}, tmp_path, timeout=10)
    assert obs.values["stdout"] == "late\n"
    obs = run_step({"run": "sleep 60"}, tmp_path, timeout=0.3)
    assert obs.timed_out
