#!/usr/bin/env python3
"""`docker-compose` of the stand-in: the backend and the celery worker as local processes.

    python3 compose.py up|stop|ps [backend] [celery]     # default: both
    python3 compose.py checkout TAG                      # `git checkout TAG`: v2.0.0 or pre-v2-migration
    python3 compose.py tag                               # `git tag`
    python3 compose.py worker                            # (the celery process itself)
    python3 compose.py logs [backend|celery]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from common import HERE, QUEUE, STATE, redis

SERVICES = {"backend": [sys.executable, str(HERE / "backend.py")], "celery": [sys.executable, str(HERE / "compose.py"), "worker"]}


def pid_of(name: str) -> int | None:
    try:
        pid = int((STATE / f"{name}.pid").read_text())
        os.kill(pid, 0)
        zombie = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
        return None if zombie else pid
    except (OSError, ValueError, IndexError):
        return None


def up(name: str) -> None:
    if pid_of(name):
        return
    log = open(STATE / f"{name}.log", "a")
    proc = subprocess.Popen(SERVICES[name], start_new_session=True, stdout=log, stderr=log)
    (STATE / f"{name}.pid").write_text(str(proc.pid))
    if name == "backend":  # wait until it answers
        import urllib.request
        from common import PORT
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("backend did not start")


def stop(name: str) -> None:
    pid = pid_of(name)
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not pid_of(name):
                break
            time.sleep(0.05)
    (STATE / f"{name}.pid").unlink(missing_ok=True)


def worker() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        job = redis("RPOP", QUEUE)
        if job is None:
            time.sleep(0.1)


def main() -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    command, names = sys.argv[1], sys.argv[2:] or list(SERVICES)
    if command == "worker":
        worker()
    elif command == "tag":
        print("pre-v2-migration\nv2.0.0")
    elif command == "checkout":
        release = {"v2.0.0": "v2", "pre-v2-migration": "mvp"}[names[0]]
        (STATE / "release").write_text(release)
        print(f"HEAD is now at {names[0]} ({release})")
    elif command == "up":
        for name in names:
            up(name)
    elif command == "stop":
        for name in names:
            stop(name)
    elif command == "ps":
        states = {name: "Up" if pid_of(name) else "Exited" for name in names}
        print("\n".join(f"{name}  {state}" for name, state in states.items()))
    elif command == "logs":
        for name in names:
            print((STATE / f"{name}.log").read_text() if (STATE / f"{name}.log").exists() else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
