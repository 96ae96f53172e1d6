#!/usr/bin/env python3
"""The blue-green example's stack: nginx in front of two gunicorn slots (blue, green), PostgreSQL
behind. Brings it up before the runbook runs and down afterwards; the runbook itself moves traffic
(the `proxy` kind) and starts and stops releases (the `service` kind).

Everything lives in one state folder (default: state/ beside this file): nginx's conf, the include
tminus owns (routing.conf), pid files, logs. Settings are kept in STATE/stack.json by `up`.

    stack.py up [--port 8480 --preview-port 8481 --blue-port 8401 --green-port 8402] [--release v1]
                                         schema + table, nginx, and blue serving RELEASE; writes
                                         STATE/vars.json for `tminus ... --var-file`
    (defaults from BG_PORT, BG_PREVIEW_PORT, BG_BLUE_PORT, BG_GREEN_PORT, BG_SCHEMA, DATABASE_URL)
    stack.py status                      what runs, and which release answers through nginx
    stack.py down                        stop every process it finds in the state folder, drop the schema

Run it with the repository's .venv (it imports psycopg, and tminus to write the first routing.conf).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
COLORS = ("blue", "green")


def say(message: str) -> None:
    print(f"stack: {message}", file=sys.stderr, flush=True)


def load(state: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((state / "stack.json").read_text()))
    except FileNotFoundError:
        raise SystemExit(f"stack: no {state}/stack.json: run `stack.py up` first") from None


def gunicorn_command(settings: dict[str, Any], color: str) -> list[str]:
    """The command the runbook's service step runs too (see runbook.yaml)."""
    return [settings["gunicorn"], "--bind", f"127.0.0.1:{settings['ports'][color]}", "--workers", "2",
            "--threads", "2", "--graceful-timeout", "5", "--chdir", str(HERE / "app"), "app:app"]


# --- processes -----------------------------------------------------------------------------------


def read_pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().split()[0])
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def wait_http(url: str, timeout: float, want: int = 200) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == want:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    return False


def start_app(state: Path, settings: dict[str, Any], color: str, release: str) -> int:
    """gunicorn leading its own session (its pid is its group), pid in run/COLOR.pid: the file the
    runbook's `service` steps read to stop it."""
    pid_file, log = state / "run" / f"{color}.pid", state / "logs" / f"{color}.log"
    pid = read_pid(pid_file)
    if pid is not None and alive(pid):
        raise SystemExit(f"stack: {color} already runs (pid {pid})")
    env = {**os.environ, "RELEASE": release, "DATABASE_URL": settings["database_url"],
           "BG_SCHEMA": settings["schema"]}
    with open(log, "ab") as out:
        proc = subprocess.Popen(gunicorn_command(settings, color), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out, env=env, start_new_session=True)
    pid_file.write_text(f"{proc.pid}\n")
    if not wait_http(f"http://127.0.0.1:{settings['ports'][color]}/healthz", 30):
        stop_group(proc.pid, 5)
        raise SystemExit(f"stack: {color} ({release}) not healthy within 30 s:\n{log.read_text()[-2000:]}")
    say(f"{color} serves {release} on 127.0.0.1:{settings['ports'][color]} (pid {proc.pid})")
    return proc.pid


