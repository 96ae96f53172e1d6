"""tminus performance benchmark: run it with `.venv/bin/python benchmarks/run.py` from the repo root.

It measures engine overhead per step, HTTP checks against a local server, CLI start-up and the
ledger's append cost, prints the results as Markdown and writes them into docs/performance.md
between the `<!-- results:start -->` and `<!-- results:end -->` markers (the prose around them is
kept). Options: `--reps N` (repetitions of each whole-process measurement, default 7) and
`--no-write` (print only).

Everything it starts listens on 127.0.0.1 only, lives in a temporary directory, and is bounded in
count (the repetitions) and in time (a timeout on every subprocess and an overall deadline).
Internal: `run.py --serve` is the local HTTP server, started as a separate process.

Issue 15's cases (tminus beside its floors: empty run, validate/plan, 200 HTTP checks, per-step cost
on SQLite and PostgreSQL, a 5,000-step run) run instead with `--floors` or `--case NAME`; see floors.py.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import floors
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

START_MARK = "<!-- results:start -->"
END_MARK = "<!-- results:end -->"

PYTHON = sys.executable
_SCRIPT = Path(PYTHON).parent / "tminus"
TMINUS: list[str] = [str(_SCRIPT)] if _SCRIPT.exists() else [PYTHON, "-m", "tminus"]

STEPS = 200  # steps per runbook (parts 1 and 2)
APPENDS = 2000  # ledger appends per repetition (part 4)
LEDGER_REPS = 3
STARTUP_REPS = 20  # `tminus --version` / `--help` runs
PROC_TIMEOUT = 120.0  # seconds, any one subprocess
TOTAL_BUDGET = 300.0  # seconds, the whole benchmark (it normally needs about one minute)
SERVER_LIFETIME = 600.0  # seconds: the HTTP server exits by itself after this, whatever happens
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
IMPORT_FLOOR = "import tminus.cli.app, httpx, sqlalchemy, pydantic, jinja2, ruamel.yaml"

# Targets (seconds, or seconds per unit).
TARGET_STEP_OVERHEAD = 0.002
TARGET_HTTP_200 = 0.5
TARGET_STARTUP = 0.150

_deadline = time.monotonic() + TOTAL_BUDGET


def check_deadline() -> None:
    if time.monotonic() > _deadline:
        raise SystemExit(f"benchmark: over its {TOTAL_BUDGET:.0f}s budget, stopping")


# --- statistics and formatting -------------------------------------------------------------------


def fmt(seconds: float, unit: str = "ms") -> str:
    if unit == "us":
        return f"{seconds * 1e6:.0f} µs"
    if unit == "s":
        return f"{seconds:.2f} s"
    value = seconds * 1e3
    return f"{value:.2f} ms" if abs(value) < 10 else f"{value:.0f} ms"


def row(name: str, s: Series, unit: str = "ms", target: float | None = None, note: str = "") -> str:
    spread = f"{fmt(s.low, unit)} .. {fmt(s.high, unit)}"
    if target is None:
        goal, met = "", ""
    else:
        goal = f"< {fmt(target, unit)}"
        met = "**yes**" if s.median < target else "**no**"
    return f"| {name} | {fmt(s.median, unit)} | {spread} | {goal} | {met} | {note} |"


TABLE_HEAD = "| Measurement | Median | Min .. max | Target | Met | Note |\n|---|---:|---:|---|---|---|"


# --- processes -----------------------------------------------------------------------------------


def timed(cmd: Sequence[str], cwd: Path | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall time of one whole process, from spawn to exit."""
    check_deadline()
    start = time.perf_counter()
    proc = subprocess.run(
        list(cmd), cwd=cwd, env=bench_env(), capture_output=True, text=True, timeout=PROC_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    return time.perf_counter() - start, proc


def run_tminus(args: Sequence[str], cwd: Path) -> tuple[float, str]:
    """Time `tminus ARGS --json`; the run must complete. Returns (seconds, run id)."""
    elapsed, proc = timed([*TMINUS, *args, "--json"], cwd=cwd)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {}
    if proc.returncode != 0 or result.get("status") != "completed":
        raise SystemExit(f"benchmark: `tminus {' '.join(args)}` did not complete (exit {proc.returncode})\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed, str(result["run_id"])


def span(events: list[Any], first_type: str, last_type: str, section: str | None = None) -> float:
    """From the first `first_type` event to the last `last_type` event (of `section` if given)."""
    def pick(kind: str) -> list[Any]:
        return [e for e in events if e.type == kind and (section is None or e.data.get("section") == section)]

    return parse_at(pick(last_type)[-1].at) - parse_at(pick(first_type)[0].at)


def phase_runbook(name: str, step: str, count: int) -> str:
    lines = [f"name: {name}", "phases:", "  - name: p", "    steps:"]
    lines += [f"      - {step}"] * count
    return "\n".join(lines) + "\n"


def gate_runbook(name: str, check: str, count: int) -> str:
    lines = [f"name: {name}", "gates:", "  - name: g", "    checks:"]
    lines += [f"      - {check}"] * count
    return "\n".join(lines) + "\n"


# --- 1. engine overhead per step -----------------------------------------------------------------


def bench_engine(reps: int) -> list[str]:
    whole, phase, first, shell, pyloop, one_whole, one_start = (Series() for _ in range(7))
    many = phase_runbook("bench-steps", 'run: "true"', STEPS)
    single = phase_runbook("bench-one-step", 'run: "true"', 1)
    for _ in range(reps):
        with workdir(many) as cwd:
            elapsed, run_id = run_tminus(["run", "runbook.yaml"], cwd)
            events = ledger_events(cwd, run_id)
            whole.add(elapsed)
            phase.add(span(events, "step.started", "step.finished"))
            first.add(next(e for e in events if e.type == "step.finished").data["duration_ms"] / 1e3)
        with workdir(single) as cwd:
            elapsed, run_id = run_tminus(["run", "runbook.yaml"], cwd)
            events = ledger_events(cwd, run_id)
            step = next(e for e in events if e.type == "step.finished").data["duration_ms"] / 1e3
            one_whole.add(elapsed)
            one_start.add(elapsed - step)
        elapsed, proc = timed(["bash", "-c", f"for i in $(seq {STEPS}); do /bin/sh -c true; done"])
        if proc.returncode != 0:
            raise SystemExit(f"benchmark: the shell loop failed: {proc.stderr}")
        shell.add(elapsed)
        check_deadline()
        start = time.perf_counter()
        for _ in range(STEPS):
            subprocess.run(["/bin/sh", "-c", "true"], check=True, timeout=PROC_TIMEOUT)
        pyloop.add(time.perf_counter() - start)
    per_step = Series([(p - s) / STEPS for p, s in zip(phase.values, shell.values, strict=True)])
    per_step_py = Series([(p - s) / STEPS for p, s in zip(phase.values, pyloop.values, strict=True)])
    return [
        f"### 1. Engine overhead per step ({STEPS} x `run: \"true\"` in one phase, fresh SQLite ledger)",
        "",
        TABLE_HEAD,
        row("`tminus run`, whole process", whole),
        row("the phase (first step.started → last step.finished)", phase),
        row("  of which the first step (warm-up)", first, note="its `duration_ms`"),
        row(f"shell loop: {STEPS} x `/bin/sh -c true` (bash)", shell),
        row(f"Python loop: {STEPS} x `subprocess.run` (one process)", pyloop),
        row("**overhead per step** = (phase - shell loop) / 200", per_step, target=TARGET_STEP_OVERHEAD,
            note="ledger writes included"),
        row("overhead per step vs the Python loop", per_step_py, note="(phase - Python loop) / 200"),
        row("`tminus run` of a 1-step runbook, whole process", one_whole),
        row("start-up + runbook load + ledger open/close", one_start, note="1-step run minus that step"),
        "",
    ]


# --- 2. HTTP checks against a local server -------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: httpx reuses the connection
    disable_nagle_algorithm = True
    body = b'{"ok": true, "service": "bench"}'

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve() -> None:
    """The `--serve` mode: print the port, serve until stdin closes or SERVER_LIFETIME passes."""
    serve_until_stdin_closes(ThreadingHTTPServer(("127.0.0.1", 0), _Handler), SERVER_LIFETIME)


@contextmanager
def http_server() -> Iterator[int]:
    with spawned_server(Path(__file__).resolve()) as (port, _pid):
        yield port


def http_check(port: int) -> str:
    return (f'{{http: {{url: "http://127.0.0.1:{port}/health"}}, '
            """expect: ["status == 200", 'jsonpath "$.ok" == true']}""")


def bench_http(reps: int, port: int) -> list[str]:
    seq_whole, seq_phase, gate_whole, gate_section, floor, bare = (Series() for _ in range(6))
    sequential = phase_runbook("bench-http-seq", http_check(port), STEPS)
    concurrent = gate_runbook("bench-http-gate", http_check(port), STEPS)
    for _ in range(reps):
        with workdir(sequential) as cwd:
            elapsed, run_id = run_tminus(["run", "runbook.yaml"], cwd)
            seq_whole.add(elapsed)
            seq_phase.add(span(ledger_events(cwd, run_id), "step.started", "step.finished"))
        with workdir(concurrent) as cwd:
            elapsed, run_id = run_tminus(["gate", "runbook.yaml"], cwd)
            gate_whole.add(elapsed)
            gate_section.add(span(ledger_events(cwd, run_id), "section.started", "section.finished", "gates"))
        for series, code in ((floor, IMPORT_FLOOR), (bare, "pass")):
            elapsed, proc = timed([PYTHON, "-c", code])
            if proc.returncode != 0:
                raise SystemExit(f"benchmark: `python -c {code!r}` failed: {proc.stderr}")
            series.add(elapsed)
    return [
        f"### 2. {STEPS} HTTP checks against a local keep-alive server (127.0.0.1)",
        "",
        "Each check: `GET /health` with `expect: [\"status == 200\", 'jsonpath \"$.ok\" == true']`.",
        "",
        TABLE_HEAD,
        row(f"(a) sequential: `tminus run`, one phase of {STEPS} steps, whole process", seq_whole, "s",
            TARGET_HTTP_200),
        row("  of which the phase (first step.started → last step.finished)", seq_phase),
        row(f"(b) concurrent: `tminus gate`, one gate of {STEPS} checks, whole process", gate_whole, "s",
            TARGET_HTTP_200),
        row("  of which the gates section (section.started → section.finished)", gate_section),
        row("import floor: `python -c \"import tminus.cli.app, httpx, sqlalchemy, pydantic, jinja2, "
            "ruamel.yaml\"`", floor),
        row("bare interpreter: `python -c pass` (venv, site-packages)", bare),
        "",
    ]


def import_breakdown(port: int) -> list[str]:
    """Self import time per top-level package of a real `tminus gate` (HTTP checks), by -X importtime."""
    with workdir(gate_runbook("bench-imports", http_check(port), 1)) as cwd:
        _, proc = timed([PYTHON, "-X", "importtime", "-m", "tminus", "gate", "runbook.yaml", "--json"], cwd=cwd)
    by_root: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \| \s*(\S+)", line)
        if m:
            root = m.group(2).split(".")[0]
            by_root[root] = by_root.get(root, 0) + int(m.group(1))
    total = sum(by_root.values())
    top = sorted(by_root.items(), key=lambda kv: kv[1], reverse=True)[:10]
    lines = [
        "#### Imports (`python -X importtime -m tminus gate`, 1 HTTP check, one run)",
        "",
        f"Total self import time: **{total / 1e3:.0f} ms** (-X importtime inflates it a little). Self time "
        "per top-level package; a module's own body counts for its package (building tminus's pydantic "
        "models counts for `tminus`):",
        "",
        "| Package | Self import time | Share |",
        "|---|---:|---:|",
    ]
    lines += [f"| `{name}` | {us / 1e3:.0f} ms | {100 * us / total:.0f} % |" for name, us in top]
    lines.append("")
    return lines


def bench_load(reps: int, port: int) -> list[str]:
    """Loading (parse + validate) the 200-step runbooks in this process, modules already imported."""
    from ruamel.yaml import YAML

    from tminus.runbook.loader import load_runbook

    lines = [
        "#### Runbook load, in-process (modules already imported)",
        "",
        TABLE_HEAD,
    ]
    for label, text in ((f"{STEPS} x `run: \"true\"` (block style)", phase_runbook("l", 'run: "true"', STEPS)),
                        (f"{STEPS} x the HTTP check (flow style)", phase_runbook("l", http_check(port), STEPS))):
        load, parse = Series(), Series()
        with workdir(text) as cwd:
            path = cwd / "runbook.yaml"
            load_runbook(path)  # warm-up
            for _ in range(reps):
                check_deadline()
                gc.collect()  # so neither figure pays for the other's garbage
                start = time.perf_counter()
                load_runbook(path)
                load.add(time.perf_counter() - start)
                yaml = YAML(typ="rt")
                yaml.preserve_quotes = True
                gc.collect()
                start = time.perf_counter()
                yaml.load(text)
                parse.add(time.perf_counter() - start)
        lines.append(row(f"`load_runbook()`: {label}", load))
        lines.append(row("  of which the ruamel.yaml round-trip parse alone", parse, note="`YAML(typ=\"rt\")`"))
    lines.append("")
    return lines


# A child process: import the CLI, run a runbook once (lazy imports happen), then `reps` more times.
_WARM_CODE = r"""
import io, json, os, sys, tempfile, time
from pathlib import Path
from tminus.cli.app import cli

def once(text):
    with tempfile.TemporaryDirectory(prefix="tminus-bench-") as tmp:
        Path(tmp, "runbook.yaml").write_text(text, encoding="utf-8")
        os.chdir(tmp)
        out, err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = io.StringIO()
        code = None
        start = time.perf_counter()
        try:
            cli(["run", "runbook.yaml", "--json"], prog_name="tminus")
        except SystemExit as exc:
            code = exc.code
        finally:
            elapsed = time.perf_counter() - start
            sys.stdout, sys.stderr = out, err
            os.chdir("/")
        if code not in (0, None):
            raise SystemExit("warm run failed, exit %s" % code)
        return elapsed

text, reps = sys.argv[1], int(sys.argv[2])
first = once(text)
print(json.dumps({"first": first, "warm": [once(text) for _ in range(reps)]}))
"""


def bench_warm(reps: int) -> list[str]:
    """What a run costs once every module is imported: the same CLI, called again in one process."""
    first, warm = Series(), Series()
    _, proc = timed([PYTHON, "-c", _WARM_CODE, phase_runbook("bench-warm", 'run: "true"', 1), str(reps)])
    if proc.returncode != 0:
        raise SystemExit(f"benchmark: the in-process runs failed: {proc.stderr[-2000:]}")
    data = json.loads(proc.stdout)
    first.add(data["first"])
    for value in data["warm"]:
        warm.add(value)
    return [
        "#### A 1-step run inside one Python process (`tminus.cli.app` imported beforehand)",
        "",
        TABLE_HEAD,
        row("first run (imports the loader, ledger, SQLAlchemy... lazily)", first, note="one run"),
        row("the same run again: no imports left", warm, note="runbook load, ledger open/close, run"),
        "",
    ]


# --- 3. CLI start-up -----------------------------------------------------------------------------


def bench_startup() -> list[str]:
    version, helptext = Series(), Series()
    for _ in range(STARTUP_REPS):
        for series, arg in ((version, "--version"), (helptext, "--help")):
            elapsed, proc = timed([*TMINUS, arg])
            if proc.returncode != 0:
                raise SystemExit(f"benchmark: `tminus {arg}` failed: {proc.stderr}")
            series.add(elapsed)
    return [
        f"### 3. CLI start-up ({STARTUP_REPS} runs each)",
        "",
        TABLE_HEAD,
        row("`tminus --version`", version, target=TARGET_STARTUP),
        row("`tminus --help`", helptext, note="no target of its own"),
        "",
    ]


# --- 4. ledger append cost -----------------------------------------------------------------------


def _step_data(i: int) -> dict[str, Any]:
    """Event data the size and shape of a real step.finished event (about 700 bytes of JSON)."""
    return {
        "attempts": 1, "duration_ms": 1.2, "kind": "run", "message": "", "name": "run step",
        "section": "phase:p", "status": "ok",
        "evidence": {"command": "true", "duration_ms": 1.1, "exit_code": 0, "pid": 1000 + i, "stderr": "",
                     "stdout": ""},
        "outputs": {"exit_code": 0, "stderr": "", "stdout": ""},
        "verdicts": [{"actual": 0, "assertion": "exit_code == 0", "expected": "== 0",
                      "location": f"runbook.yaml:{5 + i}:9", "message": "", "ok": True}],
    }


def measure_appends(url: str, reps: int) -> tuple[Series, Series]:
    """Per-event append cost through a run's writer: unfenced (a gate run, which holds no lease) and
    fenced by a held lease (every other run: each append also checks the lease's token and generation)."""
    from tminus.events import Event
    from tminus.ledger import open_ledger

    plain, fenced = Series(), Series()
    ledger = open_ledger(url)
    try:
        for rep in range(reps):
            for series, with_lease in ((plain, False), (fenced, True)):
                check_deadline()
                run_id = f"bench-{rep}-{secrets.token_hex(4)}"
                ledger.create_run(
                    run_id=run_id, runbook_name="bench-ledger", runbook_path="runbook.yaml", content_hash="0" * 64,
                    runbook_text="name: bench-ledger\n", environment="default", operator="bench",
                    host=platform.node(), pid=os.getpid(),
                )
                lease = ledger.acquire_lease(f"bench-ledger@{run_id}", run_id=run_id, operator="bench",
                                             host=platform.node(), pid=os.getpid()) if with_lease else None
                writer = ledger.open_writer(run_id, fence=lease.fence if lease is not None else None)
                events = [Event(type="step.finished", run_id=run_id, data=_step_data(i),
                                step_key=f"phases[0].steps[{i}]") for i in range(APPENDS)]
                start = time.perf_counter()
                for event in events:
                    writer.append(event)
                series.add((time.perf_counter() - start) / APPENDS)
                if lease is not None:
                    lease.release()
    finally:
        ledger.close()
    return plain, fenced


def bench_ledger() -> list[str]:
    lines = [
        f"### 4. Ledger append cost in isolation ({APPENDS} appends x {LEDGER_REPS}, in-process)",
        "",
        TABLE_HEAD,
    ]
    with tempfile.TemporaryDirectory(prefix="tminus-bench-") as tmp:
        lite, lite_fenced = measure_appends(f"sqlite:///{Path(tmp) / 'ledger.db'}", LEDGER_REPS)
    lines.append(row("SQLite (WAL, synchronous=NORMAL), per event", lite, "us",
                     note="each append is its own transaction; unfenced (a gate run)"))
    lines.append(row("  the same, fenced by a held lease (every other run)", lite_fenced, "us",
                     note="the lease's token and generation checked in the same transaction"))
    pg_rows, pg_note = postgres_rows()
    lines += pg_rows
    lines.append("")
    if pg_note:
        lines += [pg_note, ""]
    return lines


def postgres_rows() -> tuple[list[str], str | None]:
    try:
        import psycopg
    except ImportError:
        return [], "PostgreSQL: skipped, psycopg is not installed."
    name = f"tminus_bench_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [], f"PostgreSQL: skipped, not reachable at `{PG_ADMIN_URL}` ({first})."
    try:
        found = admin.execute("SHOW server_version").fetchone()
        version = str(found[0]) if found else "?"
        try:
            admin.execute(f'CREATE DATABASE "{name}"')
        except psycopg.Error as exc:
            return [], f"PostgreSQL: skipped, cannot create a scratch database ({type(exc).__name__}: {exc})."
        try:
            pg, pg_fenced = measure_appends(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", LEDGER_REPS)
        finally:
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except psycopg.Error:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        admin.close()
    return [row(f"PostgreSQL {version.split()[0]} on 127.0.0.1 (psycopg 3), per event", pg, "us",
                note="scratch database, dropped afterwards; unfenced"),
            row("  the same, fenced by a held lease", pg_fenced, "us")], None


# --- the report ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="tminus performance benchmark")
    parser.add_argument("--reps", type=int, default=7, help="repetitions of each whole-process measurement")
    parser.add_argument("--no-write", action="store_true", help=f"print only, do not update {DOC.name}")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    floors.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return 0
    if floors.wanted(args):
        return floors.main(args)
    reps = max(1, min(args.reps, 50))
    started = time.monotonic()
    cpus = len(os.sched_getaffinity(0))
    machine_start, own_start = machine_cpu_seconds(), own_cpu_seconds()
    for name in [k for k in os.environ if k.startswith("TMINUS_")]:
        del os.environ[name]  # this process's own ledger opens (part 4): no key, no URL from outside
    sections: list[str] = [
        f"_Written by `.venv/bin/python benchmarks/run.py` (whole-process figures: {reps} repetitions; "
        "median, with min .. max)._",
        "",
        *machine_facts(),
        "",
    ]
    print("benchmark: 1. engine overhead per step ...", file=sys.stderr, flush=True)
    sections += bench_engine(reps)
    print("benchmark: 2. HTTP checks ...", file=sys.stderr, flush=True)
    with http_server() as port:
        sections += bench_http(reps, port)
        print("benchmark: 3. start-up ...", file=sys.stderr, flush=True)
        sections += bench_startup()
        print("benchmark: 4. ledger appends ...", file=sys.stderr, flush=True)
        sections += bench_ledger()
        print("benchmark: 5. where the time goes ...", file=sys.stderr, flush=True)
        sections += ["### 5. Where the whole-process time goes", ""]
        sections += import_breakdown(port)
        sections += bench_load(reps, port)
        sections += bench_warm(reps)
    sections.append(f"_The whole benchmark took {time.monotonic() - started:.0f} s._")
    wall = time.monotonic() - started
    others = (machine_cpu_seconds() - machine_start) - (own_cpu_seconds() - own_start)
    sections += [
        "",
        f"Other processes used {others:.1f} CPU-seconds during the benchmark's {wall:.0f} s "
        f"({100 * others / (wall * cpus):.0f} % of the {cpus} CPUs; this includes PostgreSQL's work for part 4).",
    ]
    if others > 0.1 * wall:
        sections.append("**Other work was running on this machine meanwhile: these figures are inflated; "
                        "run the benchmark again on a quiet machine.**")
    results = "\n".join(sections)
    print(results)
    if not args.no_write:
        write_section(START_MARK, END_MARK, results, "## Results")
        print(f"\nbenchmark: results written to {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
