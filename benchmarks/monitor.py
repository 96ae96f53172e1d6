"""tminus monitoring-window benchmark: run it with `.venv/bin/python benchmarks/monitor.py` from the repo root.

It measures three things about the monitor (`monitor:` section, `tminus monitor`):

1. judge latency: from the completion of the probe that satisfies a rule (the sample's `at`) to
   the rule's firing transition being recorded in the ledger, measured in-process by a subscriber
   on the run's event bus (wall clock, microsecond resolution), with one probe and with 100 probes
   whose rules all fire in the same tick;
2. detection latency against the interval: a real `tminus monitor` subprocess watches a local
   server whose /health turns bad at a recorded moment; from that moment to the firing of a
   `consecutive: 1` and of a `consecutive: 3` rule, at intervals of 100ms, 500ms and 1s;
3. the cost of 100 http probes per interval (one rule each): per tick the wall time of the 100
   probes, ticks that overran the interval, the CPU time of the tminus process and the ledger
   writes, at 1s, 500ms and 250ms (each only if the longer one kept up) and back to back (the
   most probes per second it sustains).

It prints the results as Markdown and writes them into docs/performance.md between the
`<!-- monitor-results:start -->` and `<!-- monitor-results:end -->` markers (the prose around them
is kept; the section and its markers are appended at the end of the file on the first run).
Options: `--reps N` (runs per interval in part 2, default 5, fewer for 1s; part 1 takes
max(30, 8 x N) firings) and `--no-write` (print only).

Everything it starts listens on 127.0.0.1 only, lives in a temporary directory (fresh SQLite
ledgers), and is bounded in count and in time (a timeout on every subprocess, an overall deadline;
the whole run takes about two minutes). Internal: `monitor.py --serve` is the local HTTP server,
started as a separate process so that it never competes for this process's GIL.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from common import (
    DOC,
    ROOT,
    Series,
    bench_env,
    ledger_events,
    machine_cpu_seconds,
    machine_facts,
    own_cpu_seconds,
    parse_at,
    serve_until_stdin_closes,
    spawned_server,
    workdir,
    write_section,
)

SECTION = "## Monitoring window (issue 4)"
START_MARK = "<!-- monitor-results:start -->"
END_MARK = "<!-- monitor-results:end -->"

PYTHON = sys.executable
_SCRIPT = Path(PYTHON).parent / "tminus"
TMINUS: list[str] = [str(_SCRIPT)] if _SCRIPT.exists() else [PYTHON, "-m", "tminus"]

JUDGE_INTERVAL = 0.1  # part 1: the in-process monitor probes every 100 ms
INTERVALS = (0.1, 0.5, 1.0)  # part 2
LOAD_PROBES = 100  # part 3: probes (and rules) in one monitor section
LOAD_RUNS = ((1.0, 10.0), (0.5, 10.0), (0.25, 8.0))  # part 3: (interval, watched seconds)
SATURATION = (0.05, 6.0)  # part 3: an interval shorter than a tick, so ticks run back to back
FLIP_EVERY_TICKS = 3  # part 3: the server turns every probe bad (then good) after every 3rd tick
PROC_TIMEOUT = 60.0  # seconds, any one subprocess
TOTAL_BUDGET = 360.0  # seconds, the whole benchmark (it normally needs about two minutes)
SERVER_LIFETIME = 600.0  # seconds: the HTTP server exits by itself after this, whatever happens
CPU_POLL = 0.05  # seconds between two readings of /proc/PID/stat

TARGET_JUDGE = 0.100  # seconds: a rule fires within 100 ms of the probe that satisfies it

_deadline = time.monotonic() + TOTAL_BUDGET


def check_deadline() -> None:
    if time.monotonic() > _deadline:
        raise SystemExit(f"benchmark: over its {TOTAL_BUDGET:.0f}s budget, stopping")


# --- statistics and formatting -------------------------------------------------------------------


def ms(seconds: float, digits: int | None = None) -> str:
    value = seconds * 1e3
    if digits is None:
        digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
    return f"{value:.{digits}f} ms"


def verdict(ok: bool) -> str:
    return "**yes**" if ok else "**no**"


# --- the local server ----------------------------------------------------------------------------


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bad = 0
        self.alternate = False  # part 1: every other /health answer is bad
        self.flip_every = 0  # part 3: toggle `bad` after every this many /health answers
        self.served = 0


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: httpx reuses the connections
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.startswith("/health"):
                with state.lock:
                    state.served += 1
                    bad = state.served % 2 if state.alternate else state.bad
                    if state.flip_every and state.served % state.flip_every == 0:
                        state.bad = 1 - state.bad  # this answer keeps the old value; the next tick sees the new
                self._reply({"ok": True, "bad": bad})
            else:  # /stats
                with state.lock:
                    self._reply({"served": state.served, "bad": state.bad, "time": time.time()})

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(size) or b"{}")
            with state.lock:
                at = time.time()  # the flip: every /health answer from here on sees the new state
                state.bad = int(body.get("bad", state.bad))
                state.alternate = bool(body.get("alternate", False))
                state.flip_every = int(body.get("flip_every", 0))
                if body.get("reset"):
                    state.served = 0
            self._reply({"at": at})

    return Handler


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops SYNs when 16 probes connect at once; the client then
    # retries after a second, which would be the server's doing, not the monitor's.
    request_queue_size = 128


def serve() -> None:
    """The `--serve` mode: print the port, serve until stdin closes or SERVER_LIFETIME passes."""
    serve_until_stdin_closes(_Server(("127.0.0.1", 0), _handler(_State())), SERVER_LIFETIME)


@dataclass
class Server:
    port: int
    pid: int

    def _call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as reply:
            result: dict[str, Any] = json.loads(reply.read())
        return result

    def set(self, **state: Any) -> float:
        """Change the /health answers; returns the server's clock at the change (epoch seconds)."""
        return float(self._call("/set", state)["at"])

    def served(self) -> int:
        return int(self._call("/stats")["served"])

    def wait_served(self, count: int, proc: subprocess.Popen[bytes], limit: float = 30.0) -> None:
        """Until the server has answered `count` /health requests (bounded; fails if tminus exits)."""
        deadline = time.monotonic() + limit
        while self.served() < count:
            if proc.poll() is not None:
                raise SystemExit(f"benchmark: tminus exited ({proc.returncode}) before probing")
            if time.monotonic() > deadline:
                raise SystemExit("benchmark: tminus did not start probing in time")
            time.sleep(0.01)


