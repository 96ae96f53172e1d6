#!/usr/bin/env python3
"""A bounded load generator: GET one URL over K keep-alive connections, recording every request's
status and X-Release header, until a count, a duration, a stop file or SIGTERM/SIGINT, whichever
comes first; then print a JSON summary on stdout.

    loadgen.py http://127.0.0.1:8480/ --connections 4 --rate 100 --duration 60 --stop-file STOP \
        --started-file STARTED --summary summary.json

Summary keys: total, failed, errors (no answer: refused, reset, timeout), server_errors (5xx that
are not maintenance answers), maintenance (503 with Retry-After: the proxy's planned answer, not a
failure), statuses, served (answers per X-Release), retried_stale, duration_s, first_failures,
switches (the X-Release sequence with how many answers in a row each served).

`failed` = errors + server_errors: what a user would have seen go wrong. A request sent on a reused
keep-alive connection that the server closed before answering is sent again once on a new
connection, as browsers and HTTP libraries do for idempotent requests (RFC 9112, 9.3.1): counted
in `retried_stale`, not failed. Python standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class Load:
    def __init__(self, url: str, connections: int, count: int, duration: float, rate: float,
                 stop_file: Path | None, timeout: float, started_file: Path | None = None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.connections, self.count, self.duration = connections, count, duration
        self.interval = connections / rate if rate > 0 else 0.0  # per connection
        self.stop_file, self.timeout, self.started_file = stop_file, timeout, started_file
        self.records: list[tuple[float, int | None, str | None, str | None]] = []  # at, status, release, note
        self.retried_stale = 0
        self.sent = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.started = time.monotonic()

    def _take(self) -> bool:
        with self.lock:
            if self.stop.is_set() or self.sent >= self.count:
                return False
            if time.monotonic() - self.started >= self.duration:
                return False
            if self.stop_file is not None and self.stop_file.exists():
                return False
            self.sent += 1
            return True

    def _one(self, conn: http.client.HTTPConnection | None, used: bool
             ) -> tuple[http.client.HTTPConnection | None, bool, tuple[int | None, str | None, str | None]]:
        for attempt in (1, 2):
            if conn is None:
                conn, used = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout), False
            current = conn
            try:
                current.request("GET", self.path)
                resp = current.getresponse()
                resp.read()
                result = (resp.status, resp.getheader("X-Release"), resp.getheader("Retry-After"))
                used = True
                if resp.will_close:
                    current.close()
                    return None, False, result
                return current, used, result
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                current.close()
                conn = None
                if used and attempt == 1:  # a stale keep-alive connection: once more, on a new one
                    with self.lock:
                        self.retried_stale += 1
                    continue
                return None, False, (None, None, f"{type(exc).__name__}: {exc}")
            except OSError as exc:
                current.close()
                return None, False, (None, None, f"{type(exc).__name__}: {exc}")
        raise AssertionError("unreachable")

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        used = False
        next_at = time.monotonic()
        while self._take():
            conn, used, (status, release, note) = self._one(conn, used)
            with self.lock:
                self.records.append((time.monotonic() - self.started, status, release, note))
                if len(self.records) == 1 and self.started_file is not None:
                    self.started_file.touch()  # the load is on: a caller may start what it measures
            if self.interval:
                next_at += self.interval
                pause = next_at - time.monotonic()
                if pause > 0:
                    self.stop.wait(pause)
                else:
                    next_at = time.monotonic()  # behind: do not burst to catch up
        if conn is not None:
            conn.close()

    def run(self) -> None:
        workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.connections)]
        for w in workers:
            w.start()
        for w in workers:
            while w.is_alive():
                w.join(timeout=0.2)

    def summary(self) -> dict[str, Any]:
        records = sorted(self.records)
        statuses: Counter[str] = Counter()
        served: Counter[str] = Counter()
        errors = server_errors = maintenance = 0
        failures: list[dict[str, Any]] = []
        switches: list[list[Any]] = []
        for at, status, release, note in records:
            statuses[str(status) if status is not None else "error"] += 1
            bad = status is None or (status >= 500 and not (status == 503 and note is not None))
            if status is None:
                errors += 1
            elif status == 503 and note is not None:
                maintenance += 1
            elif status >= 500:
                server_errors += 1
            if release is not None and status is not None and status < 500:
                served[release] += 1
                if switches and switches[-1][0] == release:
                    switches[-1][1] += 1
                else:
                    switches.append([release, 1])
            if bad and len(failures) < 5:
                failures.append({"at_s": round(at, 3), "status": status, "release": release, "error": note})
        return {"total": len(records), "failed": errors + server_errors, "errors": errors,
                "server_errors": server_errors, "maintenance": maintenance, "statuses": dict(statuses),
                "served": dict(served), "retried_stale": self.retried_stale,
                "duration_s": round(time.monotonic() - self.started, 3), "first_failures": failures,
                "switches": switches[:20]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections (default 4)")
    parser.add_argument("--count", type=int, default=10_000, help="at most this many requests (default 10000)")
    parser.add_argument("--duration", type=float, default=120.0, help="at most this many seconds (default 120)")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second, all connections (0: no cap)")
    parser.add_argument("--stop-file", type=Path, help="stop once this file exists")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--started-file", type=Path, help="created once the first answer arrived")
    parser.add_argument("--summary", type=Path, help="also write the summary here")
    args = parser.parse_args()
    load = Load(args.url, args.connections, args.count, args.duration, args.rate, args.stop_file, args.timeout,
                args.started_file)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: load.stop.set())
    load.run()
    text = json.dumps(load.summary(), indent=2)
    if args.summary is not None:
        tmp = args.summary.with_name(args.summary.name + ".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(args.summary)
    print(text, flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
