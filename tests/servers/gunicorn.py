"""Real gunicorn (from the .venv) serving tests/servers/wsgi_app.py on a free loopback port.

`command(port)` is the shell command a `service` step (or any test) runs; `Gunicorn` starts one
directly, with its own pid file and log in a tmp folder, and stops it (TERM, then KILL) on exit.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

SERVERS = Path(__file__).resolve().parent
ROOT = SERVERS.parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(port: int, *, workers: int = 1, extra: str = "") -> str:
    """`gunicorn -b 127.0.0.1:PORT wsgi_app:app` run from tests/servers (RELEASE from the environment)."""
    return (f"exec {shlex.quote(str(GUNICORN))} --chdir {shlex.quote(str(SERVERS))} -b 127.0.0.1:{port} "
            f"-w {workers} --graceful-timeout 2 --no-control-socket {extra}wsgi_app:app")


def get(url: str, timeout: float = 2.0) -> tuple[int, str, str]:
    """(status, X-Release, body) of a GET; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.headers.get("X-Release", ""), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-Release", ""), exc.read().decode()
    except OSError:
        return 0, "", ""


def wait_healthy(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if get(f"http://127.0.0.1:{port}/healthz", 1.0)[0] == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"gunicorn on {port} not healthy within {timeout}s")


class Gunicorn:
    def __init__(self, folder: Path, release: str = "v1", port: int | None = None) -> None:
        self.port = port or free_port()
        self.release = release
        self.log = folder / f"gunicorn-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gunicorn:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["/bin/sh", "-c", command(self.port)], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         env={**os.environ, "RELEASE": self.release})
        wait_healthy(self.port)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@contextlib.contextmanager
def gunicorn(folder: Path, release: str = "v1") -> Iterator[Gunicorn]:
    server = Gunicorn(folder, release).start()
    try:
        yield server
    finally:
        server.stop()
