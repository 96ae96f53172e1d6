"""A real nginx (/usr/sbin/nginx) on free loopback ports, with its own nginx.conf, pid file, error log
and temp folders in the test's folder, in front of the tminus include (`routing.conf`) that the
`proxy` kind owns. Run in the foreground (`daemon off`) as the test's child, so stopping it is
waiting for our own child; the pid file still names the master, as the driver requires."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tminus.kinds.proxy_drivers import nginx_conf
from tminus.kinds.proxy_drivers.base import RoutingState

NGINX = "/usr/sbin/nginx"

CONF = """
worker_processes {workers};
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_requests 100000;
    include {dir}/routing.conf;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://tminus_live;
            proxy_set_header Host $host;
        }}
        location /routed/ {{
            proxy_pass http://$tminus_route;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nginx:
    def __init__(self, folder: Path, upstreams: dict[str, list[str]], state: RoutingState, *,
                 workers: int = 2, preview: bool = True) -> None:
        self.dir = folder
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "tmp").mkdir(exist_ok=True)
        self.upstreams = upstreams
        self.port = free_port()
        self.preview_port = free_port() if preview else None
        self.conf = self.dir / "nginx.conf"
        self.config = self.dir / "routing.conf"
        self.pid_file = self.dir / "nginx.pid"
        self.conf.write_text(CONF.format(workers=workers, dir=self.dir, port=self.port))
        self.preview_listen = None if self.preview_port is None else f"127.0.0.1:{self.preview_port}"
        self.config.write_text(nginx_conf.render(state, upstreams, self.config,
                                                 preview_listen=self.preview_listen))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def preview_url(self) -> str:
        return f"http://127.0.0.1:{self.preview_port}"

    def spec(self, **fields: Any) -> dict[str, Any]:
        """A `proxy:` mapping for this nginx (absolute paths), with the action's fields."""
        base: dict[str, Any] = {"driver": "nginx", "config": str(self.config), "conf": str(self.conf),
                                "pid_file": str(self.pid_file), "upstreams": self.upstreams}
        if self.preview_listen:
            base["preview_listen"] = self.preview_listen
        return {**base, **fields}

    def start(self) -> Nginx:
        log = open(self.dir / "nginx.out", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen([NGINX, "-c", str(self.conf), "-g", "daemon off;"], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited {self.proc.returncode}: {(self.dir / 'nginx.out').read_text()}"
                                   f"{self.error_log()}")
            if self.pid_file.exists() and _accepts(self.port):
                return self
            time.sleep(0.02)
        raise RuntimeError(f"nginx did not listen on {self.port} within 30s: {self.error_log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)  # our own child, by its pid
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text() if path.exists() else ""

    def workers(self) -> list[int]:
        assert self.proc is not None
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def nginx(folder: Path, upstreams: dict[str, list[str]], live: str, **kwargs: Any) -> Iterator[Nginx]:
    """nginx serving all traffic to the upstream `live`, stopped afterwards."""
    state = RoutingState({name: 100 if name == live else 0 for name in upstreams})
    server = Nginx(folder, upstreams, state, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()