@contextmanager
def http_server() -> Iterator[Server]:
    with spawned_server(Path(__file__).resolve()) as (port, pid):
        yield Server(port, pid)


# --- runbooks, processes, the ledger -------------------------------------------------------------


def monitor_runbook(name: str, port: int, interval: float, duration: float, probes: int,
                    rules: Sequence[tuple[int, str]]) -> str:
    """A runbook with only a monitor section (and a trivial rollback step). Probe i reads
    /health/i; rules are (consecutive, action), one set per probe."""
    lines = [
        f"name: {name}",
        "rollback:",
        "  - name: roll back",
        '    run: "true"',
        "monitor:",
        f"  duration: {round(duration * 1000)}ms",
        f"  interval: {round(interval * 1000)}ms",
        "  probes:",
    ]
    lines += [f'    - {{name: p{i:03d}, http: {{url: "http://127.0.0.1:{port}/health/{i}"}}}}' for i in range(probes)]
    lines.append("  rules:")
    for i in range(probes):
        for consecutive, action in rules:
            lines.append(f"    - {{name: r{i:03d}_c{consecutive}, probe: p{i:03d}, "
                         f"when: 'jsonpath \"$.bad\" == 1', consecutive: {consecutive}, action: {action}}}")
    return "\n".join(lines) + "\n"


