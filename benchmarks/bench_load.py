"""Runbook loading benchmark: `.venv/bin/python benchmarks/bench_load.py [--reps 7] [--before PYTHON]`.

Generated runbooks of 8, 100 and 1,000 steps (run and http steps with ids, expectations, timeouts,
retries, undo; templates reading vars) are measured two ways, and printed as Markdown:

  in process:    `load_runbook()` (YAML, model, every check), CPU time, modules already imported and the
                 validator's per-text caches cleared before each load, so each load is a first one;
  whole process: `tminus validate FILE` and `tminus plan FILE`, wall and CPU (user + sys) of the child.

`--before PYTHON` measures another interpreter too (e.g. a checkout of main's `.venv/bin/python`),
interleaved with this one, so the two see the same machine load. Medians of `--reps` repetitions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (8, 100, 1000)

_IN_PROCESS = r"""
import gc, json, sys, time
from tminus.runbook import validate
from tminus.runbook.loader import load_runbook
caches = [getattr(validate, n) for n in ("_template_reading", "_expression_reading", "_rewriting",
                                         "_expectation_refused") if hasattr(validate, n)]
path, reps = sys.argv[1], int(sys.argv[2])
load_runbook(path)
spent = []
for _ in range(reps):
    for cache in caches:
        cache.cache_clear()
    gc.collect()
    start = time.process_time()
    load_runbook(path)
    spent.append(time.process_time() - start)
print(json.dumps(spent))
"""


def runbook(steps: int) -> str:
    """A runbook of `steps` steps in phases of ten, plus a gate check and a verify step."""
    out = ["version: 1", f"name: bench-{steps}", "description: >", "  A generated runbook for load benchmarks.",
           "vars:", "  port: 8080", "  release: v2", "  hosts: [a, b, c]", "gates:", "  - name: ready", "    checks:",
           "      - name: health", '        http: "http://127.0.0.1:{{ vars.port }}/health"',
           "        expect:", "          - status == 200", "phases:"]
    for p in range((steps + 9) // 10):
        out += [f"  - name: phase {p}", f"    id: phase_{p}", "    steps:"]
        for i in range(p * 10, min(steps, (p + 1) * 10)):
            if i % 3 == 0:
                out += [f"      - name: Deploy part {i}", f"        id: s{i}",
                        f'        run: "echo deploying {i} {{{{ vars.release }}}}"', "        timeout: 30s",
                        "        retry: {attempts: 3, backoff: 2}", "        expect:", "          - exit_code == 0",
                        '          - stdout contains "deploying"', "        undo:", f'          - run: "echo undo {i}"']
            elif i % 3 == 1:
                out += [f"      - name: Check service {i}", f"        id: s{i}", "        http:",
                        '          url: "http://127.0.0.1:{{ vars.port }}/version"', "          method: GET",
                        "        expect:", "          - status == 200", '          - jsonpath "$.version" == "v2"']
            else:
                out += [f"      - name: Step {i}", "        run: 'true'"]
    out += ["verify:", "  - name: final", '    http: "http://127.0.0.1:{{ vars.port }}/health"',
            "    expect: [status == 200]"]
    return "\n".join(out) + "\n"


def child(python: str, args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one child process (which must succeed)."""
    start = time.perf_counter()
    proc = subprocess.Popen([python, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark: {python} {' '.join(args)} failed: {err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--before", help="another interpreter to measure beside this one, interleaved")
    opts = parser.parse_args(argv)
    pythons = {"this checkout": sys.executable, **({"before": opts.before} if opts.before else {})}
    with tempfile.TemporaryDirectory(prefix="tminus-bench-load-") as tmp:
        cwd = Path(tmp)
        for steps in SIZES:
            (cwd / f"rb{steps}.yaml").write_text(runbook(steps))
        lines = ["| runbook | measure | " + " | ".join(pythons) + " |", "| --- | --- |" + " --- |" * len(pythons)]
        for steps in SIZES:
            file = f"rb{steps}.yaml"
            load = {name: subprocess.run([py, "-c", _IN_PROCESS, file, str(opts.reps)], cwd=cwd, check=True,
                                         capture_output=True, text=True).stdout for name, py in pythons.items()}
            lines.append(f"| {steps} steps | `load_runbook()` CPU, in process | "
                         + " | ".join(ms([float(x) for x in load[n].strip()[1:-1].split(",")]) for n in pythons) + " |")
            for command in ("validate", "plan"):
                wall: dict[str, list[float]] = {n: [] for n in pythons}
                cpu: dict[str, list[float]] = {n: [] for n in pythons}
                for _ in range(opts.reps):
                    for name, py in pythons.items():
                        w, c = child(py, ["-m", "tminus", command, file], cwd)
                        wall[name].append(w)
                        cpu[name].append(c)
                lines.append(f"| {steps} steps | `tminus {command}` wall / CPU | "
                             + " | ".join(f"{ms(wall[n])} / {ms(cpu[n])}" for n in pythons) + " |")
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
