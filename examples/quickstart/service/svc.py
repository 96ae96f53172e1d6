#!/usr/bin/env python3
"""The quickstart sample service: a notes API whose releases, schema and process this CLI manages.

State (database, current release, pid and log files, backups) lives in one directory:
--state DIR, else $QUICKSTART_STATE, else examples/quickstart/state/. Commands print the value a
script wants on stdout (a path, a release, a version) and talk to people on stderr.

    svc.py init                      database at schema 1 with three notes; release v1 current
    svc.py start | stop | status     the server for the current release, in the background
    svc.py switch v2                 make v2 current (prints the previous release)
    svc.py migrate --to 2            apply migrations (--down-to N reverts; no flag: print version)
    svc.py backup --out F | restore --from F
    svc.py serve --release v2        the server itself, in the foreground
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import process
import releases
import store

HERE = Path(__file__).resolve().parent
DEFAULT_STATE = HERE.parent / "state"
DEFAULT_PORT = 8765
EXIT_NOT_RUNNING = 3  # LSB convention for `status` of a stopped service


class Failure(Exception):
    """Reported as `svc.py: error: ...`, exit 1."""


@dataclass(frozen=True)
class State:
    root: Path
    db: Path

    @property
    def current_file(self) -> Path:
        return self.root / "current"

    @property
    def pid_file(self) -> Path:
        return self.root / "svc.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "svc.log"

    def current(self) -> str:
        try:
            return self.current_file.read_text().strip()
        except FileNotFoundError:
            raise Failure(f"no current release in {self.root}; run `svc.py init` first") from None

    def set_current(self, release: str) -> None:
        tmp = self.current_file.with_suffix(".tmp")
        tmp.write_text(release + "\n")
        tmp.replace(self.current_file)


def say(message: str) -> None:
    print(message, file=sys.stderr)


# --- commands ------------------------------------------------------------------------------


def cmd_init(st: State, args: argparse.Namespace) -> None:
    if st.db.exists() and not args.force:
        say(f"already initialized: {st.db} (release {st.current()}); --force starts over")
        return
    if args.force and process.read_pid(st.pid_file):
        raise Failure("the service is running; `svc.py stop` first")
    st.db.unlink(missing_ok=True)
    store.create(st.db)
    st.set_current("v1")
    say(f"initialized {st.db}: schema 1, {len(store.SEED_NOTES)} notes, release v1")


def cmd_start(st: State, args: argparse.Namespace) -> None:
    release = st.current()
    pid = process.read_pid(st.pid_file)
    if pid:
        say(f"already running (pid {pid}); `svc.py stop` first to serve another release")
        return
    if process.port_open(args.port):
        raise Failure(f"port {args.port} is in use by another program; choose one with --port")
    argv = [sys.executable, str(HERE / "svc.py"), "serve", "--release", release,
            "--port", str(args.port), "--db", str(st.db), "--state", str(st.root)]
    try:
        pid = process.spawn(argv, st.pid_file, st.log_file, args.port)
    except RuntimeError as exc:
        raise Failure(f"{release} did not start: {exc}") from None
    say(f"started {release} (pid {pid}) on http://127.0.0.1:{args.port}; log: {st.log_file}")


def cmd_stop(st: State, args: argparse.Namespace) -> None:
    pid = process.read_pid(st.pid_file)
    if pid is None:
        say("not running")
        return
    graceful = process.terminate(pid, args.timeout)
    st.pid_file.unlink(missing_ok=True)
    say(f"stopped pid {pid}" + ("" if graceful else f" (killed: no exit within {args.timeout:g}s)"))


def cmd_status(st: State, args: argparse.Namespace) -> int:
    import json
    import urllib.request

    pid = process.read_pid(st.pid_file)
    print(f"release: {st.current()}")
    with closing(store.connect(st.db)) as conn:
        print(f"schema:  {store.schema_version(conn)}")
    if pid is None:
        print("service: stopped")
        return EXIT_NOT_RUNNING
    print(f"service: running, pid {pid}, http://127.0.0.1:{args.port}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/health", timeout=2) as resp:
            health = json.load(resp)
        print(f"health:  {health['status']} ({health['version']})")
    except OSError as exc:
        print(f"health:  no answer ({exc})")
    return 0


def cmd_current(st: State, args: argparse.Namespace) -> None:
    print(st.current())


def cmd_switch(st: State, args: argparse.Namespace) -> None:
    try:
        releases.load(args.release)
    except LookupError as exc:
        raise Failure(str(exc)) from None
    previous = st.current() if st.current_file.exists() else "none"
    st.set_current(args.release)
    print(previous)
    say(f"current release: {args.release} (was {previous}); `svc.py stop` and `start` to serve it")


def cmd_migrate(st: State, args: argparse.Namespace) -> None:
    if args.to is not None:
        done = store.migrate_to(st.db, args.to)
        say(f"applied migrations {', '.join(map(str, done))}" if done else "nothing to apply")
    elif args.down_to is not None:
        done = store.migrate_down_to(st.db, args.down_to)
        say(f"reverted migrations {', '.join(map(str, done))}" if done else "nothing to revert")
    with closing(store.connect(st.db)) as conn:
        print(store.schema_version(conn))


def cmd_backup(st: State, args: argparse.Namespace) -> None:
    out = args.out or st.root / "backups" / time.strftime("notes-%Y%m%d-%H%M%S.db")
    print(store.backup(st.db, out))


def cmd_restore(st: State, args: argparse.Namespace) -> None:
    version = store.restore(st.db, args.source)
    say(f"restored {args.source} over {st.db} (schema {version})")


def cmd_serve(st: State, args: argparse.Namespace) -> None:
    import server

    try:
        release = releases.load(args.release or st.current())
    except LookupError as exc:
        raise Failure(str(exc)) from None
    if not st.db.exists():
        raise Failure(f"no database at {st.db}; run `svc.py init` first")
    server.serve(release, args.port, st.db, args.warmup)


# --- command line --------------------------------------------------------------------------

Command = Callable[[State, argparse.Namespace], "int | None"]


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state", type=Path, default=Path(os.environ.get("QUICKSTART_STATE", DEFAULT_STATE)),
                        help="state directory (default: $QUICKSTART_STATE or examples/quickstart/state)")
    common.add_argument("--db", type=Path, help="database file (default: STATE/notes.db)")
    port = argparse.ArgumentParser(add_help=False)
    port.add_argument("--port", type=int, default=int(os.environ.get("QUICKSTART_PORT", DEFAULT_PORT)),
                      help=f"port on 127.0.0.1 (default: $QUICKSTART_PORT or {DEFAULT_PORT})")

    top = argparse.ArgumentParser(prog="svc.py", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Command, help: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, parents=[common, *parents])
        p.set_defaults(func=func)
        return p

    add("init", cmd_init, "create the database (schema 1, sample notes); release v1").add_argument(
        "--force", action="store_true", help="start over: delete the database first")
    add("start", cmd_start, "start the current release in the background", port)
    add("stop", cmd_stop, "stop the background server (fine if it is not running)").add_argument(
        "--timeout", type=float, default=5.0, help="seconds before SIGKILL (default 5)")
    add("status", cmd_status, "release, schema, process and health; exit 3 when stopped", port)
    add("current", cmd_current, "print the current release")
    add("switch", cmd_switch, "make a release current; prints the previous one").add_argument("release")
    mig = add("migrate", cmd_migrate, "apply or revert schema migrations; prints the schema version")
    direction = mig.add_mutually_exclusive_group()
    direction.add_argument("--to", type=int, metavar="N", help="apply migrations up to N")
    direction.add_argument("--down-to", type=int, metavar="N", help="revert migrations down to N")
    add("backup", cmd_backup, "copy the database (online backup); prints the file").add_argument(
        "--out", type=Path, help="backup file (default: STATE/backups/notes-TIMESTAMP.db)")
    add("restore", cmd_restore, "copy a backup over the database").add_argument(
        "--from", dest="source", type=Path, required=True, help="backup file")
    srv = add("serve", cmd_serve, "run the server in the foreground", port)
    srv.add_argument("--release", help="release to serve (default: the current one)")
    srv.add_argument("--warmup", type=float, default=float(os.environ.get("QUICKSTART_WARMUP", 0.5)),
                     help="seconds before /readyz answers 200 (default: $QUICKSTART_WARMUP or 0.5)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    root = args.state.resolve()
    st = State(root, (args.db or root / "notes.db").resolve())
    if args.command != "serve":
        root.mkdir(parents=True, exist_ok=True)
    try:
        return args.func(st, args) or 0
    except (Failure, store.StoreError, sqlite3.Error, OSError) as exc:
        print(f"svc.py {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
