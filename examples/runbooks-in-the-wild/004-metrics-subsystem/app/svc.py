#!/usr/bin/env python3
"""`uvicorn app.main:app` of the stand-in: python3 app/svc.py start|stop|restart (state: $TASCADE_STATE);
python3 app/svc.py checkout p5m3|p5m2 is the `git checkout` of a release."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATE = Path(os.environ.get("TASCADE_STATE", HERE.parent / "state"))
PORT = os.environ.get("TASCADE_PORT", "8000")


def running() -> int | None:
    try:
        pid = int((STATE / "app.pid").read_text())
        os.kill(pid, 0)
        return None if open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z" else pid
    except (OSError, ValueError):
        return None


def stop() -> None:
    pid = running()
    if pid:
        os.kill(pid, signal.SIGTERM)
        while running():
            time.sleep(0.05)
    (STATE / "app.pid").unlink(missing_ok=True)


def start() -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    log = open(STATE / "app.log", "a")
    proc = subprocess.Popen([sys.executable, str(HERE / "server.py")], stdout=log, stderr=log, start_new_session=True)
    (STATE / "app.pid").write_text(str(proc.pid))
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=1)
            return 0
        except OSError:
            if proc.poll() is not None:
                print((STATE / "app.log").read_text()[-2000:], file=sys.stderr)
                return 1
            time.sleep(0.05)
    return 1


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "checkout":
        STATE.mkdir(parents=True, exist_ok=True)
        (STATE / "release").write_text(sys.argv[2])
        print(f"checked out {sys.argv[2]}")
        sys.exit(0)
    if command in ("stop", "restart"):
        stop()
    sys.exit(start() if command in ("start", "restart") else 0)
