"""Running `svc.py serve` in the background: spawn detached, pid file, stop with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

MARKER = b"svc.py"  # in the command line of every process we start; guards against pid reuse


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    """The process exists, is not a zombie, and is ours (where /proc can tell)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    try:
        # After `start` exits, the server is reparented; a parent that never reaps leaves a
        # zombie, which kill(pid, 0) still reports as present.
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(pid, 0) is all we have
    return state not in ("Z", "X") and MARKER in cmdline


def read_pid(pid_file: Path) -> int | None:
    """The pid of the running server, or None (a stale pid file is removed)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if alive(pid):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def spawn(argv: list[str], pid_file: Path, log_file: Path, port: int, settle: float = 5.0) -> int:
    """Start `argv` detached (own session, output to the log); return once it listens on `port`.

    Raises RuntimeError with the end of the log when the process exits instead.
    """
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,  # never a pipe: whoever ran `start` must not wait for the server
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the caller's process group being killed
        )
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(f"{proc.pid}\n")
    tmp.replace(pid_file)
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pid_file.unlink(missing_ok=True)
            tail = log_file.read_text(errors="replace").splitlines()[-5:]
            raise RuntimeError(f"the server exited with {proc.returncode}:\n" + "\n".join(tail))
        if port_open(port):
            break
        time.sleep(0.05)
    return proc.pid


def terminate(pid: int, timeout: float) -> bool:
    """SIGTERM, then SIGKILL after `timeout`. Returns False if it had to be killed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if _wait_gone(pid, timeout):
        return True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    _wait_gone(pid, 2.0)
    return False


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)
