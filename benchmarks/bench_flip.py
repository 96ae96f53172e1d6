"""Blue/green flip benchmark: `.venv/bin/python benchmarks/bench_flip.py [--reps 3] [--requests 10000]`
from the repo root (needs /usr/sbin/nginx).

Two real loopback backends (blue, green; each its own process, tests/servers/backend.py) behind a real
nginx (tests/servers/nginx.py) routing everything to blue. A steady load (4 threads, keep-alive,
tests/servers/load.py) runs while the real `tminus run` executes a runbook whose `proxy` step
switches to green (proven by 10 requests), then a step fails, so the rollback's derived undo
restores blue. From the ledger's `step.started` of the switch (and of its undo) and the load's
answers it measures:

  flip:     switch step start -> first answer served by green, and -> last answer served by blue;
  rollback: undo step start  -> first answer served by blue after it, and -> last answer by green;
  failed:   requests without an answer or with a status other than 200, during each.

Targets (issue 12): flip under 1 s, 0 failed requests in 10,000. Results are printed as Markdown and
written into docs/performance.md between `<!-- flip-results:start -->` and `<!-- flip-results:end -->`
(`--no-write`: print only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import bench_env, ledger_events, machine_facts, parse_at, write_section  # noqa: E402
from tests.servers.load import Load  # noqa: E402
from tests.servers.nginx import Nginx  # noqa: E402

from tminus.kinds.proxy_drivers.base import RoutingState  # noqa: E402

START_MARK = "<!-- flip-results:start -->"
END_MARK = "<!-- flip-results:end -->"
TARGET_FLIP = 1.0
SERVE = ("import sys, threading; from tests.servers.backend import Backend; b = Backend(sys.argv[1]).start(); "
         "print(b.port, flush=True); sys.stdin.read()")


def backend(stack: ExitStack, name: str) -> str:
    """A backend in its own process (never competing with the load for our GIL): its address."""
    proc = subprocess.Popen([sys.executable, "-c", SERVE, name], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)

    def stop() -> None:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    stack.callback(stop)
    assert proc.stdout is not None
    return f"127.0.0.1:{int(proc.stdout.readline())}"


def one(requests: int) -> dict[str, Any]:
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="tminus-bench-flip-") as tmp:
        folder = Path(tmp)
        upstreams = {"blue": [backend(stack, "blue")], "green": [backend(stack, "green")]}
        ng = Nginx(folder / "nginx", upstreams, RoutingState({"blue": 100, "green": 0})).start()
        stack.callback(ng.stop)
        spec = ng.spec(action="switch", to="green", prove={"url": ng.url, "requests": 10,
                                                           "expect": ['header "X-Release" == "green"']})
        runbook = {"name": "flip", "phases": [{"name": "cutover", "steps": [
            {"name": "switch to green", "proxy": spec}, {"name": "a later step fails", "run": "exit 1"}]}]}
        (folder / "runbook.yaml").write_text(json.dumps(runbook))
        load = Load("127.0.0.1", ng.port, threads=4).start()
        load.wait(1000)
        done = subprocess.run([sys.executable, "-m", "tminus", "run", "runbook.yaml", "--no-input", "--json"],
                              cwd=folder, env=bench_env(), capture_output=True, text=True, timeout=300)
        if done.returncode != 11:
            raise SystemExit(f"the run should roll back (exit 11), got {done.returncode}: {done.stderr}")
        load.wait(max(requests, len(load.answers) + 500))
        load.stop()
        run_id = json.loads(done.stdout)["run_id"]
        started = {e.step_key: parse_at(e.at) for e in ledger_events(folder, run_id) if e.type == "step.started"}
        flip_at = started["phases[0].steps[0]"]
        undo_at = next(at for key, at in started.items() if key.endswith(".undo[auto]"))
        return measure(load, flip_at, undo_at)


def measure(load: Load, flip_at: float, undo_at: float) -> dict[str, Any]:
    answers = sorted(load.answers, key=lambda a: a.at)
    flip = [a for a in answers if flip_at <= a.at < undo_at]
    back = [a for a in answers if a.at >= undo_at]
    first_green = next(a.at for a in flip if a.release == "green")
    last_blue = max((a.at for a in flip if a.release == "blue"), default=flip_at)
    first_blue = next(a.at for a in back if a.release == "blue")
    last_green = max((a.at for a in back if a.release == "green"), default=undo_at)
    return {
        "requests": len(answers), "retries": load.retries,
        "failed": len(load.not_ok()),
        "flip_first": first_green - flip_at, "flip_last": last_blue - flip_at,
        "flip_failed": sum(1 for a in flip if a.status != 200),
        "back_first": first_blue - undo_at, "back_last": last_green - undo_at,
        "back_failed": sum(1 for a in back if a.status != 200),
    }


def report(results: list[dict[str, Any]]) -> str:
    def med(key: str) -> str:
        return f"{statistics.median(r[key] for r in results) * 1000:.0f} ms"

    def worst(key: str) -> str:
        return f"{max(r[key] for r in results) * 1000:.0f} ms"

    total = sum(r["requests"] for r in results)
    failed = sum(r["failed"] for r in results)
    flip_ok = max(max(r["flip_last"], r["flip_first"]) for r in results) < TARGET_FLIP
    lines = [*machine_facts(), f"- {len(results)} runs; load: 4 threads, keep-alive, through nginx 1.22 "
             f"(2 workers) to two Python backends; {total} requests in all", "",
             "| measure | median | worst | target |", "| --- | --- | --- | --- |",
             f"| flip: switch step start -> first answer by green | {med('flip_first')} | {worst('flip_first')} "
             "| < 1 s |",
             f"| flip: switch step start -> last answer by blue | {med('flip_last')} | {worst('flip_last')} | < 1 s |",
             f"| rollback: undo step start -> first answer by blue | {med('back_first')} | {worst('back_first')} | |",
             f"| rollback: undo step start -> last answer by green | {med('back_last')} | {worst('back_last')} | |",
             "", "| run | requests | failed during flip | failed during rollback | failed in all | "
             "stale keep-alive retries |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {i + 1} | {r['requests']} | {r['flip_failed']} | {r['back_failed']} | {r['failed']} "
              f"| {r['retries']} |" for i, r in enumerate(results)]
    lines += ["", f"Flip under 1 s: {'yes' if flip_ok else 'NO'}; failed requests: {failed} of {total}."]
    return "\n".join(lines)


MISSING = """## Blue/green flip behind nginx (issue 12)

`benchmarks/bench_flip.py`: a `proxy` step switches a real nginx from blue to green under a steady
load, a later step fails, and the derived undo switches back. The times run from the step's
`step.started` in the ledger to the answers the load received (wall clock, milliseconds). A request
is failed when it got no answer or a status other than 200. A request sent on a keep-alive
connection that an old nginx worker closed before answering is sent again once on a new connection,
as browsers and urllib3 do for idempotent requests; those retries are counted in the last column.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    results = []
    for i in range(args.reps):
        started = time.perf_counter()
        results.append(one(args.requests))
        print(f"run {i + 1}: {results[-1]} ({time.perf_counter() - started:.1f}s)", file=sys.stderr)
    text = report(results)
    print(text)
    if not args.no_write:
        write_section(START_MARK, END_MARK, text, MISSING)


if __name__ == "__main__":
    main()
