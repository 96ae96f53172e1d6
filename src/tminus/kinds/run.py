"""`run`: a shell command in its own process group, killed as a group on timeout or cancel."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tminus.kinds.base import Effect, Execution, Observation, StepContext
from tminus.kinds.jsonoutput import NotJson, parse_output
from tminus.kinds.registry import register
from tminus.kinds.spool import Spool, holders, read_fd, spool_for, wrapped
from tminus.kinds.survivor import adopted, survivor
from tminus.kinds.transport import Transport, group_alive, group_members
from tminus.runbook.models import RunSpec
from tminus.runbook.roots import OutsideRoots, confine

# The wait is sliced so cancel and a wrapper that exits while a background child still writes
# the output are noticed without a watcher thread per command.
_SLICE = 0.1
# After the wrapper exits, how long to wait for background children still writing the output.
_ORPHAN_GRACE = 1.0
# SIGTERM -> SIGKILL grace for the process group.
_KILL_GRACE = 1.0
_PIPE_BUF = 4096  # a pipe reported writable takes this much without blocking


def describe(c: RunSpec, step: object, nested: object) -> str:
    return f"$ {c.command.strip()}"


def recover(execution: Execution, transport: Transport) -> str | None:
    """The interrupted execution's process group, if it outlived tminus: ended before the step is
    retried or rolled back (two copies of a command must not run at once)."""
    spawned = [e for e in execution.effects if e.get("effect") == "process"]
    if not spawned:
        return None
    last = spawned[-1]  # earlier attempts' groups were killed or had exited before the next began
    how = transport.stop_group(int(last["pgid"]), last.get("started"))
    if how is None:
        return None
    return (f"the process group {last['pgid']} of the interrupted execution ({last.get('command', '?')!r}) "
            f"was still running: {how}")


def adopt(execution: Execution, ctx: StepContext) -> Observation | None:
    """The interrupted execution's command, judged from its spool once it ended (resume --wait)."""
    return adopted(execution, ctx, observed)


@register(
    "run",
    config=RunSpec,
    effect=Effect.IRREVERSIBLE,
    describe=describe,
    recover=recover,
    survivor=survivor,
    adopt=adopt,
    default_expect=("exit_code == 0",),
    queries=("exit_code", "stdout", "stderr", "duration", "json"),
)
def execute(config: RunSpec, ctx: StepContext) -> Observation:
    cwd = ctx.base_dir
    if config.cwd:
        try:
            confine(config.cwd, ctx.base_dir, ctx.roots, what="the working directory (cwd)")
        except OutsideRoots as exc:
            return Observation(error=str(exc), evidence={"command": config.command})
        cwd = ctx.base_dir / config.cwd
    env = {**ctx.environ, **config.env} if config.env else ctx.environ
    # the wrapper would report a missing shell as exit 127, like a missing command: say what it is
    if not _shell_found(config.shell, env.get("PATH", os.defpath)):
        return Observation(error=f"shell {config.shell} not found; set 'shell' to an installed interpreter",
                           evidence={"command": config.command})
    spool = spool_for(ctx.spool)
    try:
        return _execute(config, ctx, cwd, env, config.shell, spool)
    finally:
        spool.discard()


_SHELLS: set[tuple[str, str]] = set()  # (shell, PATH) found already: a lookup per run, not per step


def _shell_found(shell: str, path: str) -> bool:
    if (shell, path) in _SHELLS:
        return True
    if shutil.which(shell, path=path) is None:
        return False
    _SHELLS.add((shell, path))
    return True


def _execute(config: RunSpec, ctx: StepContext, cwd: Path, env: Mapping[str, str], shell: str,
             spool: Spool) -> Observation:
    start = time.perf_counter()
    try:
        out_fd, err_fd = spool.open_output()
    except OSError as exc:
        return Observation(error=f"could not create the step's output files in {spool.prefix.parent}: "
                                 f"{exc.strerror or exc}", evidence={"command": config.command})
    try:
        return _spawned(config, ctx, cwd, env, shell, spool, start, (out_fd, err_fd))
    finally:
        os.close(out_fd)
        os.close(err_fd)


