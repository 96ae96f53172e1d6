"""Where a step acts. `LocalTransport` spawns processes on this host; an SSH or container transport
implements the same calls later, and a step's executions are then keyed by (step key, target)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Protocol


class Transport(Protocol):
    target: str

    def spawn(self, argv: list[str], *, cwd: Path, env: Mapping[str, str], stdin: int | IO[Any] | None,
              stdout: int | IO[Any] | None, stderr: int | IO[Any] | None) -> subprocess.Popen[bytes]: ...

    def process_identity(self, pid: int) -> str | None: ...

    def stop_group(self, pgid: int, identity: str | None, grace: float = ...) -> str | None: ...

    def group_running(self, pgid: int, identity: str | None) -> bool: ...

    def wait_group(self, pgid: int, identity: str | None, deadline: float | None,
                   cancel: Callable[[], bool]) -> bool: ...


class LocalTransport:
    """Processes on this host, each the leader of its own process group (killed as a group)."""

    target = "local"

    def __init__(self) -> None:
        # The last environment given and its bytes: every step of a run passes the same one, and
        # Popen encodes a text environment variable by variable at every spawn.
        self._encoded: tuple[dict[str, str], dict[bytes, bytes]] | None = None

    def spawn(self, argv: list[str], *, cwd: Path, env: Mapping[str, str], stdin: int | IO[Any] | None,
              stdout: int | IO[Any] | None, stderr: int | IO[Any] | None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, cwd=cwd, env=self._bytes(env), stdin=stdin, stdout=stdout, stderr=stderr,
                                start_new_session=True)

    def _bytes(self, env: Mapping[str, str]) -> dict[bytes, bytes]:
        cached = self._encoded
        if cached is not None and cached[0] == env:  # compared as dicts, in C
            return cached[1]
        encoded = {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
        self._encoded = (dict(env), encoded)
        return encoded

    def process_identity(self, pid: int) -> str | None:
        return process_start_time(pid)

    def group_running(self, pgid: int, identity: str | None) -> bool:
        """The group recorded still has a live process: its leader, with start time `identity`, or
        (the leader gone) a member; a pid in use as a group id is not reused, so that is still ours."""
        leader = process_start_time(pgid)
        if leader is not None and leader != identity:
            return False  # another process holds the pid now
        return group_alive(pgid)

    def wait_group(self, pgid: int, identity: str | None, deadline: float | None,
                   cancel: Callable[[], bool]) -> bool:
        """Wait until the group has ended (True), `deadline` (time.time()) passed or `cancel()` (False)."""
        while self.group_running(pgid, identity):
            if cancel() or (deadline is not None and time.time() >= deadline):
                return False
            time.sleep(0.1)
        return True

    def stop_group(self, pgid: int, identity: str | None, grace: float = 5.0) -> str | None:
        """End a process group left behind by an earlier tminus process: SIGTERM, then SIGKILL after
        `grace`. Only the group recorded: while its leader lives, its start time must be `identity`
        (else the pid was reused); a group whose leader exited cannot have been recycled (a pid
        in use as a group id is not reused). Returns how it ended, or None if nothing of it was left."""
        leader = process_start_time(pgid)
        if leader is not None and leader != identity:
            return None  # another process holds the pid now
        if not group_alive(pgid):
            return None
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return None
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not group_alive(pgid):
                return "terminated (SIGTERM)"
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        return f"killed (SIGKILL after SIGTERM and {grace:g}s)"


def process_start_time(pid: int) -> str | None:
    """When the process started, as "<boot id>:<clock ticks since boot>" (/proc/PID/stat field 22):
    a pid recycled by a later process has another start time. None without procfs or process."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            stat = os.read(fd, 4096).decode("ascii", "replace")
        finally:
            os.close(fd)
        ticks = stat.rsplit(")", 1)[1].split()[19]  # fields after the command name start at field 3 (state)
    except (OSError, IndexError):
        return None
    return f"{_boot_id()}:{ticks}"


_BOOT: list[str] = []  # the boot id, read once per process: it changes only with a reboot


def _boot_id() -> str:
    if not _BOOT:
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
                _BOOT.append(fh.read().strip())
        except OSError:
            return ""
    return _BOOT[0]


def group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process remains in the group. Orphaned grandchildren are
    reaped by init, which in some containers never happens: their zombies do not count."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc"):
        return True  # no procfs (macOS): trust killpg
    return bool(group_members(pgid))


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc; [] without procfs."""
    out: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            out.append(int(name))
    return out
