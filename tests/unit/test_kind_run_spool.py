"""The `run` kind's spool (output and exit status in files that outlive tminus) and what resume reads
of it: survivors found by start-time identity, executions adopted from what they left. Real processes."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from helpers_kinds import execute, make_ctx, pid_alive
from tminus.kinds import registry
from tminus.kinds.base import Execution
from tminus.kinds.spool import _scratch_dir, remove_execution, spool_name
from tminus.kinds.transport import LocalTransport, process_start_time


def _recording_ctx(step: dict[str, Any], tmp_path: Path, **kw: Any) -> tuple[Any, list[dict[str, Any]]]:
    ctx = make_ctx(step, tmp_path, **kw)
    effects: list[dict[str, Any]] = []
    ctx.effect_sink = lambda kind, details: effects.append({"effect": kind, **details})
    ctx.spool = tmp_path / "spool" / spool_name(ctx.step.key, 1, 1)
    return ctx, effects


def test_output_and_status_go_to_private_spool_files(tmp_path: Path) -> None:
    ctx, effects = _recording_ctx({"run": "echo out; echo err >&2; exit 3"}, tmp_path)
    obs = execute(ctx)
    assert (obs.values["exit_code"], obs.values["stdout"], obs.values["stderr"]) == (3, "out\n", "err\n")
    (effect,) = effects
    assert effect["effect"] == "process" and effect["pgid"] == obs.evidence["pid"]
    assert Path(effect["stdout"]).read_text() == "out\n" and Path(effect["status"]).read_text() == "3\n"
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700
    for name in ("stdout", "stderr"):
        assert stat.S_IMODE(Path(effect[name]).stat().st_mode) == 0o600
    remove_execution(tmp_path / "spool", ctx.step.key, 1)
    assert list((tmp_path / "spool").iterdir()) == []  # the folder goes when the run's process ends


def test_a_killed_command_leaves_no_status(tmp_path: Path) -> None:
    ctx, effects = _recording_ctx({"run": "echo started; sleep 30"}, tmp_path, timeout=0.5)
    obs = execute(ctx)
    assert obs.timed_out and "started" in obs.evidence["stdout"]
    assert not Path(effects[0]["status"]).exists()


def test_no_spool_given_uses_a_temporary_folder_it_removes(tmp_path: Path) -> None:
    # One private folder per process (made by the first such step, removed when the process exits):
    # the step's own files are gone as soon as it has been read.
    obs = execute(make_ctx({"run": "echo hi"}, tmp_path))
    assert obs.values["stdout"] == "hi\n"
    scratch = _scratch_dir()
    assert stat.S_IMODE(scratch.stat().st_mode) == 0o700 and list(scratch.iterdir()) == []


def test_a_background_child_writing_after_the_shell_exits_does_not_die_of_sigpipe(tmp_path: Path) -> None:
    ctx, effects = _recording_ctx(
        {"run": "(sleep 1.5; echo late; echo ok > bg-done) & echo $! > bg; echo now"}, tmp_path)
    obs = execute(ctx)
    assert obs.values["exit_code"] == 0 and "now" in obs.values["stdout"]
    # with a pipe its reader gone, `echo late` would have killed it; a file takes the write
    deadline = time.monotonic() + 10
    while not (tmp_path / "bg-done").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "bg-done").read_text() == "ok\n"
    assert "late" in Path(effects[0]["stdout"]).read_text()


def _session(command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["/bin/sh", "-c", command], start_new_session=True)


def test_start_time_identity_tells_a_survivor_from_a_reused_pid() -> None:
    proc = _session("sleep 30")
    transport = LocalTransport()
    try:
        real = process_start_time(proc.pid)
        assert real is not None
        assert transport.group_running(proc.pid, real)
        # the pid recorded, another start time: another process holds it now; it is neither ours nor killed
        assert not transport.group_running(proc.pid, real + "0")
        assert transport.stop_group(proc.pid, real + "0", grace=0.5) is None
        assert pid_alive(proc.pid)
        run = registry.get("run")
        assert run.survivor is not None
        effect = {"effect": "process", "pgid": proc.pid, "pid": proc.pid, "command": "sleep 30", "at": time.time()}
        assert run.survivor(Execution("k", effects=[{**effect, "started": real + "0"}]), transport) is None
        found = run.survivor(Execution("k", effects=[{**effect, "started": real}]), transport)
        assert found is not None and found.pgid == proc.pid and "sleep 30" in found.describe()
        assert transport.stop_group(proc.pid, real, grace=0.5) is not None
        proc.wait(timeout=10)
        assert run.survivor(Execution("k", effects=[{**effect, "started": real}]), transport) is None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_wait_group_ends_at_its_deadline_or_when_the_group_ends() -> None:
    transport = LocalTransport()
    proc = _session("sleep 0.5")
    try:
        identity = process_start_time(proc.pid)
        start = time.monotonic()
        assert not transport.wait_group(proc.pid, identity, time.time() + 0.1, lambda: False)
        assert time.monotonic() - start < 2
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:  # our child: reaped, not a zombie
            time.sleep(0.05)
        assert transport.wait_group(proc.pid, identity, time.time() + 10, lambda: False)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_adopt_judges_from_the_spool_and_refuses_without_a_status(tmp_path: Path) -> None:
    ctx, effects = _recording_ctx({"run": "echo adopted-output; exit 0"}, tmp_path)
    execute(ctx)
    run = registry.get("run")
    assert run.adopt is not None
    obs = run.adopt(Execution(ctx.step.key, effects=effects), ctx)
    assert obs is not None and obs.values["exit_code"] == 0 and obs.values["stdout"] == "adopted-output\n"
    assert "adopted" in obs.evidence["note"]
    Path(effects[0]["status"]).unlink()  # as if the group had been killed
    assert run.adopt(Execution(ctx.step.key, effects=effects), ctx) is None


def test_the_command_starts_only_once_its_group_is_recorded(tmp_path: Path) -> None:
    # The record of the group is tminus's last write before the command acts: while it is being
    # written the command has not started; if writing it fails, the command never starts.
    seen: list[bool] = []

    def slow_sink(kind: str, details: dict[str, Any]) -> None:
        time.sleep(0.3)  # a slow ledger: the spawned group must still be waiting
        seen.append((tmp_path / "acted").exists())

    ctx, _effects = _recording_ctx({"run": "touch acted"}, tmp_path)
    ctx.effect_sink = slow_sink
    obs = execute(ctx)
    assert obs.values["exit_code"] == 0 and seen == [False] and (tmp_path / "acted").exists()

    def failing_sink(kind: str, details: dict[str, Any]) -> None:
        seen.append(bool(details["pgid"]))
        raise RuntimeError("the ledger is gone")

    (tmp_path / "acted").unlink()
    ctx, _effects = _recording_ctx({"run": "touch acted"}, tmp_path)
    ctx.effect_sink = failing_sink
    with pytest.raises(RuntimeError):
        execute(ctx)
    time.sleep(0.3)
    assert not (tmp_path / "acted").exists()


KILLED_WHILE_RECORDING = """
import os, signal, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from helpers_kinds import execute, make_ctx
from tminus.kinds.spool import spool_name

