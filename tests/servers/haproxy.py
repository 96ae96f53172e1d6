"""A real HAProxy (/usr/sbin/haproxy) on a free loopback port, configured as docs/proxy-haproxy.md says.

`backend app` holds one server per upstream (the first at weight 100, the others at 0);
`backend app_preview` holds the same server names, all `disabled`, reached with the header
`X-Tminus-Preview`; maintenance is the key `maintenance` of a map file (on: 503 with Retry-After and
a page, /healthz exempt). The stats socket (level admin) is in the test's folder, and optionally a
TCP one. HAProxy runs in the foreground as our child and is stopped by its pid.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HAPROXY = "/usr/sbin/haproxy"
PAGE = "<h1>Down for maintenance</h1>\n"
RETRY_AFTER = "120"
PREVIEW_HEADER = "X-Tminus-Preview"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Haproxy:
    def __init__(self, folder: Path, upstreams: dict[str, str], *, tcp_socket: bool = False,
                 balance: str = "roundrobin", level: str = "admin", weights: dict[str, int] | None = None,
                 render: Callable[[Haproxy], str] | None = None, check: bool = False,
                 map_text: str = "maintenance off\n") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.upstreams = upstreams  # upstream name (= server name) -> 127.0.0.1:port
        self.socket = str(folder / "admin.sock")
        self.map = str(folder / "tminus.map")
        self.page = folder / "maintenance.html"
        self.config = folder / "haproxy.cfg"
        self.log = folder / "haproxy.log"
        self.tcp_port = free_port() if tcp_socket else None
        self.balance = balance
        self.level = level
        self.map_text = map_text
        self.check = " check inter 100ms fall 1 rise 1" if check else ""  # health checks on `app`'s servers
        self.render = render  # another haproxy.cfg (e.g. the documented one), given this proxy's paths and port
        first = next(iter(upstreams))  # the weights in haproxy.cfg: the first upstream live by default
        self.weights = weights or {name: 100 if name == first else 0 for name in upstreams}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tcp_address(self) -> str:
        return f"ipv4@127.0.0.1:{self.tcp_port}"

    def _write(self) -> None:
        Path(self.map).write_text(self.map_text)
        self.page.write_text(PAGE)
        self.config.write_text(self.render(self) if self.render else self.default_config())

    def default_config(self) -> str:
        servers = "\n".join(f"  server {name} {addr} weight {self.weights[name]}{self.check}"
                            for name, addr in self.upstreams.items())
        preview = "\n".join(f"  server {name} {addr} disabled" for name, addr in self.upstreams.items())
        maintenance = (f'http-request return status 503 content-type "text/html; charset=utf-8" file {self.page} '
                       f"hdr Retry-After {RETRY_AFTER} if tminus_maintenance !tminus_exempt")
        tcp = f"  stats socket ipv4@127.0.0.1:{self.tcp_port} level admin\n" if self.tcp_port else ""
        return f"""global
  stats socket {self.socket} level {self.level} mode 600
{tcp}  stats timeout 10s

defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 2s

frontend web
  bind 127.0.0.1:{self.port}
  acl tminus_maintenance str(maintenance),map({self.map}) -m str on
  acl tminus_exempt path /healthz
  {maintenance}
  use_backend app_preview if {{ req.hdr({PREVIEW_HEADER}) -m found }}
  default_backend app

backend app
  balance {self.balance}
{servers}

backend app_preview
{preview}
"""

    def start(self, timeout: float = 20.0) -> Haproxy:
        for _attempt in range(3):  # a free port can be taken between choosing it and HAProxy's bind
            self.port = free_port()
            self._write()
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen([HAPROXY, "-f", str(self.config), "-db"], stdout=log, stderr=log)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._serving():
                    return self
                time.sleep(0.02)
            self.stop()
        raise RuntimeError(f"HAProxy did not start; its log:\n{self.log.read_text()}")

    def _serving(self) -> bool:
        """The frontend accepts and the stats socket answers (its file appears at bind, before listen)."""
        if not os.path.exists(self.socket):
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass
            with socket.socket(socket.AF_UNIX) as cli:
                cli.settimeout(2)
                cli.connect(self.socket)
                cli.sendall(b"show info\n")
                answer = b""
                while chunk := cli.recv(65536):
                    answer += chunk
            return b"Name: HAProxy" in answer
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL, as a crash would: the socket file stays behind, nothing answers on it."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextmanager
def haproxy(folder: Path, upstreams: dict[str, str], **options: object) -> Iterator[Haproxy]:
    """`with haproxy(tmp_path, {"blue": b.address, "green": g.address}) as h:` a running HAProxy."""
    proxy = Haproxy(folder, upstreams, **options)  # type: ignore[arg-type]
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
