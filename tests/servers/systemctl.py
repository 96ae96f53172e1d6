"""A stand-in `systemctl` for machines where systemd is not PID 1 (this one): a small real service
manager over real processes, enough for the `service` kind's systemd backend.

A unit is a file `$SYSTEMCTL_STANDIN_DIR/<unit>` holding the shell command that serves it. `start`
runs it in its own session (pid in `<unit>.pid`, a fresh `<unit>.invocation`, output appended to
`<unit>.log`); `stop` sends TERM to its group, waits up to 5 s, then KILL; `restart` is both;
`is-active [--quiet]` prints active/inactive (exit 0/3); `show -p MainPID -p InvocationID -p
ActiveState` prints those properties. `install(bin_dir)` writes an executable `systemctl` there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path


def install(bin_dir: Path) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "systemctl"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} \"$@\"\n")
    script.chmod(0o755)
    return script


def _state() -> Path:
    return Path(os.environ["SYSTEMCTL_STANDIN_DIR"])


def _pid(unit: str) -> int | None:
    try:
        pid = int((_state() / f"{unit}.pid").read_text())
    except (OSError, ValueError):
        return None
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return None
    with open(f"/proc/{pid}/stat") as fh:
        if fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return None
    return pid


def start(unit: str) -> int:
    if _pid(unit) is not None:
        return 0  # systemd: starting an active unit does nothing
    spec = _state() / unit
    if not spec.is_file():
        print(f"Failed to start {unit}: Unit {unit} not found.", file=sys.stderr)
        return 5
    with open(_state() / f"{unit}.log", "ab") as log:
        proc = subprocess.Popen(["/bin/sh", "-c", spec.read_text()], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    (_state() / f"{unit}.pid").write_text(str(proc.pid))
    (_state() / f"{unit}.invocation").write_text(uuid.uuid4().hex)
    return 0


def stop(unit: str) -> int:
    pid = _pid(unit)
    if pid is None:
        return 0
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while _pid(unit) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    if _pid(unit) is not None:
        os.killpg(pid, signal.SIGKILL)
    return 0


def main(argv: list[str]) -> int:
    verb, args = argv[0], [a for a in argv[1:] if not a.startswith("--")]
    if verb == "start":
        return start(args[0])
    if verb == "stop":
        return stop(args[0])
    if verb == "restart":
        stop(args[0])
        return start(args[0])
    if verb == "is-active":
        active = _pid(args[0]) is not None
        if "--quiet" not in argv:
            print("active" if active else "inactive")
        return 0 if active else 3
    if verb == "show":
        unit = args[-1]
        pid = _pid(unit)
        invocation = (_state() / f"{unit}.invocation").read_text() if pid is not None else ""
        print(f"MainPID={pid or 0}\nInvocationID={invocation}\nActiveState={'active' if pid else 'inactive'}")
        return 0
    print(f"systemctl stand-in: unknown verb {verb}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
