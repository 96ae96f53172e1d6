"""`ledger verify` on a ledger of N runs: its time and the process's peak RSS, plus the per-event
append cost that built it. Issue 15 item 5's target: 1,000 runs verified in under 0.5 s on SQLite,
with RSS flat in the ledger's size.

    python benchmarks/ledger_verify.py --runs 1000 --events 10 [--url postgresql://...] [--reps 5]

Each verify runs in a fresh process (`--verify-only`), so its peak RSS is its own, not the builder's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def step_data(i: int) -> dict[str, Any]:
    """The size and shape of a real step.finished event's data (about 700 bytes of JSON)."""
    return {
        "attempts": 1, "duration_ms": 1.2, "kind": "run", "message": "", "name": "run step",
        "section": "phase:p", "status": "ok",
        "evidence": {"command": "true", "duration_ms": 1.1, "exit_code": 0, "pid": 1000 + i, "stderr": "",
                     "stdout": ""},
        "outputs": {"exit_code": 0, "stderr": "", "stdout": ""},
        "verdicts": [{"actual": 0, "assertion": "exit_code == 0", "expected": "== 0",
                      "location": f"runbook.yaml:{5 + i}:9", "message": "", "ok": True}],
    }


def build(url: str, runs: int, events: int) -> float:
    """A ledger of `runs` runs of `events` events each, written through fenced run writers (as a run
    writes). Returns the median per-event append cost in seconds."""
    from tminus.events import Event
    from tminus.ledger import open_ledger

    per_event: list[float] = []
    with open_ledger(url) as ledger:
        for r in range(runs):
            run_id = f"bench-{r:06d}"
            ledger.create_run(run_id=run_id, runbook_name="bench", runbook_path="runbook.yaml", content_hash="0" * 64,
                              runbook_text="name: bench\n", environment="default", operator="bench",
                              host="bench", pid=os.getpid())
            lease = ledger.acquire_lease(f"bench@{run_id}", run_id=run_id, operator="bench", host="bench",
                                         pid=os.getpid())
            writer = ledger.open_writer(run_id, fence=lease.fence)
            batch = [Event("step.finished", run_id, step_data(i), step_key=f"phases[0].steps[{i}]")
                     for i in range(events)]
            start = time.perf_counter()
            for event in batch:
                writer.append(event)
            per_event.append((time.perf_counter() - start) / max(events, 1))
            lease.release()
    return statistics.median(per_event)


def verify_once(url: str) -> dict[str, Any]:
    """Open a reader, verify the whole ledger; time and this process's peak RSS."""
    from tminus.ledger import open_reader

    start, cpu = time.perf_counter(), time.process_time()
    with open_reader(url) as reader:
        problems = reader.verify()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": elapsed, "cpu_seconds": cpu, "peak_rss_mb": rss_mb, "problems": len(problems)}


def _reset_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10, help="events per run")
    parser.add_argument("--reps", type=int, default=5, help="verifies, each in a fresh process")
    parser.add_argument("--url", help="a PostgreSQL ledger URL (its public schema is emptied!); default SQLite")
    parser.add_argument("--verify-only", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.verify_only:
        print(json.dumps(verify_once(args.verify_only)))
        return 0
    with tempfile.TemporaryDirectory(prefix="tminus-verify-") as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'ledger.db'}"
        if args.url:
            _reset_postgres(args.url)
        append = build(url, args.runs, args.events)
        results = [json.loads(subprocess.run([sys.executable, __file__, "--verify-only", url], check=True,
                                             capture_output=True, text=True).stdout) for _ in range(args.reps)]
    assert all(r["problems"] == 0 for r in results), results
    seconds = statistics.median(r["seconds"] for r in results)
    cpu = statistics.median(r["cpu_seconds"] for r in results)  # less at the mercy of a shared machine
    rss = statistics.median(r["peak_rss_mb"] for r in results)
    print(f"{args.runs} runs x {args.events} events ({'PostgreSQL' if args.url else 'SQLite'}): "
          f"append {append * 1e6:.0f} us/event (median), verify {seconds:.3f} s (CPU {cpu:.3f} s; median of "
          f"{args.reps}), "
          f"peak RSS {rss:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
