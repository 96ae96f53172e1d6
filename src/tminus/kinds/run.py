"""`run`: a shell command in its own process group, killed as a group on timeout or cancel."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tminus.kinds.base import Effect, Execution, Observation, StepContext
from tminus.kinds.registry import register
from tminus.kinds.transport import Transport, group_alive
from tminus.runbook.models import RunSpec
from tminus.runbook.roots import OutsideRoots, confine

# communicate() is called in slices so cancel and a shell that exits while a background child
# still holds the pipes are noticed without a watcher thread per command.
_SLICE = 0.1
# After the shell exits, how long to keep reading pipes held open by its background children.
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


@register(
    "run",
    config=RunSpec,
    effect=Effect.IRREVERSIBLE,
    describe=describe,
    recover=recover,
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
    start = time.perf_counter()
    try:
        proc = ctx.transport.spawn(
            [config.shell, "-c", config.command],
            cwd=cwd,
            env={**ctx.environ, **config.env},
            stdin=subprocess.PIPE if config.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        return Observation(error=_spawn_error(exc, config.shell, cwd), evidence={"command": config.command})
    # Before waiting: the group outlives a crash of tminus, and resume must be able to find it
    # (the start time tells it from a later process that reused the pid).
    try:
        ctx.record_effect("process", pgid=proc.pid, pid=proc.pid, started=ctx.transport.process_identity(proc.pid),
                          command=config.command)
    except BaseException:
        _kill_group(proc)  # unrecorded, it must not outlive this step
        proc.wait()
        raise

    stdin = config.stdin.encode() if config.stdin is not None else None
    deadline = start + ctx.timeout if ctx.timeout is not None else None
    out, err, stopped, note = _communicate(proc, stdin, deadline, ctx.cancel)
    duration_ms = (time.perf_counter() - start) * 1000.0

    stdout = out.decode("utf-8", "replace")
    stderr = err.decode("utf-8", "replace")
    evidence: dict[str, Any] = {
        "command": config.command,
        "exit_code": proc.returncode,
        "stdout": ctx.tail(stdout),
        "stderr": ctx.tail(stderr),
        "duration_ms": round(duration_ms, 1),
        "pid": proc.pid,
    }
    if note:
        evidence["note"] = note
    if stopped == "timeout":
        return Observation(error=f"timed out after {ctx.timeout:.1f}s", timed_out=True, evidence=evidence)
    if stopped == "cancel":
        return Observation(
            error=f"interrupted after {duration_ms / 1000:.1f}s (the run was cancelled)",
            evidence=evidence,
        )

    values: dict[str, Any] = {
        "exit_code": proc.returncode,
        "stdout": stdout,
        "stderr": stderr,
        "duration": duration_ms,
    }
    parsed = _parse_json(stdout)
    if parsed is not _NOT_JSON:
        values["json"] = parsed
    outputs = {
        "stdout": stdout.rstrip("\n"),
        "stderr": stderr.rstrip("\n"),
        "exit_code": proc.returncode,
    }
    error = None
    if proc.returncode == 127:
        # POSIX shells exit 127 when the command does not exist: nothing was observed.
        error = f"command not found (exit 127): {ctx.tail(stderr.strip(), 500) or config.command}"
    return Observation(values=values, outputs=outputs, evidence=evidence, error=error)


def _communicate(
    proc: subprocess.Popen[bytes],
    stdin: bytes | None,
    deadline: float | None,
    cancel: threading.Event,
) -> tuple[bytes, bytes, str | None, str | None]:
    """Feed stdin and read both pipes until the shell exits and the pipes close.

    Returns (stdout, stderr, stopped, note); stopped is "timeout" or "cancel" when the group
    had to be killed. Not Popen.communicate(timeout=...): its final wait polls with sleeps,
    which costs most of a millisecond per command; a pidfd wakes us the moment the shell exits.
    """
    pump = _Pump(proc, stdin)
    try:
        while not pump.done:
            now = time.perf_counter()
            stopped = "cancel" if cancel.is_set() else None
            if deadline is not None and now >= deadline:
                stopped = stopped or "timeout"
            if stopped:
                _kill_group(proc)
                give_up = time.perf_counter() + 1.0  # the group is dead: the pipes close at once
                while pump.open_pipes and time.perf_counter() < give_up:
                    pump.round(0.05)
                return pump.output(1), pump.output(2), stopped, None
            wait = _SLICE if deadline is None else min(_SLICE, deadline - now)
            if pump.exited_at is not None:
                # The shell is gone but a background child still holds stdout/stderr open.
                left = pump.exited_at + _ORPHAN_GRACE - now
                if left <= 0:
                    return (
                        pump.output(1),
                        pump.output(2),
                        None,
                        "background processes kept the output open; stopped reading",
                    )
                wait = min(wait, left)
            pump.round(wait)
        return pump.output(1), pump.output(2), None, None
    finally:
        pump.close()


class _Pump:
    """One selector over stdin, stdout, stderr and (on Linux) a pidfd for the shell's exit."""

    def __init__(self, proc: subprocess.Popen[bytes], stdin: bytes | None):
        assert proc.stdout is not None and proc.stderr is not None
        self.proc = proc
        self.sel = selectors.DefaultSelector()
        self.chunks: dict[int, list[bytes]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
        self.names = {1: proc.stdout.fileno(), 2: proc.stderr.fileno()}
        for fd in self.chunks:
            self.sel.register(fd, selectors.EVENT_READ)
        self.open_pipes = 2
        self.input = memoryview(stdin or b"")
        self.stdin_fd: int | None = None
        if proc.stdin is not None:
            if self.input:
                self.stdin_fd = proc.stdin.fileno()
                self.sel.register(self.stdin_fd, selectors.EVENT_WRITE)
            else:
                proc.stdin.close()
        self.pidfd: int | None = None
        try:
            self.pidfd = os.pidfd_open(proc.pid)
            self.sel.register(self.pidfd, selectors.EVENT_READ)
        except (AttributeError, OSError):
            pass  # no pidfd (macOS, old kernels): poll the process instead
        self.exited_at: float | None = None

    @property
    def done(self) -> bool:
        return self.open_pipes == 0 and self.proc.returncode is not None

    def round(self, wait: float) -> None:
        if self.open_pipes == 0 and self.pidfd is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=max(wait, 0.0))
            return
        for key, _ in self.sel.select(max(wait, 0.0)):
            fd = key.fd
            if fd == self.pidfd:
                self.sel.unregister(fd)
                self._exited()
            elif fd == self.stdin_fd:
                self._write()
            else:
                data = os.read(fd, 65536)
                if data:
                    self.chunks[fd].append(data)
                else:
                    self.sel.unregister(fd)
                    self.open_pipes -= 1
        if self.pidfd is None and self.exited_at is None:
            self._exited()

    def _exited(self) -> None:
        if self.proc.poll() is not None:
            self.exited_at = time.perf_counter()

    def _write(self) -> None:
        assert self.proc.stdin is not None and self.stdin_fd is not None
        try:
            written = os.write(self.stdin_fd, self.input[:_PIPE_BUF])
        except BrokenPipeError:
            written = len(self.input)  # the command stopped reading: drop the rest
        self.input = self.input[written:]
        if not self.input:
            self.sel.unregister(self.stdin_fd)
            self.proc.stdin.close()
            self.stdin_fd = None

    def output(self, stream: int) -> bytes:
        return b"".join(self.chunks[self.names[stream]])

    def close(self) -> None:
        self.sel.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        self.proc.poll()


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
