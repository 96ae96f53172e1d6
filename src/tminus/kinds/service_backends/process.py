"""A release as a plain process: `/bin/sh -c COMMAND` leading its own session (so it outlives tminus
and is stopped as a group), stdout and stderr appended to its log, its pid in its pid file.

Identity: pid (= process group) and start time (`transport.process_identity`: boot id and clock
ticks), so a stop after a crash never signals a later process that reused the pid."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from pathlib import Path

from tminus.kinds.base import StepContext
from tminus.kinds.service_backends.base import Identity, ServiceError, last_lines
from tminus.kinds.transport import group_alive, process_start_time
from tminus.runbook.roots import OutsideRoots, confine
from tminus.runbook.service_spec import ServiceSpec

SERVICES = ".tminus/services"  # default log and pid files, beside the runbook
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_TAIL_BYTES = 64 * 1024
_GONE_WAIT = 5.0  # after SIGKILL: how long to wait for the group to disappear


def _path(ctx: StepContext, given: str | None, default: str, what: str) -> Path:
    rel = given or f"{SERVICES}/{default}"
    try:
        confine(rel, ctx.base_dir, ctx.roots, what=what)
    except OutsideRoots as exc:
        raise ServiceError(str(exc)) from None
    return ctx.base_dir / rel


def log_path(spec: ServiceSpec, ctx: StepContext) -> Path:
    return _path(ctx, spec.log, f"{_UNSAFE.sub('_', spec.name)}.log", "the log file")


def pid_path(spec: ServiceSpec, ctx: StepContext) -> Path:
    return _path(ctx, spec.pid_file, f"{_UNSAFE.sub('_', spec.name)}.pid", "the pid file")


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class Process:
    """One Popen per start while this tminus lives (reaped on stop); the ledger's identity after."""

    def __init__(self) -> None:
        self.children: dict[int, subprocess.Popen[bytes]] = {}

    def running(self, spec: ServiceSpec, ctx: StepContext) -> Identity | None:
        path = pid_path(spec, ctx)
        pid = read_pid(path)
        started = process_start_time(pid) if pid is not None else None
        if pid is None or started is None:
            return None
        if not group_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(pid) != pid:  # alive, but no group of its own: not one tminus started
                    raise ServiceError(f"pid {pid} (from {path}) runs but does not lead its own process group, so "
                                       "tminus did not start it; stop it by other means, or remove the pid file")
            return None
        return {"pid": pid, "pgid": pid, "started": started, "pid_file": str(path)}

    def start(self, spec: ServiceSpec, ctx: StepContext) -> Identity:
        if not spec.command:
            raise ServiceError("the process backend needs 'command'")
        cwd = ctx.base_dir
        if spec.cwd:
            cwd = _path(ctx, spec.cwd, "", "the working directory (cwd)")
        log, pid_file = log_path(spec, ctx), pid_path(spec, ctx)
        for folder in {log.parent, pid_file.parent}:
            folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o640)
        try:
            offset = os.fstat(fd).st_size  # the failure evidence is what this start wrote
            proc = ctx.transport.spawn(["/bin/sh", "-c", spec.command], cwd=cwd, env={**ctx.environ, **spec.env},
                                       stdin=subprocess.DEVNULL, stdout=fd, stderr=fd)
        except OSError as exc:
            if exc.filename is not None and str(exc.filename) == str(cwd):
                raise ServiceError(f"working directory {cwd} does not exist; fix 'cwd'") from None
            raise ServiceError(f"could not start /bin/sh: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        self.children[proc.pid] = proc
        return {"pid": proc.pid, "pgid": proc.pid, "started": ctx.transport.process_identity(proc.pid),
                "command": spec.command, "log": str(log), "log_offset": offset, "pid_file": str(pid_file),
                "at": round(time.time(), 3)}

    def written(self, identity: Identity) -> None:
        """The pid file, once the identity is in the ledger (atomically: a reader never sees half)."""
        path = Path(identity["pid_file"])
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(f"{identity['pid']}\n")
        os.replace(tmp, path)

    def exited(self, identity: Identity, ctx: StepContext) -> str | None:
        pid = int(identity["pid"])
        if group_alive(pid):
            return None
        code = None
        proc = self.children.get(pid)
        if proc is not None:  # ours: its status is known once reaped (the group is gone already)
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = proc.wait(timeout=1.0)
        return f"exited with status {code}" if code is not None else "is no longer running"

    def stop(self, identity: Identity, spec: ServiceSpec, ctx: StepContext) -> str:
        pid, started = int(identity["pid"]), identity.get("started")
        now = process_start_time(pid)
        if now is not None and now != started:
            return (f"pid {pid} now belongs to another process (started {now}, recorded {started}): "
                    "left alone, the recorded process had already ended")
        proc = self.children.pop(pid, None)
        how = ctx.transport.stop_group(pid, started, spec.stop_timeout)
        if how is not None and "SIGKILL" in how:
            give_up = time.monotonic() + _GONE_WAIT
            while group_alive(pid) and time.monotonic() < give_up:
                time.sleep(0.02)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=_GONE_WAIT)  # reap our own child: no zombie left
        pid_file = Path(identity.get("pid_file") or pid_path(spec, ctx))
        if read_pid(pid_file) == pid:
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
        if how is None:
            return f"pid {pid} was not running any more"
        return f"pid {pid} {how}"

    def restart(self, identity: Identity | None, spec: ServiceSpec, ctx: StepContext) -> Identity:
        if identity is not None:
            self.stop(identity, spec, ctx)
        return self.start(spec, ctx)

    def logs(self, spec: ServiceSpec, identity: Identity | None, ctx: StepContext) -> str:
        path = Path(identity["log"]) if identity and identity.get("log") else log_path(spec, ctx)
        offset = int(identity.get("log_offset", 0)) if identity else 0
        try:
            with open(path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(offset, size - _TAIL_BYTES))
                return last_lines(fh.read().decode("utf-8", "replace"))
        except OSError as exc:
            return f"(no log: {exc.strerror or exc})"


