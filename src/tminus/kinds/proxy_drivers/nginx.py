"""nginx: tminus owns one include file (nginx_conf.py renders it). A change is written atomically,
checked with `nginx -t`, and loaded by SIGHUP to the master named by the pid file (checked to be an
nginx master first: never a broad signal); the change is done when the internal marker answers the
new configuration's hash and every worker of the old one is shutting down. Any refusal puts the
previous file back, so the file always says what nginx serves."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from tminus.kinds.proxy_drivers import nginx_conf
from tminus.kinds.proxy_drivers.base import ProxyError, RoutingState
from tminus.kinds.proxy_drivers.files import read_text, restore, write_atomic
from tminus.kinds.proxy_drivers.procnet import established_to, socket_inodes

_POLL = 0.02  # seconds between looks at the marker while the reload takes effect
_CHECK_TIMEOUT = 60.0


class Driver:
    def __init__(self, spec: Any, base_dir: Path) -> None:
        self.spec = spec
        self.config = base_dir / spec.config
        self.conf = base_dir / spec.conf
        self.pid_file = base_dir / spec.pid_file
        self.page = None if spec.page is None else str((base_dir / spec.page).resolve())

    def read(self) -> RoutingState:
        text = read_text(self.config)
        if text is None:
            return RoutingState()  # nothing routed by tminus yet
        try:
            return nginx_conf.parse_state(text)[0]
        except ValueError as exc:
            raise ProxyError(f"{self.config}: {exc}; remove it or let tminus own it") from exc

    def render(self, state: RoutingState) -> str:
        previous = read_text(self.config)
        details: dict[str, Any] = {}
        if previous is not None:
            try:
                details = nginx_conf.parse_state(previous)[1]
            except ValueError:
                details = {}
        if self.spec.action == "maintenance" and self.spec.maintenance:
            # this step's page, Retry-After and exemptions; a later step keeps them while it keeps maintenance
            details = {"page": self.page, "retry_after": self.spec.retry_after, "exempt": list(self.spec.exempt)}
        return nginx_conf.render(state, self.spec.upstreams, self.config, prefix=self.spec.prefix,
                                 details=details, preview_listen=self.spec.preview_listen)

    def apply(self, state: RoutingState) -> str:
        text = self.render(state)
        previous = read_text(self.config)
        master = self._master()  # before anything is written: a proxy that is not running is refused
        write_atomic(self.config, text)
        try:
            self._check()
        except ProxyError:
            restore(self.config, previous)
            raise
        started = time.perf_counter()
        try:
            self._reload(master, text)
        except ProxyError:
            restore(self.config, previous)
            if previous is not None:  # the master may have loaded part of the way: load the old file again
                with contextlib.suppress(ProxyError):
                    self._reload(master, previous)
            raise
        took = (time.perf_counter() - started) * 1000.0
        return (f"wrote {self.config} ({nginx_conf.config_hash(text)}), nginx -t passed, reloaded master "
                f"{master}; new configuration serving after {took:.0f} ms")

    def connections(self, upstream: str) -> int | None:
        addresses = self.spec.upstreams.get(upstream)
        if addresses is None:
            return None
        try:
            master = self._master()
        except ProxyError:
            return None
        inodes = socket_inodes(_children(master))
        return None if inodes is None else established_to(addresses, inodes)

    # --- the steps of a change ------------------------------------------------------------------

    def _check(self) -> None:
        try:
            done = subprocess.run([self.spec.nginx, "-t", "-q", "-c", str(self.conf)], capture_output=True,
                                  text=True, timeout=_CHECK_TIMEOUT, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ProxyError(f"{self.spec.nginx} -t could not run: {exc}") from exc
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip())[-1500:]
            raise ProxyError(f"nginx -t -c {self.conf} refused the configuration (exit {done.returncode}): {said}")

    def _master(self) -> int:
        text = read_text(self.pid_file)
        if text is None or not text.strip().isdigit():
            raise ProxyError(f"nginx is not running: no pid in {self.pid_file}")
        pid = int(text.strip())
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            raise ProxyError(f"nginx is not running: process {pid} of {self.pid_file} does not exist") from None
        if not cmdline.startswith("nginx: master process"):
            raise ProxyError(f"process {pid} of {self.pid_file} is not an nginx master ({cmdline.strip()!r}): "
                             "no signal sent")
        return pid

    def _reload(self, master: int, text: str) -> None:
        """SIGHUP, then wait until the marker answers the new hash and no old worker still accepts."""
        wanted = nginx_conf.config_hash(text)
        old = _children(master)
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + float(self.spec.reload_timeout)
        sock = nginx_conf.socket_path(self.config)
        while time.monotonic() < deadline:
            if _marker(sock) == wanted and not any(_accepting(pid) for pid in old):
                return
            time.sleep(_POLL)
        raise ProxyError(f"nginx did not serve the new configuration within {self.spec.reload_timeout:g}s "
                         f"(the master {master} kept the old one: see its error log)")


def _children(master: int) -> list[int]:
    """The master's child processes (workers, cache managers), from /proc."""
    try:
        with open(f"/proc/{master}/task/{master}/children", encoding="ascii") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                    out.append(int(entry))
        return out


def _accepting(pid: int) -> bool:
    """A worker of the old configuration still takes new connections (not yet shutting down)."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return title.startswith(b"nginx: worker process") and b"shutting down" not in title


def _marker(path: Path) -> str | None:
    """The hash the internal server answers at the marker, or None when it does not answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2.0)
            s.connect(str(path))
            s.sendall(f"GET {nginx_conf.MARKER_PATH} HTTP/1.0\r\nHost: tminus\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
        return None
    return body.decode(errors="replace").strip()