def _spawned(config: RunSpec, ctx: StepContext, cwd: Path, env: Mapping[str, str], shell: str, spool: Spool,
             start: float, fds: tuple[int, int]) -> Observation:
    try:
        # Output goes to files, not pipes: a command outliving a killed tminus keeps writing (no
        # SIGPIPE), and the wrapper (the group leader) records its exit status for a resumed run.
        # Its stdin is a pipe: the gate's "go", then the step's stdin if it has one, then EOF.
        proc = ctx.transport.spawn(
            wrapped(shell, config.command, spool.status, gated=True),
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=fds[0],
            stderr=fds[1],
        )
    except OSError as exc:
        spool.remove()  # nothing ran: nothing will read them
        return Observation(error=_spawn_error(exc, config.shell, cwd), evidence={"command": config.command})
    assert proc.stdin is not None
    # Before the command starts: the group outlives a crash of tminus, and resume must be able to find
    # it (the start time tells it from a later process that reused the pid) and its output.
    try:
        ctx.record_effect("process", pgid=proc.pid, pid=proc.pid, started=ctx.transport.process_identity(proc.pid),
                          command=config.command, at=round(time.time(), 3),
                          **({} if spool.scratch else spool.paths()))
    except BaseException:
        proc.stdin.close()  # unrecorded, the command never starts
        _kill_group(proc)
        proc.wait()
        spool.remove()  # and no record names its files
        raise
    with contextlib.suppress(BrokenPipeError):  # the group already ended (killed from outside)
        os.write(proc.stdin.fileno(), b"go\n")

    stdin = config.stdin.encode() if config.stdin is not None else None
    deadline = start + ctx.timeout if ctx.timeout is not None else None
    stopped, note = _communicate(proc, stdin, deadline, ctx.cancel, spool)
    duration_ms = (time.perf_counter() - start) * 1000.0
    shown = observed(ctx, config.command, proc.pid, proc.returncode, read_fd(fds[0]), read_fd(fds[1]),
                     duration_ms, note)
    if stopped == "timeout":
        return Observation(error=f"timed out after {ctx.timeout:.1f}s", timed_out=True, evidence=shown.evidence)
    if stopped == "cancel":
        return Observation(error=f"interrupted after {duration_ms / 1000:.1f}s (the run was cancelled)",
                           evidence=shown.evidence)
    return shown


def observed(ctx: StepContext, command: str, pid: int, exit_code: int | None, stdout: str, stderr: str,
             duration_ms: float, note: str | None = None) -> Observation:
    """What a command that ran to its end showed: from this process, or adopted after a crash."""
    evidence: dict[str, Any] = {
        "command": command,
        "exit_code": exit_code,
        "stdout": ctx.tail(stdout),
        "stderr": ctx.tail(stderr),
        "duration_ms": round(duration_ms, 1),
        "pid": pid,
    }
    if note:
        evidence["note"] = note
    values: dict[str, Any] = {"exit_code": exit_code, "stdout": stdout, "stderr": stderr, "duration": duration_ms}
    outputs = {"stdout": stdout.rstrip("\n"), "stderr": stderr.rstrip("\n"), "exit_code": exit_code}
    error = None
    if getattr(ctx.step.run, "output", "text") == "json":
        # Promised JSON: the step fails when it is not (a later template must not read half a value).
        try:
            values["json"] = outputs["json"] = parse_output(stdout, ctx.masker)
        except NotJson as exc:
            # a failed command's output is often an error text: its exit status says more
            if exit_code == 0:
                error = str(exc)
            else:
                evidence["json_error"] = str(exc)
    else:
        parsed = _parse_json(stdout)
        if parsed is not _NOT_JSON:
            values["json"] = parsed
    if exit_code == 127:
        # POSIX shells exit 127 when the command does not exist: nothing was observed.
        error = f"command not found (exit 127): {ctx.tail(stderr.strip(), 500) or command}"
    return Observation(values=values, outputs=outputs, evidence=evidence, error=error)