def stop_group(pid: int, timeout: float) -> None:
    """TERM the process group, wait, then KILL: only the group the pid file names."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def nginx_master(state: Path) -> int | None:
    pid = read_pid(state / "nginx" / "nginx.pid")
    if pid is None:
        return None
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if title.startswith(b"nginx: master process") else None


# --- commands -----------------------------------------------------------------------------------


def database(settings: dict[str, Any], sql: str) -> None:
    import psycopg

    with psycopg.connect(settings["database_url"], autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)


def cmd_up(state: Path, args: argparse.Namespace) -> None:
    from tminus.kinds.proxy_drivers import nginx_conf
    from tminus.kinds.proxy_drivers.base import RoutingState

    if nginx_master(state) is not None:
        raise SystemExit(f"stack: nginx already runs for {state}: `stack.py down` first")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", args.schema):
        raise SystemExit(f"stack: --schema {args.schema!r}: lower-case letters, digits and _ only")
    for sub in ("nginx/tmp", "run", "logs"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    settings = {"port": args.port, "preview_port": args.preview_port, "schema": args.schema,
                "ports": {"blue": args.blue_port, "green": args.green_port},
                "database_url": args.database_url, "gunicorn": args.gunicorn}
    (state / "stack.json").write_text(json.dumps(settings, indent=2) + "\n")
    # The runbook's vars for this stack (tminus ... --var-file STATE/vars.json): JSON is YAML.
    runbook_vars = {k: settings[k] for k in ("port", "preview_port", "ports", "schema", "database_url", "gunicorn")}
    (state / "vars.json").write_text(json.dumps(runbook_vars, indent=2) + "\n")
    schema = args.schema
    database(settings, f"CREATE SCHEMA IF NOT EXISTS {schema};"
                       f"CREATE TABLE IF NOT EXISTS {schema}.greeting (id int PRIMARY KEY, body text NOT NULL);"
                       f"INSERT INTO {schema}.greeting VALUES (1, 'hello from PostgreSQL') ON CONFLICT DO NOTHING")
    say(f"database: {schema}.greeting ready")
    conf = (HERE / "nginx" / "nginx.conf.in").read_text().format(
        state=state, port=args.port, user="user root;\n" if os.geteuid() == 0 else "")
    (state / "nginx" / "nginx.conf").write_text(conf)
    # The first routing.conf: all traffic to blue. From here on only tminus rewrites it.
    upstreams = {c: [f"127.0.0.1:{p}"] for c, p in settings["ports"].items()}
    routing = state / "nginx" / "routing.conf"
    routing.write_text(nginx_conf.render(RoutingState({"blue": 100, "green": 0}), upstreams, routing,
                                         preview_listen=f"127.0.0.1:{args.preview_port}"))
    start_app(state, settings, "blue", args.release)
    out = subprocess.run([NGINX, "-c", str(state / "nginx" / "nginx.conf")], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"stack: nginx did not start: {out.stderr.strip()}")
    if not wait_http(f"http://127.0.0.1:{args.port}/", 30):
        raise SystemExit(f"stack: nginx does not serve on {args.port}: {(state / 'nginx' / 'error.log').read_text()}")
    say(f"nginx serves 127.0.0.1:{args.port} (preview 127.0.0.1:{args.preview_port}), master {nginx_master(state)}")


def cmd_status(state: Path, args: argparse.Namespace) -> None:
    settings = load(state)
    for color in COLORS:
        pid = read_pid(state / "run" / f"{color}.pid")
        running = pid is not None and alive(pid)
        print(f"{color:5} port {settings['ports'][color]}: " + (f"running (pid {pid})" if running else "stopped"))
    print(f"nginx master: {nginx_master(state) or 'not running'}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings['port']}/", timeout=5) as resp:
            print(f"site 127.0.0.1:{settings['port']}: {resp.status} {resp.headers.get('X-Release')}")
    except (urllib.error.URLError, OSError) as exc:
        print(f"site 127.0.0.1:{settings['port']}: {exc}")


def cmd_down(state: Path, args: argparse.Namespace) -> None:
    if not (state / "stack.json").exists():
        return
    settings = load(state)
    for color in COLORS:
        pid = read_pid(state / "run" / f"{color}.pid")
        if pid is not None and alive(pid):
            stop_group(pid, 10)
            say(f"stopped {color} (pid {pid})")
    master = nginx_master(state)
    if master is not None:
        os.kill(master, signal.SIGQUIT)  # graceful: the master named by our pid file, nothing else
        deadline = time.monotonic() + 15
        while alive(master) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(master):
            os.kill(master, signal.SIGKILL)
        say(f"stopped nginx (master {master})")
    with contextlib.suppress(Exception):
        database(settings, f"DROP SCHEMA IF EXISTS {settings['schema']} CASCADE")
        say(f"dropped schema {settings['schema']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", type=Path, default=HERE / "state",
                        help="the state folder (default: state/ beside this file, where the runbook looks)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up")
    up.add_argument("--port", type=int, default=int(os.environ.get("BG_PORT", 8480)))
    up.add_argument("--preview-port", type=int, default=int(os.environ.get("BG_PREVIEW_PORT", 8481)))
    up.add_argument("--blue-port", type=int, default=int(os.environ.get("BG_BLUE_PORT", 8401)))
    up.add_argument("--green-port", type=int, default=int(os.environ.get("BG_GREEN_PORT", 8402)))
    up.add_argument("--release", default="v1")
    up.add_argument("--schema", default=os.environ.get("BG_SCHEMA", "bluegreen"))
    up.add_argument("--database-url", default=os.environ.get("DATABASE_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    up.add_argument("--gunicorn", default=str(Path(sys.executable).parent / "gunicorn"))
    sub.add_parser("status")
    sub.add_parser("down")
    args = parser.parse_args()
    state = args.state.resolve()
    {"up": cmd_up, "status": cmd_status, "down": cmd_down}[args.command](state, args)


if __name__ == "__main__":
    main()