base = Path(sys.argv[1])
ctx = make_ctx({"run": "touch acted"}, base)
ctx.spool = base / "spool" / spool_name(ctx.step.key, 1, 1)
def die(kind, details):
    (base / "pgid").write_text(str(details["pgid"]))
    time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGKILL)  # tminus killed before the record reached the ledger
ctx.effect_sink = die
execute(ctx)
"""


def test_a_tminus_killed_before_recording_the_group_leaves_no_command_running(tmp_path: Path) -> None:
    # The window that once ran a step twice: spawned, then killed before its pid was recorded; resume
    # found no record, and an idempotent step ran again beside the first copy.
    import sys

    done = subprocess.run([sys.executable, "-c", KILLED_WHILE_RECORDING, str(tmp_path),
                           str(Path(__file__).resolve().parents[1])], timeout=60)
    assert done.returncode == -signal.SIGKILL
    pgid = int((tmp_path / "pgid").read_text())
    deadline = time.monotonic() + 10
    while pid_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pgid)  # the wrapper saw the pipe close unwritten and left
    assert not (tmp_path / "acted").exists() and not list((tmp_path / "spool").glob("*.status"))


def test_the_command_sees_no_wrapper_arguments_and_exec_and_exit_work(tmp_path: Path) -> None:
    obs = execute(make_ctx({"run": 'echo "[$#][$*]"; exit 4'}, tmp_path))
    assert (obs.values["stdout"], obs.values["exit_code"]) == ("[0][]\n", 4)
    ctx, effects = _recording_ctx({"run": "exec sh -c 'echo via-exec; exit 5'"}, tmp_path)
    obs = execute(ctx)
    assert (obs.values["stdout"], obs.values["exit_code"]) == ("via-exec\n", 5)
    assert Path(effects[0]["status"]).read_text() == "5\n"  # exec replaced only the subshell
    obs = execute(make_ctx({"run": {"command": 'echo "$0 [$#]"', "shell": "bash"}}, tmp_path))
    assert obs.values["stdout"] == "bash [0]\n" and obs.values["exit_code"] == 0


def test_a_command_that_never_started_leaves_no_spool_files(tmp_path: Path) -> None:
    # The engine removes the files a `process` effect names; a spawn that failed recorded none, so
    # the kind removes its own.
    ctx, effects = _recording_ctx({"run": {"command": "true", "cwd": "missing"}}, tmp_path)
    obs = execute(ctx)
    assert obs.error is not None and "working directory" in obs.error and effects == []
    assert list((tmp_path / "spool").iterdir()) == []


def test_each_spawn_gets_the_environment_it_is_given(tmp_path: Path) -> None:
    # The transport keeps the last environment's bytes: a changed one must not get the old bytes.
    transport = LocalTransport()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMINUS_PROBE": "one"}
    for value in ("one", "one", "two"):
        env["TMINUS_PROBE"] = value  # the same dict, changed in place
        ctx = make_ctx({"run": 'printf %s "$TMINUS_PROBE"'}, tmp_path, environ=env)
        ctx.transport = transport
        assert execute(ctx).values["stdout"] == value
