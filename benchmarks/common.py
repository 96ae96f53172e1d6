"""What the benchmarks share: the machine they ran on, its load, the ledger a run wrote, their
Markdown section in docs/performance.md, and a series of measurements."""

from __future__ import annotations

import math
import os
import platform
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"


@dataclass
class Series:
    """Several measurements of one thing, in seconds."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def p95(self) -> float:
        """Nearest rank: the smallest value that at least 95 % of the values do not exceed."""
        ordered = sorted(self.values)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)


def machine_facts(extra: str = "") -> list[str]:
    """Date, CPU, Python, SQLite and tminus versions, as Markdown list items."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        nproc = str(os.cpu_count())
    from importlib.metadata import version

    return [
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: `nproc` = {nproc}, CPU: {model}, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({sys.executable}), SQLite {sqlite3.sqlite_version}, "
        f"tminus {version('tminus')}{extra}",
    ]


def machine_cpu_seconds() -> float:
    """CPU time all processes on the machine have used since boot (from /proc/stat), 0 if unknown."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait is busy.
    busy = sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4))
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this process and of every child it has waited for (tminus, shells, servers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def bench_env() -> dict[str, str]:
    """The environment of a benchmarked `tminus`: none of the caller's TMINUS_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMINUS_")}
    env["TMINUS_OPERATOR"] = "bench"
    return env


@contextmanager
def workdir(runbook: str, prefix: str = "tminus-bench-") -> Iterator[Path]:
    """A fresh temporary directory (so a fresh SQLite ledger) holding runbook.yaml."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        path = Path(tmp)
        (path / "runbook.yaml").write_text(runbook, encoding="utf-8")
        yield path


def ledger_events(cwd: Path, run_id: str) -> list[Any]:
    """The run's events from the SQLite ledger that `tminus` wrote in `cwd`."""
    from tminus.ledger import open_ledger

    ledger = open_ledger(f"sqlite:///{cwd / '.tminus' / 'ledger.db'}")
    try:
        return list(ledger.events(run_id))
    finally:
        ledger.close()


def parse_at(at: str) -> float:
    """A ledger timestamp (ISO 8601, milliseconds, truncated) as epoch seconds."""
    return datetime.fromisoformat(at).timestamp()


def write_section(start: str, end: str, results: str, missing: str) -> None:
    """Replace what is between the `start` and `end` markers of docs/performance.md by `results`;
    without the markers, append `missing` (a heading and text) followed by them."""
    block = f"{start}\n{results.rstrip()}\n{end}"
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Performance\n"
    if start in text and end in text and text.index(start) < text.index(end):
        pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + f"\n\n{missing.strip()}\n\n{block}\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text, encoding="utf-8")


def serve_until_stdin_closes(server: ThreadingHTTPServer, lifetime: float) -> None:
    """A benchmark's `--serve` mode: print the port, serve until the parent closes stdin (or dies)
    or `lifetime` seconds pass, whatever happens to the parent."""
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    done = threading.Event()

    def watch_stdin() -> None:
        sys.stdin.read()  # returns when the parent closes the pipe or dies
        done.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    done.wait(lifetime)
    server.shutdown()


@contextmanager
def spawned_server(script: Path) -> Iterator[tuple[int, int]]:
    """Run `script --serve` as its own process (so it never competes for our GIL): (port, pid)."""
    proc = subprocess.Popen(
        [sys.executable, str(script), "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # EOF (empty) if the server died
        if not line.strip().isdigit():
            raise SystemExit("benchmark: the local HTTP server did not start")
        port = int(line)
        deadline = time.monotonic() + 10
        while True:  # bounded: 10 s
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port, proc.pid
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