def start_monitor(cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    """`tminus monitor runbook.yaml --no-input --json ARGS`, output to files (a pipe could fill up)."""
    check_deadline()
    with (cwd / "out.json").open("wb") as out, (cwd / "err.txt").open("wb") as err:
        return subprocess.Popen([*TMINUS, "monitor", "runbook.yaml", "--no-input", "--json", *args], cwd=cwd,
                                env=bench_env(), stdout=out, stderr=err, stdin=subprocess.DEVNULL)


def finish_monitor(proc: subprocess.Popen[bytes], cwd: Path, expect_exit: int) -> str:
    """Wait for the run (bounded), check its exit code; returns the run id."""
    try:
        proc.wait(timeout=PROC_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise SystemExit(f"benchmark: `tminus monitor` took more than {PROC_TIMEOUT:.0f}s") from None
    out = (cwd / "out.json").read_text(encoding="utf-8", errors="replace")
    try:
        result = json.loads(out)
    except ValueError:
        result = {}
    if proc.returncode != expect_exit or "run_id" not in result:
        err = (cwd / "err.txt").read_text(encoding="utf-8", errors="replace")
        raise SystemExit(f"benchmark: `tminus monitor` exited {proc.returncode}, expected {expect_exit}\n"
                         f"{out[-2000:]}\n{err[-2000:]}")
    return str(result["run_id"])


def probe_start(sample: dict[str, Any]) -> float:
    return float(sample["at"]) - float(sample["duration_ms"]) / 1e3


def is_bad(sample: dict[str, Any]) -> bool:
    return bool(((sample.get("values") or {}).get("json") or {}).get("bad") == 1)


def proc_cpu(pid: int) -> float | None:
    """user + system CPU seconds of a running process, from /proc/PID/stat (clock-tick resolution)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuPoller:
    """Reads the CPU time of some processes every CPU_POLL seconds, with the wall clock."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.readings: dict[str, list[tuple[float, float]]] = {name: [] for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            for name, pid in self.pids.items():
                cpu = proc_cpu(pid)
                if cpu is not None:
                    self.readings[name].append((now, cpu))
            self._stop.wait(CPU_POLL)

    def __enter__(self) -> CpuPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def between(self, name: str, start: float, end: float) -> float:
        """CPU seconds used between two wall-clock moments (the nearest readings at or inside them)."""
        readings = self.readings[name]
        inside = [cpu for at, cpu in readings if start <= at <= end]
        before = [cpu for at, cpu in readings if at < start]
        first = before[-1] if before else (inside[0] if inside else 0.0)
        last = inside[-1] if inside else first
        return last - first


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- 1. judge latency, in-process ----------------------------------------------------------------


@dataclass
class Judged:
    """The firing transitions of one in-process monitor run, each split into its parts (seconds)."""

    total: Series = field(default_factory=Series)  # probe completed -> firing transition stored
    sample_write: Series = field(default_factory=Series)  # probe completed -> its sample event stored
    judging: Series = field(default_factory=Series)  # sample stored -> transition event created
    transition_write: Series = field(default_factory=Series)  # transition event created -> stored
    by_ledger: Series = field(default_factory=Series)  # the ledger's `at` (ms, truncated) - sample at
    resolved: Series = field(default_factory=Series)  # probe completed -> resolved transition stored
    by_position: dict[int, Series] = field(default_factory=dict)  # quarter of the probe list -> total


def judge_inprocess(server: Server, probes: int, interval: float, duration: float, **state: Any) -> Judged:
    """A monitor inside this process (Session.watch, as `tminus monitor` drives it, SQLite ledger)
    with one `consecutive: 1` notify rule per probe. A subscriber placed right after the ledger on
    the run's event bus reads the wall clock as each event reaches it, i.e. once it is stored."""
    from tminus.engine.context import Options
    from tminus.engine.session import Session
    from tminus.ledger import open_ledger
    from tminus.runbook.loader import load_runbook

    check_deadline()
    text = monitor_runbook("bench-judge", server.port, interval, duration, probes, [(1, "notify")])
    seen: dict[tuple[str, float], float] = {}  # (probe, sample at) -> when its monitor.sample was stored
    moves: list[dict[str, Any]] = []

    def subscriber(event: Any) -> None:
        now, mono = time.time(), time.monotonic()  # first, before anything else
        if event.type == "monitor.sample":
            seen[(event.data["probe"], event.data["at"])] = now
        elif event.type == "monitor.transition":
            moves.append({"to": event.data["to"], "probe": event.data["probe"], "at": event.data["sample"]["at"],
                          "recorded": now, "created": now - (mono - event.monotonic),
                          "ledger_at": parse_at(event.at)})

    with workdir(text, "tminus-bench-monitor-") as cwd:
        doc = load_runbook(cwd / "runbook.yaml")
        ledger = open_ledger(f"sqlite:///{cwd / 'ledger.db'}")
        server.set(reset=True, **state)
        try:
            session = Session(doc, ledger, Options(environment="default", operator="bench", no_input=True),
                              [subscriber])
            result = session.watch()
        finally:
            server.set(bad=0)
            ledger.close()
    if result.status != "completed":
        raise SystemExit(f"benchmark: the in-process monitor ended {result.status}: {result.reason}")
    out = Judged()
    for m in moves:
        if m["to"] == "resolved":
            out.resolved.add(m["recorded"] - m["at"])
        if m["to"] != "firing":
            continue
        stored = seen[(m["probe"], m["at"])]
        out.total.add(m["recorded"] - m["at"])
        out.sample_write.add(stored - m["at"])
        out.judging.add(m["created"] - stored)
        out.transition_write.add(m["recorded"] - m["created"])
        out.by_ledger.add(m["ledger_at"] - m["at"])
        quarter = int(m["probe"][1:]) * 4 // probes
        out.by_position.setdefault(quarter, Series()).add(m["recorded"] - m["at"])
    if len(out.total.values) < 10:
        raise SystemExit(f"benchmark: only {len(out.total.values)} firings in the in-process monitor")
    return out


def bench_judge(server: Server, firings: int) -> tuple[list[str], Judged, Judged]:
    """(a) one probe every 100 ms whose answers alternate bad/good: the rule fires on every other
    probe and resolves on the next; (b) 100 probes every second, one rule each, all turned bad at
    once after the 3rd tick (and good after the 6th)."""
    one = judge_inprocess(server, 1, JUDGE_INTERVAL, (2 * firings + 3) * JUDGE_INTERVAL, bad=0, alternate=True)
    many = judge_inprocess(server, LOAD_PROBES, 1.0, 7.0, bad=0, flip_every=LOAD_PROBES * FLIP_EVERY_TICKS)
    head = ["(a) 1 probe, every 100 ms", f"(b) {LOAD_PROBES} probes, every 1 s"]

    def line(label: str, a: Series, b: Series, target: bool = False) -> str:
        cells = [f"{ms(s.median)} / {ms(s.p95)} / {ms(s.high)}" for s in (a, b)]
        if target:
            cells = [f"**{c}**" for c in cells]
            cells += [f"< {ms(TARGET_JUDGE, 0)}", " / ".join(verdict(s.high < TARGET_JUDGE) for s in (a, b))]
        else:
            cells += ["", ""]
        return f"| {label} | " + " | ".join(cells) + " |"

    quarters = sorted(many.by_position)
    lines = [
        f"#### 1. Judge latency (in-process: {len(one.total.values)} + {len(many.total.values)} firings)",
        "",
        "From the completion of the probe that satisfies the rule (the sample's `at`) to the firing "
        "`monitor.transition` event being stored in the SQLite ledger. The monitor runs inside the "
        "benchmark's process (`Session.watch()`, which `tminus monitor` calls), and a subscriber placed "
        "right after the ledger on the run's event bus reads the wall clock (`time.time()`, microsecond "
        "resolution) as each event reaches it. Every probe has one `consecutive: 1` rule, "
        "`action: notify` (the firing does not end the run). (a): the server's answers alternate "
        "bad/good, so the rule fires on every other probe and resolves on the next. "
        f"(b): all {LOAD_PROBES} probes turn bad at once after the 3rd tick: {LOAD_PROBES} rules fire "
        "in the same tick.",
        "",
        f"| Median / p95 / max | {head[0]} | {head[1]} | Target | Met (a / b) |",
        "|---|---:|---:|---|---|",
        line("**judge latency**: probe completed → firing transition stored", one.total, many.total, True),
        line("  probe completed → its `monitor.sample` event stored (probe thread)", one.sample_write,
             many.sample_write),
        line("  sample stored → transition event created (judged in the probe's thread)", one.judging,
             many.judging),
        line("  transition event created → stored (the ledger append)", one.transition_write,
             many.transition_write),
        line("the same total from the ledger's `at` (ms resolution, truncated)", one.by_ledger, many.by_ledger),
        line("resolving: probe completed → resolved transition stored", one.resolved, many.resolved),
        "| (b) by the probe's place in the list: median of "
        + ", ".join(f"p{q * LOAD_PROBES // 4:03d}-p{(q + 1) * LOAD_PROBES // 4 - 1:03d}" for q in quarters)
        + " | | " + " / ".join(ms(many.by_position[q].median) for q in quarters) + " | | |",
        "",
    ]
    return lines, one, many


# --- 2. detection latency against the interval --------------------------------------------------


@dataclass
class Detection:
    interval: float
    flip_wait: float  # flip -> start of the first probe that saw the bad answer
    probe_ms: float  # that probe's duration_ms
    detect: dict[int, float]  # consecutive N -> firing recorded (ledger at) - flip
    judge: dict[int, float]  # consecutive N -> firing recorded - its sample's at
    rollback: float  # firing of the N=3 rule recorded -> rollback.finished
    jitter: float  # the largest |gap between two probe starts - interval|, from the 3rd probe on
    first_probe: float  # the run's first probe (duration_ms / 1000): it pays for lazy imports


def detection_run(server: Server, interval: float, rng: random.Random) -> Detection:
    text = monitor_runbook("bench-detect", server.port, interval, 60.0, 1, [(1, "notify"), (3, "rollback")])
    with workdir(text, "tminus-bench-monitor-") as cwd:
        server.set(bad=0)
        base = server.served()
        proc = start_monitor(cwd)
        try:
            server.wait_served(base + 3, proc)  # probing for a while: past start-up
            time.sleep(rng.uniform(0, interval))  # so the flip falls anywhere between two probes
            flip = server.set(bad=1)
            run_id = finish_monitor(proc, cwd, expect_exit=11)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            server.set(bad=0)
        events = ledger_events(cwd, run_id)
    samples = [e.data for e in events if e.type == "monitor.sample"]
    first_bad = next(s for s in samples if is_bad(s))
    fired = {int(e.data["rule"].rsplit("_c", 1)[1]): e for e in events
             if e.type == "monitor.transition" and e.data["to"] == "firing"}
    rolled = next(e for e in events if e.type == "rollback.finished")
    starts = [probe_start(s) for s in samples]
    return Detection(
        interval=interval,
        flip_wait=probe_start(first_bad) - flip,
        probe_ms=float(first_bad["duration_ms"]),
        detect={n: parse_at(e.at) - flip for n, e in fired.items()},
        judge={n: parse_at(e.at) - float(e.data["sample"]["at"]) for n, e in fired.items()},
        rollback=parse_at(rolled.at) - parse_at(fired[3].at),
        jitter=max(abs(b - a - interval) for a, b in itertools.pairwise(starts[2:])),
        first_probe=float(samples[0]["duration_ms"]) / 1e3,
    )


def bench_detection(server: Server, reps: int) -> tuple[list[str], list[Detection]]:
    rng = random.Random(4)
    runs: list[Detection] = []
    for interval in INTERVALS:
        count = reps if interval < 1.0 else max(1, math.ceil(reps * 0.6))
        for _ in range(count):
            runs.append(detection_run(server, interval, rng))
    lines = [
        f"#### 2. Detection latency against the interval (`tminus monitor` subprocess, {len(runs)} runs)",
        "",
        "One probe (`GET /health` on 127.0.0.1), two rules on `jsonpath \"$.bad\" == 1`: `consecutive: 1` "
        "(notify) and `consecutive: 3` (rollback, which ends the run). The benchmark turns the server bad "
        "at a random moment between two probes, a few probes into the window; **detection latency = "
        "the firing transition's ledger `at` - the moment the server turned bad** (server clock, same "
        "machine). Expected: (N-1) x interval + the wait for the next probe (0 .. 1 interval) + the probe "
        "itself + judging.",
        "",
        "| Interval | Rule | Runs | Median | Min .. max | Expected range | In range | Wait for the next probe "
        "(median) | Rest beyond the interval arithmetic (median, max) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for interval in INTERVALS:
        mine = [r for r in runs if r.interval == interval]
        probe = statistics.median(r.probe_ms for r in mine) / 1e3
        for n in (1, 3):
            detect = Series([r.detect[n] for r in mine])
            low, high = (n - 1) * interval, n * interval + probe + 0.005
            inside = sum(1 for v in detect.values if low <= v <= high)
            rest = Series([r.detect[n] - r.flip_wait - (n - 1) * r.interval for r in mine])
            lines.append(
                f"| {interval * 1000:.0f} ms | `consecutive: {n}` | {len(mine)} | **{ms(detect.median)}** | "
                f"{ms(detect.low)} .. {ms(detect.high)} | {ms(low)} .. {ms(high)} | {inside}/{len(mine)} | "
                f"{ms(statistics.median(r.flip_wait for r in mine))} | {ms(rest.median)}, {ms(rest.high)} |"
            )
    judge = Series([v for r in runs for v in r.judge.values()])
    probe_all = Series([r.probe_ms / 1e3 for r in runs])
    jitter = Series([r.jitter for r in runs])
    first_probe = Series([r.first_probe for r in runs])
    rollback = Series([r.rollback for r in runs])
    lines += [
        "",
        "The expected range's upper end adds the measured probe time and 5 ms for judging and the "
        "millisecond resolution of the ledger's `at`. \"Rest\" = detection - wait for the next probe - "
        "(N-1) x interval: what is not the interval's doing (the probe, judging, tick jitter).",
        "",
        "| In the same runs | Median | p95 | Max |",
        "|---|---:|---:|---:|",
        f"| judge latency from the ledger (firing `at` - its sample's `at`; ms resolution), "
        f"{len(judge.values)} firings | {ms(judge.median)} | {ms(judge.p95)} | {ms(judge.high)} |",
        f"| duration of the first bad probe (`duration_ms`) | {ms(probe_all.median)} | {ms(probe_all.p95)} | "
        f"{ms(probe_all.high)} |",
        f"| tick jitter: largest \\|gap between two probe starts - interval\\| per run, from the 3rd probe on "
        f"| {ms(jitter.median)} | {ms(jitter.p95)} | {ms(jitter.high)} |",
        f"| each run's first probe (`duration_ms`; it pays for importing the http kind and httpx, and at "
        f"100 ms it delays the 2nd probe) | "
        f"{ms(first_probe.median)} | {ms(first_probe.p95)} | {ms(first_probe.high)} |",
        f"| `consecutive: 3` firing → `rollback.finished` (one `run: \"true\"` step) | {ms(rollback.median)} | "
        f"{ms(rollback.p95)} | {ms(rollback.high)} |",
        "",
    ]
    return lines, runs


# --- 3. 100 probes per interval ------------------------------------------------------------------


@dataclass
class LoadRun:
    interval: float
    watched: float  # monitor.started -> monitor.finished (ledger at)
    ticks: int
    scheduled: int  # ticks the window's length had room for at this interval
    probes_time: Series  # per tick: first probe start -> last sample completed
    tick_time: Series  # per tick: first probe start -> last event of the tick stored (judging included)
    quiet: Series  # tick_time of the ticks in which no rule changed state
    moving: Series  # tick_time of the ticks in which all 100 rules changed state
    over: int  # ticks whose tick_time exceeded the interval
    delay: Series  # per tick: first probe start - (monitor.started + i x interval)
    probe_ms: Series  # duration_ms of every probe
    rate: float  # probes per second over the window
    cpu_window: float  # tminus process CPU seconds during the window
    cpu_process: float  # the whole tminus process (rusage)
    server_cpu: float  # the server's CPU seconds during the window
    events: int  # ledger events during the window
    samples: int
    ledger_bytes: int
    judge: Series  # firing transitions: stored (ledger at) - sample at

    @property
    def kept_up(self) -> bool:
        """Sustained: no tick started a whole interval late, and the rate is the nominal one (3 %)."""
        return self.delay.high < self.interval and self.rate >= 0.97 * LOAD_PROBES / self.interval


def load_run(server: Server, interval: float, watch: float, flips: bool) -> LoadRun:
    text = monitor_runbook("bench-load", server.port, interval, watch, LOAD_PROBES, [(1, "notify")])
    with workdir(text, "tminus-bench-monitor-") as cwd:
        server.set(bad=0, flip_every=LOAD_PROBES * FLIP_EVERY_TICKS if flips else 0, reset=True)
        cpu_before = children_cpu()
        proc = start_monitor(cwd)
        try:
            with CpuPoller({"tminus": proc.pid, "server": server.pid}) as poller:
                run_id = finish_monitor(proc, cwd, expect_exit=0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            server.set(bad=0)
        cpu_process = children_cpu() - cpu_before
        events = ledger_events(cwd, run_id)
        ledger_bytes = sum(p.stat().st_size for p in (cwd / ".tminus").glob("ledger.db*"))
    started = parse_at(next(e for e in events if e.type == "monitor.started").at)
    finished = parse_at(next(e for e in events if e.type == "monitor.finished").at)
    samples = sorted((e.data for e in events if e.type == "monitor.sample"), key=lambda s: s["at"])
    if len(samples) % LOAD_PROBES:
        raise SystemExit(f"benchmark: {len(samples)} samples is not a whole number of ticks")
    ticks = [samples[i:i + LOAD_PROBES] for i in range(0, len(samples), LOAD_PROBES)]
    moved = [e for e in events if e.type in ("monitor.transition", "monitor.action")]
    probes_time, tick_time, quiet, moving = Series(), Series(), Series(), Series()
    delay, over = Series(), 0
    for i, tick in enumerate(ticks):
        if len({s["probe"] for s in tick}) != LOAD_PROBES:
            raise SystemExit("benchmark: the samples do not group into ticks of one sample per probe")
        start, end = min(probe_start(s) for s in tick), max(s["at"] for s in tick)
        nxt = min(probe_start(s) for s in ticks[i + 1]) if i + 1 < len(ticks) else finished + 1
        mine = [parse_at(e.at) for e in moved if start - 0.001 <= parse_at(e.at) < nxt]
        busy = max([end, *mine]) - start
        probes_time.add(end - start)
        tick_time.add(busy)
        (moving if mine else quiet).add(busy)
        over += busy > interval
        delay.add(start - (started + i * interval))
    window = finished - started
    judge = Series([parse_at(e.at) - float(e.data["sample"]["at"]) for e in events
                    if e.type == "monitor.transition" and e.data["to"] == "firing"])
    return LoadRun(
        interval=interval, watched=window, ticks=len(ticks), scheduled=math.ceil(watch / interval - 1e-9),
        probes_time=probes_time, tick_time=tick_time, quiet=quiet, moving=moving, over=over, delay=delay,
        probe_ms=Series([s["duration_ms"] / 1e3 for s in samples]),
        rate=len(samples) / window, cpu_window=poller.between("tminus", started, finished),
        cpu_process=cpu_process, server_cpu=poller.between("server", started, finished),
        events=sum(1 for e in events if started <= parse_at(e.at) <= finished), samples=len(samples),
        ledger_bytes=ledger_bytes, judge=judge,
    )


def _spread(s: Series) -> str:
    return f"{ms(s.median)} ({ms(s.low)} .. {ms(s.high)})" if s.values else "-"


def bench_load(server: Server) -> tuple[list[str], list[LoadRun]]:
    runs: list[LoadRun] = []
    for interval, watch in LOAD_RUNS:
        if runs and not runs[-1].kept_up:
            break  # it fell behind at a longer interval: a shorter one cannot keep up either
        runs.append(load_run(server, interval, watch, flips=True))
    saturated = load_run(server, SATURATION[0], SATURATION[1], flips=False)
    lines = [
        f"#### 3. {LOAD_PROBES} http probes per interval (`tminus monitor` subprocess, one rule per probe)",
        "",
        f"{LOAD_PROBES} probes `GET /health/<i>` on 127.0.0.1, each with one `consecutive: 1` notify rule; "
        f"the monitor's pool runs up to 16 probes at a time. In the runs at 1s, 500ms and 250ms the server turns "
        f"every answer bad after every {FLIP_EVERY_TICKS}rd tick and good again {FLIP_EVERY_TICKS} ticks "
        f"later, so in those ticks all {LOAD_PROBES} rules change state (100 transitions, plus 100 "
        "`monitor.action` events when they fire). The last run asks for an interval shorter than a tick, "
        "so ticks run back to back: the most probes per second this machine sustains. Figures come from "
        "the ledger (samples' `at` and `duration_ms`, events' `at`); CPU from /proc/PID/stat every "
        f"{CPU_POLL * 1000:.0f} ms (10 ms resolution) and from `getrusage` for the whole process.",
        "",
        "| | " + " | ".join(f"interval {r.interval * 1000:.0f} ms" for r in runs)
        + f" | back to back (asked {saturated.interval * 1000:.0f} ms) |",
        "|---|" + "---:|" * (len(runs) + 1),
    ]
    every = [*runs, saturated]

    def line(label: str, values: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    line("window watched (ledger)", [f"{r.watched:.1f} s" for r in every])
    line("ticks done / the window had room for", [f"{r.ticks} / {r.scheduled}" for r in every])
    line(f"**{LOAD_PROBES} probes, wall time per tick**: median (min .. max)", [_spread(r.probes_time) for r in every])
    line("tick incl. judging and the transitions' ledger writes", [_spread(r.tick_time) for r in every])
    line("  ticks where no rule changed state", [_spread(r.quiet) for r in every])
    line(f"  ticks where all {LOAD_PROBES} rules changed state", [_spread(r.moving) for r in every])
    line("**ticks over the interval**", [f"{r.over} of {r.ticks}" for r in every])
    line("tick's first probe start behind its schedule (started + i x interval): median, max",
         [f"{ms(r.delay.median)}, {ms(r.delay.high)}" for r in runs] + ["(behind by design)"])
    line("one probe (`duration_ms`): median, p95, max",
         [f"{ms(r.probe_ms.median)}, {ms(r.probe_ms.p95)}, {ms(r.probe_ms.high)}" for r in every])
    line("**probes per second**, over the window", [f"{r.rate:.0f}" for r in every])
    line("**tminus CPU during the window** (share of one core)",
         [f"{r.cpu_window:.2f} s ({100 * r.cpu_window / r.watched:.0f} %)" for r in every])
    line("  CPU per probe (all the window's work / samples)",
         [ms(r.cpu_window / r.samples) for r in every])
    line("tminus whole process CPU (start-up and exit included, getrusage)",
         [f"{r.cpu_process:.2f} s" for r in every])
    line("the local server's CPU during the window", [f"{r.server_cpu:.2f} s" for r in every])
    line("ledger events written in the window (per second)",
         [f"{r.events} ({r.events / r.watched:.0f}/s)" for r in every])
    line("ledger files afterwards (SQLite db, WAL, shm), per sample",
         [f"{r.ledger_bytes / 2**20:.1f} MiB, {r.ledger_bytes / r.samples / 1024:.1f} KiB" for r in every])
    judge = Series([v for r in runs for v in r.judge.values])
    if judge.values:
        line(f"judge latency of the firings under load ({len(judge.values)} firings; ledger `at`): "
             "median, p95, max",
             [f"{ms(r.judge.median)}, {ms(r.judge.p95)}, {ms(r.judge.high)}" if r.judge.values else "-"
              for r in runs] + ["no rule fires"])
    sustained = [r for r in runs if r.kept_up]
    strict = [r for r in runs if not r.over]

    def best(chosen: list[LoadRun]) -> str:
        if not chosen:
            return "none of the intervals tried"
        fastest = min(chosen, key=lambda r: r.interval)
        return f"{LOAD_PROBES / fastest.interval:.0f} ({LOAD_PROBES} probes every {fastest.interval * 1000:.0f} ms)"

    lines += [
        "",
        f"**Most probes per second sustained** (no tick started a whole interval late; the nominal rate): "
        f"**{best(sustained)}**; with every single tick inside its interval: {best(strict)}. "
        f"Back to back, a tick of {LOAD_PROBES} probes takes {ms(saturated.tick_time.median)} (median): "
        f"the ceiling on this machine is about **{saturated.rate:.0f} probes per second**, with the tminus "
        f"process at {100 * saturated.cpu_window / saturated.watched:.0f} % of one core.",
        "",
    ]
    return lines, every


# --- the report ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="tminus monitoring-window benchmark")
    parser.add_argument("--reps", type=int, default=5, help="runs per interval in part 2 (fewer for 1s)")
    parser.add_argument("--no-write", action="store_true", help=f"print only, do not update {DOC.name}")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    reps = max(1, min(args.reps, 20))
    firings = max(30, 8 * reps)
    started = time.monotonic()
    cpus = len(os.sched_getaffinity(0))
    machine_start, own_start = machine_cpu_seconds(), own_cpu_seconds()
    for name in [k for k in os.environ if k.startswith("TMINUS_")]:
        del os.environ[name]  # part 1's in-process run: no ledger URL or key from outside
    sections: list[str] = [
        f"_Written by `.venv/bin/python benchmarks/monitor.py --reps {reps}`._",
        "",
        *machine_facts("; SQLite ledgers in temporary directories; the server is a "
                        "`ThreadingHTTPServer` (HTTP/1.1 keep-alive) in its own process"),
        "",
    ]
    with http_server() as server:
        print(f"benchmark: 1. judge latency ({firings} firings) ...", file=sys.stderr, flush=True)
        judge_lines, one, many = bench_judge(server, firings)
        print("benchmark: 2. detection latency against the interval ...", file=sys.stderr, flush=True)
        detect_lines, detections = bench_detection(server, reps)
        print(f"benchmark: 3. {LOAD_PROBES} probes per interval ...", file=sys.stderr, flush=True)
        load_lines, loads = bench_load(server)
    wall = time.monotonic() - started
    others = (machine_cpu_seconds() - machine_start) - (own_cpu_seconds() - own_start)
    first = next(r for r in loads if r.interval == LOAD_RUNS[0][0])

    def judged(label: str, j: Judged) -> str:
        met = "met" if j.total.high < TARGET_JUDGE else "missed"
        return (f"{label}: **{met}**, median {ms(j.total.median)}, p95 {ms(j.total.p95)}, max {ms(j.total.high)} "
                f"over {len(j.total.values)} firings")

    summary = [
        f"**Target: a rule fires within {TARGET_JUDGE * 1000:.0f} ms of the probe that satisfies it.** "
        + judged("With one probe", one) + "; " + judged(f"with {LOAD_PROBES} probes firing in the same tick", many)
        + ".",
        "",
        "Detection latency (median, `consecutive: 1` / `consecutive: 3`): "
        + "; ".join(
            f"{i * 1000:.0f} ms interval: "
            + " / ".join(ms(statistics.median(d.detect[n] for d in detections if d.interval == i)) for n in (1, 3))
            for i in INTERVALS
        ) + ".",
        "",
        f"{LOAD_PROBES} probes per tick take {ms(first.probes_time.median)} (median) and "
        f"{first.cpu_window / first.watched * 100:.0f} % of one core at a {first.interval:g}s interval.",
        "",
    ]
    sections += summary + judge_lines + detect_lines + load_lines
    sections.append(f"_The whole benchmark took {wall:.0f} s._")
    sections += [
        "",
        f"Other processes used {others:.1f} CPU-seconds during the benchmark's {wall:.0f} s "
        f"({100 * others / (wall * cpus):.0f} % of the {cpus} CPUs).",
    ]
    if others > 0.1 * wall:
        sections.append("**Other work was running on this machine meanwhile: these figures are inflated; "
                        "run the benchmark again on a quiet machine.**")
    results = "\n".join(sections)
    print(results)
    if not args.no_write:
        intro = f"{SECTION}\n\nRun `.venv/bin/python benchmarks/monitor.py`.\n\n### Results"
        write_section(START_MARK, END_MARK, results, intro)
        print(f"\nbenchmark: results written to {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
