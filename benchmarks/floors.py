"""Issue 15's cases, run by `benchmarks/run.py --floors` (all of them) or `--case NAME` (one; repeatable).

Each case measures `tminus` as a whole process beside its floor (`python -c pass`, a raw asyncio
HTTP client, a bash loop) and a peer where there is one, interleaved in the same run, and judges the
median against the issue's target. Options: `--full` (more repetitions), `--smoke` (one repetition
of the smallest workloads: checks the harness, not the speed), `--json` (JSON instead of Markdown),
`--write-docs` (rewrite the section of docs/performance.md between the floors-results markers),
`--baseline JSON` (each figure beside the same figure of an earlier `--json` run, such as
floors_before_issue15.json: main before issue 15), `--pg URL` (the PostgreSQL server for the
PostgreSQL-ledger case; a scratch database is created on it and dropped).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import DOC, ROOT, machine_cpu_seconds, machine_facts, own_cpu_seconds, write_section
from floor_cases import CASES, DEFAULT, FULL, SMOKE, Context
from floor_results import CaseResult, markdown
from wholeproc import Clock, OverBudget, compile_once

START_MARK = "<!-- floors-results:start -->"
END_MARK = "<!-- floors-results:end -->"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
BEFORE = Path(__file__).resolve().parent / "floors_before_issue15.json"
BUDGET = {"default": 600.0, "full": 1800.0, "smoke": 120.0}  # seconds, the whole call


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("issue 15: tminus beside its floors")
    group.add_argument("--floors", action="store_true", help="run every issue-15 case")
    group.add_argument("--case", action="append", choices=sorted(CASES), help="run this case only (repeatable)")
    group.add_argument("--full", action="store_true", help="more repetitions (several minutes)")
    group.add_argument("--smoke", action="store_true", help="one repetition, smallest workloads (the harness test)")
    group.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    group.add_argument("--write-docs", action="store_true", help=f"rewrite the floors section of {DOC.name}")
    group.add_argument("--baseline", type=Path, metavar="JSON", help="an earlier --json run: each figure beside "
                       f"its value there (the figures before issue 15: {BEFORE.relative_to(ROOT)})")
    group.add_argument("--pg", default=PG_URL, help="PostgreSQL server for the PostgreSQL ledger (a scratch "
                       f"database is created there and dropped; default {PG_URL})")


def wanted(args: argparse.Namespace) -> bool:
    return bool(args.floors or args.case)


def main(args: argparse.Namespace) -> int:
    mode = "smoke" if args.smoke else "full" if args.full else "default"
    sizes = {"smoke": SMOKE, "full": FULL, "default": DEFAULT}[mode]
    names = list(dict.fromkeys(args.case or CASES))
    started, machine_start, own_start = time.monotonic(), machine_cpu_seconds(), own_cpu_seconds()
    compile_once()
    results = []
    with tempfile.TemporaryDirectory(prefix="tminus-floors-") as tmp:
        ctx = Context(sizes, Path(tmp), Clock(BUDGET[mode]), args.pg)
        for name in names:
            print(f"benchmark: {name} ...", file=sys.stderr, flush=True)
            case_started = time.monotonic()
            try:
                results.append(CASES[name](ctx))
                print(f"benchmark: {name} took {time.monotonic() - case_started:.0f} s", file=sys.stderr, flush=True)
            except OverBudget as exc:  # what was measured so far is still worth printing
                results.append(CaseResult(name, "not finished", 0, notes=[f"{exc}: run it alone with --case {name}"]))
                break
    wall = time.monotonic() - started
    others = (machine_cpu_seconds() - machine_start) - (own_cpu_seconds() - own_start)
    busy = 100 * others / (wall * len(os.sched_getaffinity(0)))
    if args.json:
        print(json.dumps({"mode": mode, "commit": _commit(), "seconds": round(wall, 1),
                          "other_cpu_percent": round(busy), "cases": [r.json() for r in results]}, indent=2))
    baseline = json.loads(args.baseline.read_text(encoding="utf-8")) if args.baseline else None
    text = markdown(results, _header(mode, wall, busy), baseline)
    if not args.json:
        print(text)
    if args.write_docs:
        write_section(START_MARK, END_MARK, text, "## Start-up and per-step cost (issue 15)")
        print(f"benchmark: written to {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


def _commit() -> str:
    try:
        found = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h"], capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return found.stdout.strip() or "unknown"


def _header(mode: str, wall: float, busy: float) -> list[str]:
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"_Written by `.venv/bin/python benchmarks/run.py --floors{' --full' if mode == 'full' else ''}` "
        f"({mode} sizes; whole-process figures, median with min .. max)._",
        "",
        *machine_facts(f", commit `{_commit()}`"),
        f"- Load average when it ended: {load}; other processes used {busy:.0f} % of the CPUs during its "
        f"{wall:.0f} s" + (" (**a busy machine: figures inflated**)" if busy > 10 else ""),
    ]
    return lines
