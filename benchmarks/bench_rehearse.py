"""Rehearsal overhead: `.venv/bin/python benchmarks/bench_rehearse.py [--reps 3] [--no-write]` from the
repository root (needs PostgreSQL on 127.0.0.1:5432, user postgres without a password; PGADMIN_URL for
another).

The rehearsal of examples/metrics-subsystem (`tminus rehearse runbook.yaml -e staging`: one cycle per
phase, five in all) on a scratch database at 0004 (the base schema, as the docs page rehearses it),
against the sum of its parts measured separately on the same database, service and ledger:

  rehearsal: `rehearse()` in-process, the call `tminus rehearse` makes (its record, every cycle's run
             and rollback, the fingerprints before and after each cycle, the figures read back);
  runs:      each cycle's run alone: an in-process Session with the same fault (FailAfter the phase),
             its rollback included, as `tminus run` would run it if a step had failed there;
  prints:    the fingerprints alone: `fingerprint(url)` of the database, twice per cycle;
  overhead:  rehearsal - (runs + prints), as a share of runs + prints. Target: under 10 %.

Rehearsal and parts alternate (which goes first flips each repetition) so drift in the machine's load
hits both. The whole `tminus rehearse` process is timed once per repetition too (spawned, start-up
included), beside `tminus --version`. PYTHONDONTWRITEBYTECODE is unset and src/ compiled once before
anything is timed, so no process pays for compiling tminus. The service runs on a free port with its
state in a temporary directory; the database `tminus_bench_rehearse_<random>` is dropped at the end.
Results are printed as Markdown and written into docs/performance.md between
`<!-- rehearse-results:start -->` and `<!-- rehearse-results:end -->` (`--no-write`: print only).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine_facts, write_section  # noqa: E402

EXAMPLE = ROOT / "examples" / "metrics-subsystem"
START_MARK = "<!-- rehearse-results:start -->"
END_MARK = "<!-- rehearse-results:end -->"
TARGET = 0.10
PGADMIN = os.environ.get("PGADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PGADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(tmp: Path) -> tuple[str, dict[str, str]]:
    """A scratch database at 0004 and the environment the runbook and its service read."""
    name = f"tminus_bench_rehearse_{secrets.token_hex(4)}"
    admin(f"CREATE DATABASE {name}")
    base = PGADMIN.rsplit("/", 1)[0].split("://", 1)[1]
    url = f"postgresql+psycopg://{base}/{name}"
    env = {"TASCADE_DATABASE_URL": url, "TASCADE_API_KEY": "sk-bench", "TASCADE_PORT": str(free_port()),
           "TASCADE_STATE": str(tmp / "state"), "TASCADE_PYTHON": sys.executable}
    done = subprocess.run([sys.executable, "-m", "tminus", "db", "migrate", str(EXAMPLE / "migrations"),
                           "--url", url, "--to", "0004"], capture_output=True, text=True, timeout=120, cwd=tmp)
    if done.returncode != 0:
        raise SystemExit(f"could not migrate the scratch database to 0004: {done.stderr}")
    return name, env


def rehearsal(doc: Any, ledger: Any, opts: Any) -> tuple[float, Any]:
    from tminus.engine.rehearsal.plan import plan_rehearsal
    from tminus.engine.rehearsal.rehearse import rehearse

    plan = plan_rehearsal(doc, opts)
    began = time.perf_counter()
    outcome = rehearse(doc, ledger, replace(opts), plan)
    took = time.perf_counter() - began
    if not outcome.ok:
        raise SystemExit(f"the rehearsal failed: {outcome.reason}")
    return took, outcome


def parts(doc: Any, ledger: Any, opts: Any, url: str) -> tuple[float, float]:
    """Each cycle's run with its fault, and a fingerprint before and after it (the rehearsal's order),
    each timed on its own."""
    from tminus.db.fingerprint import fingerprint
    from tminus.engine.rehearsal.faults import FailAfter
    from tminus.engine.session import Session

    runs = prints = 0.0
    base = doc.path.parent.resolve()
    for index, phase in enumerate(doc.runbook.phases):
        began = time.perf_counter()
        fingerprint(url, None, base_dir=base)
        prints += time.perf_counter() - began
        began = time.perf_counter()
        result = Session(doc, ledger, replace(opts), policy=FailAfter(index, phase.name)).run()
        runs += time.perf_counter() - began
        if result.status != "rolled_back":
            raise SystemExit(f"the run failed after '{phase.name}' ended {result.status}: {result.reason}")
        began = time.perf_counter()
        fingerprint(url, None, base_dir=base)
        prints += time.perf_counter() - began
    return runs, prints


def cli_rehearsal(env: dict[str, str], ledger_url: str) -> float:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tminus", "rehearse", str(EXAMPLE / "runbook.yaml"), "-e",
                           "staging", "--yes", "--json", "--ledger", ledger_url],
                          capture_output=True, text=True, timeout=600, env=env)
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"tminus rehearse exited {done.returncode}: {done.stderr[-2000:]}")
    record = json.loads(done.stdout)
    assert all(c["ok"] for c in record["cycles"]), record
    return took


def version_time(env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tminus", "--version"], capture_output=True, env=env, timeout=60,
                   check=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each measurement (default 3)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    # start-up sensitive: bytecode written and compiled once, before anything is timed
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "tminus")], check=True)
    from tminus.engine.context import Options
    from tminus.ledger import open_ledger
    from tminus.runbook.loader import load_runbook

    overall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tminus-bench-rehearse-") as tmp_name:
        tmp = Path(tmp_name)
        db, service_env = prepare(tmp)
        os.environ.update(service_env)  # the runbook's templates and svc.py read them
        env = {k: v for k, v in os.environ.items() if not k.startswith("TMINUS_")}
        ledger_url = f"sqlite:///{tmp / 'ledger.db'}"
        rows: list[dict[str, float]] = []
        try:
            doc = load_runbook(EXAMPLE / "runbook.yaml")
            opts = Options(environment="staging", operator="bench", yes=True, no_input=True)
            with open_ledger(ledger_url) as ledger:
                url = service_env["TASCADE_DATABASE_URL"]
                parts(doc, ledger, opts, url)  # warm-up: imports, connections, the service's first start
                for rep in range(args.reps):
                    row: dict[str, float] = {}
                    order = ("rehearsal", "parts") if rep % 2 == 0 else ("parts", "rehearsal")
                    for what in order:
                        if what == "rehearsal":
                            row["total"], outcome = rehearsal(doc, ledger, opts)
                            row["cycles"] = len(outcome.cycles)
                            row["rto_max"] = max(c["rto_s"] for c in outcome.cycles)
                            # what the rehearsal itself measured of its cycles: the rest is bookkeeping
                            row["inside_runs"] = sum(c["run_s"] for c in outcome.cycles)
                            row["inside_prints"] = sum(c["fingerprint_s"] for c in outcome.cycles)
                            row["inside"] = row["inside_runs"] + row["inside_prints"]
                        else:
                            row["runs"], row["prints"] = parts(doc, ledger, opts, url)
                    row["cli"] = cli_rehearsal(env, ledger_url)
                    row["version"] = version_time(env)
                    rows.append(row)
                    print(f"rep {rep + 1}: {json.dumps({k: round(v, 3) for k, v in row.items()})}", file=sys.stderr)
        finally:
            subprocess.run([sys.executable, str(EXAMPLE / "service" / "svc.py"), "stop"], capture_output=True,
                           timeout=30, env={**os.environ, **service_env})
            admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    text = report(rows, args.reps, time.perf_counter() - overall)
    print(text)
    if not args.no_write:
        write_section(START_MARK, END_MARK, text, MISSING)


def report(rows: list[dict[str, float]], reps: int, took: float) -> str:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    def span(key: str) -> str:
        values = [r[key] for r in rows]
        return f"{min(values):.2f} s .. {max(values):.2f} s"

    overheads = [r["total"] - (r["runs"] + r["prints"]) for r in rows]
    shares = [o / (r["runs"] + r["prints"]) for o, r in zip(overheads, rows, strict=True)]
    share = statistics.median(shares)
    load = os.getloadavg()
    lines = [f"_Written by `.venv/bin/python benchmarks/bench_rehearse.py --reps {reps}` "
             f"({reps} repetitions; median, with min .. max)._", "",
             *machine_facts(), f"- The whole benchmark took {took:.0f} s; load average {load[0]:.2f} at the end",
             f"- {int(med('cycles'))} cycles per rehearsal (one per phase of examples/metrics-subsystem, "
             "fail after it), a database at 0004", "",
             "| Measurement | Median | Min .. max | Target | Met |", "| --- | --- | --- | --- | --- |",
             f"| rehearsal: `rehearse()` in-process | {med('total'):.2f} s | {span('total')} | | |",
             f"| runs alone: each cycle's run with its fault, rollback included | {med('runs'):.2f} s "
             f"| {span('runs')} | | |",
             f"| fingerprints alone: two per cycle | {med('prints'):.2f} s | {span('prints')} | | |",
             f"| overhead: rehearsal - (runs + fingerprints) | {statistics.median(overheads):+.2f} s "
             f"| {min(overheads):+.2f} s .. {max(overheads):+.2f} s | | |",
             f"| **overhead / (runs + fingerprints)** | **{share * 100:+.1f} %** | "
             f"{min(shares) * 100:+.1f} % .. {max(shares) * 100:+.1f} % | < {TARGET * 100:.0f} % "
             f"| {'yes' if share < TARGET else 'NO'} |",
             f"| inside the rehearsal: its cycles' runs, as it timed them | {med('inside_runs'):.2f} s "
             f"| {span('inside_runs')} | | |",
             f"| inside the rehearsal: its fingerprints | {med('inside_prints'):.2f} s | {span('inside_prints')} | | |",
             f"| **bookkeeping: rehearsal - its cycles' own run and fingerprint times** | "
             f"**{statistics.median(r['total'] - r['inside'] for r in rows):.3f} s** "
             f"({statistics.median((r['total'] - r['inside']) / r['inside'] for r in rows) * 100:.1f} %) | | | |",
             f"| the whole `tminus rehearse` process (spawned) | {med('cli'):.2f} s | {span('cli')} | | |",
             f"|   `tminus --version`, for its start-up | {med('version'):.2f} s | {span('version')} | | |",
             f"| longest RTO of a cycle | {med('rto_max'):.2f} s | {span('rto_max')} | | |"]
    return "\n".join(lines)


MISSING = """## Rehearsal (issue 13)

```sh
.venv/bin/python benchmarks/bench_rehearse.py            # 3 repetitions, about 2 minutes
.venv/bin/python benchmarks/bench_rehearse.py --reps 7   # more (about 3 minutes)
```

`tminus rehearse` of [the metrics-subsystem example](examples/metrics-subsystem.md) against the sum of
its parts measured separately: each cycle's run with the same injected failure (an in-process
`Session` with `FailAfter`, its rollback included) and the fingerprints of the database alone (two
per cycle). The difference is what the rehearsal itself adds: its record (`rehearsal.started`, one
`rehearsal.cycle` per cycle, its end), reading each cycle's events back into figures, planning.
Rehearsal and parts alternate which goes first, and the parts keep the rehearsal's order (a
fingerprint, the run, a fingerprint). The service restarts in every cycle and the health waits
poll every 200 ms, so run-to-run noise is a few hundred milliseconds either way (a negative
overhead means the noise was larger than the overhead). The bookkeeping row has no such noise:
the rehearsal's time minus the run and fingerprint times it measured itself for each cycle.
**Target: under 10 %.** The whole `tminus rehearse` process adds the start-up once (`tminus
--version` beside it). It rewrites only the section between the `rehearse-results` markers.
"""


if __name__ == "__main__":
    main()