def _communicate(
    proc: subprocess.Popen[bytes],
    stdin: bytes | None,
    deadline: float | None,
    cancel: threading.Event,
    spool: Spool,
) -> tuple[str | None, str | None]:
    """Feed stdin and wait until the wrapper exits and no background child holds the output open.

    Returns (stopped, note); stopped is "timeout" or "cancel" when the group had to be killed.
    Not Popen.wait(timeout=...): it polls with sleeps, which costs most of a millisecond per
    command; a pidfd wakes us the moment the wrapper exits.
    """
    pump = _Pump(proc, stdin)
    try:
        while True:
            now = time.perf_counter()
            stopped = "cancel" if cancel.is_set() else None
            if deadline is not None and now >= deadline:
                stopped = stopped or "timeout"
            if stopped:
                _kill_group(proc)
                return stopped, None
            wait = _SLICE if deadline is None else min(_SLICE, deadline - now)
            if pump.exited_at is not None:
                # The wrapper is gone; a background child may still be writing the output.
                if not _group_left(proc.pid) or not holders(group_members(proc.pid), (spool.out, spool.err)):
                    return None, None
                if now >= pump.exited_at + _ORPHAN_GRACE:
                    return None, "background processes kept the output open; stopped reading"
                wait = min(wait, 0.05)
            pump.round(wait)
    finally:
        pump.close()


class _Pump:
    """One poll over stdin and (on Linux) a pidfd for the wrapper's exit. A poll object, not a
    selector: no epoll descriptor made, registered and closed around every command."""

    def __init__(self, proc: subprocess.Popen[bytes], stdin: bytes | None):
        self.proc = proc
        self.poller = select.poll()
        self.watched = 0
        self.input = memoryview(stdin or b"")
        self.stdin_fd: int | None = None
        if proc.stdin is not None:
            if self.input:
                self.stdin_fd = proc.stdin.fileno()
                self._watch(self.stdin_fd, select.POLLOUT)
            else:
                proc.stdin.close()
        self.pidfd: int | None = None
        try:
            self.pidfd = os.pidfd_open(proc.pid)
            self._watch(self.pidfd, select.POLLIN)
        except (AttributeError, OSError):
            pass  # no pidfd (macOS, old kernels): poll the process instead
        self.exited_at: float | None = None

    def _watch(self, fd: int, events: int) -> None:
        self.poller.register(fd, events)
        self.watched += 1

    def _unwatch(self, fd: int) -> None:
        self.poller.unregister(fd)
        self.watched -= 1

    def round(self, wait: float) -> None:
        if self.exited_at is not None:
            time.sleep(max(wait, 0.0))  # only background children are left: nothing to wake us
        elif not self.watched:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=max(wait, 0.0))
        else:
            for fd, _ in self.poller.poll(max(wait, 0.0) * 1000):  # milliseconds
                if fd == self.pidfd:
                    self._unwatch(fd)
                elif fd == self.stdin_fd:
                    self._write()
        if self.exited_at is None and self.proc.poll() is not None:
            self.exited_at = time.perf_counter()

    def _write(self) -> None:
        assert self.proc.stdin is not None and self.stdin_fd is not None
        try:
            written = os.write(self.stdin_fd, self.input[:_PIPE_BUF])
        except BrokenPipeError:
            written = len(self.input)  # the command stopped reading: drop the rest
        self.input = self.input[written:]
        if not self.input:
            self._unwatch(self.stdin_fd)
            self.proc.stdin.close()
            self.stdin_fd = None

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        self.proc.poll()


def _group_left(pgid: int) -> bool:
    """Anything left of the group once its (reaped) leader exited: one syscall, before scanning /proc."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is left after a short grace."""
    pgid = proc.pid  # start_new_session=True: the shell leads its own group
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    give_up = time.perf_counter() + _KILL_GRACE
    while time.perf_counter() < give_up:
        proc.poll()  # reap the shell: a zombie leader would keep the group "alive"
        if not group_alive(pgid):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    proc.poll()


def _spawn_error(exc: OSError, shell: str, cwd: Path) -> str:
    if exc.filename is not None and str(exc.filename) == str(cwd):
        return f"working directory {cwd} does not exist or is not a directory; fix 'cwd'"
    if isinstance(exc, FileNotFoundError):
        return f"shell {shell} not found; set 'shell' to an installed interpreter"
    return f"could not start {shell}: {exc.strerror or exc}"


_NOT_JSON = object()
_JSON_START = frozenset('{["-0123456789tfn')


def _parse_json(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in _JSON_START:
        return _NOT_JSON  # cheap reject: most output is not JSON
    try:
        return json.loads(stripped)
    except ValueError:
        return _NOT_JSON
