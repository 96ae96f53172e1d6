#!/usr/bin/env python3
"""Start and stop the Tascade stand-in service (the HTTP server is in server.py).

State (pid file, log) lives in --state DIR, else $TASCADE_STATE, else examples/metrics-subsystem/state/.
The port is --port, else $TASCADE_PORT, else 8780. The server reads its configuration from the
environment, as the real service does: TASCADE_DATABASE_URL (required), TASCADE_API_KEY (the
Bearer token), TASCADE_AUTH_DISABLED=1 (no auth; test environments only).

    svc.py start | stop | restart | status
    svc.py serve                       the server itself, in the foreground
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_STATE = HERE.parent / "state"
DEFAULT_PORT = 8780
MARKER = b"svc.py\x00serve"  # in the command line of every server we start (guards against pid reuse)


def say(message: str) -> None:
    print(f"svc.py: {message}", file=sys.stderr)


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(pid, 0) is all we have
    return stat not in ("Z", "X") and MARKER in cmdline


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if alive(pid):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def start(state: Path, port: int) -> int:
    pid_file, log_file = state / "svc.pid", state / "svc.log"
    pid = read_pid(pid_file)
    if pid:
        say(f"already running (pid {pid})")
        return 0
    if not os.environ.get("TASCADE_DATABASE_URL"):
        say("TASCADE_DATABASE_URL is not set")
        return 1
    if port_open(port):
        say(f"port {port} is in use by another program; choose one with --port or TASCADE_PORT")
        return 1
    argv = [sys.executable, str(HERE / "svc.py"), "serve", "--port", str(port), "--state", str(state)]
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    pid_file.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pid_file.unlink(missing_ok=True)
            tail = log_file.read_text(errors="replace").splitlines()[-3:]
            say(f"the server exited with {proc.returncode}:\n" + "\n".join(tail))
            return 1
        if port_open(port):
            say(f"started pid {proc.pid} on http://127.0.0.1:{port}; log: {log_file}")
            print(proc.pid)
            return 0
        time.sleep(0.05)
    say(f"pid {proc.pid} does not listen on {port} after 10s; see {log_file}")
    return 1


def stop(state: Path, timeout: float = 5.0) -> int:
    pid_file = state / "svc.pid"
    pid = read_pid(pid_file)
    if pid is None:
        say("not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    say(f"stopped pid {pid}")
    return 0


def status(state: Path, port: int) -> int:
    pid = read_pid(state / "svc.pid")
    if pid is None:
        print("stopped")
        return 3
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            health = json.load(resp)["status"]
    except OSError as exc:
        health = f"no answer ({exc})"
    print(f"running, pid {pid}, http://127.0.0.1:{port}, health: {health}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="svc.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["start", "stop", "restart", "status", "serve"])
    p.add_argument("--state", type=Path, default=Path(os.environ.get("TASCADE_STATE", DEFAULT_STATE)),
                   help="pid file and log (default: $TASCADE_STATE or examples/metrics-subsystem/state)")
    p.add_argument("--port", type=int, default=int(os.environ.get("TASCADE_PORT", DEFAULT_PORT)),
                   help=f"port on 127.0.0.1 (default: $TASCADE_PORT or {DEFAULT_PORT})")
    args = p.parse_args(argv)
    state = args.state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    if args.command == "serve":
        import server

        server.serve(args.port)
        return 0
    if args.command == "start":
        return start(state, args.port)
    if args.command == "stop":
        return stop(state)
    if args.command == "restart":
        return stop(state) or start(state, args.port)
    return status(state, args.port)


if __name__ == "__main__":
    sys.exit(main())
