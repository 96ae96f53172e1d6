"""tminus fingerprint benchmark: `.venv/bin/python benchmarks/fingerprint.py [--size-gb 1.0]` from the repo root.

It generates the same database as benchmarks/backup.py (a scratch `tminus_bench_backup_<random>` on
the local PostgreSQL, filled server-side with about `--size-gb` of accounts, events, notes; dropped
at the end), or uses an existing one (`--db NAME`, kept), then measures on that same data:

  (a) plain `pg_dump -Fc -f FILE`: wall time and the pg_dump process's peak memory (max RSS);
  (b) `tminus.db.fingerprint.fingerprint(url)` (rows and schema) in a fresh Python process: the
      call's wall time, the schema part of it, and the process's peak memory (max RSS, imports
      included);
  (c) for reference, the row hash used before (`md5(row::text)` summed as numeric), per table.

Targets (issue 10): fingerprint under 50 % of the dump time, under 100 MB of memory. Each
measurement is repeated `--reps` times (default 3), (a) and (b) alternating which goes first;
medians are reported. The results are printed as Markdown and written into docs/performance.md
between `<!-- fingerprint-results:start -->` and `<!-- fingerprint-results:end -->` (`--no-write`:
print only). `run()` is the whole benchmark as a function.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from backup import (
    DOC,
    HOST,
    PORT,
    PREFIX,
    USER,
    Budget,
    admin,
    create_db,
    drop_db,
    generate,
    human_bytes,
    log,
    server_facts,
    tool_env,
    tool_version,
)

from tminus.db import pgtools

START_MARK = "<!-- fingerprint-results:start -->"
END_MARK = "<!-- fingerprint-results:end -->"
TARGET_TIME_SHARE = 0.50  # of the plain dump's wall time
TARGET_MEMORY = 100 * 1024 * 1024  # bytes, the fingerprinting process's peak RSS
TOOL_TIMEOUT = 900.0

# Runs in a fresh interpreter so its peak RSS is the fingerprint's alone (imports included).
_CHILD = """
import json, sys, time
from tminus.db.fingerprint import SCHEMA_KEY, fingerprint, postgres
schema = []
original = postgres._schema
def timed(*a, **k):
    start = time.perf_counter()
    try:
        return original(*a, **k)
    finally:
        schema.append(time.perf_counter() - start)
postgres._schema = timed
start = time.perf_counter()
fp = fingerprint(sys.argv[1])
seconds = time.perf_counter() - start
objects = sum(len(v) for v in fp[SCHEMA_KEY].values())
print(json.dumps({"seconds": seconds, "schema": schema[0], "tables": len(fp) - 1, "objects": objects}))
"""

OLD_ROW_HASH = ("SELECT count(*), coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0),"
                " coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)"
                " FROM (SELECT md5(t::text) AS h FROM {} t) s")


def measured(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run a process; its wall time, peak RSS (bytes) and stdout."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + TOOL_TIMEOUT
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{args[0]} ran over {TOOL_TIMEOUT:.0f} s")
            time.sleep(0.01)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
        out.seek(0)
        text = out.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed (exit {proc.returncode}): {err.strip()[:2000]}")
    return seconds, usage.ru_maxrss * 1024, text


class Series:
    """Several measurements of one thing."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, value: float) -> None:
        self.values.append(value)

    def median(self) -> float:
        return statistics.median(self.values) if self.values else 0.0

    def low(self) -> float:
        return min(self.values, default=0.0)

    def high(self) -> float:
        return max(self.values, default=0.0)


class Results:
    def __init__(self) -> None:
        self.dump, self.dump_rss = Series(), Series()
        self.fp, self.fp_process, self.fp_schema, self.fp_rss = Series(), Series(), Series(), Series()
        self.old_rows = Series()
        self.dump_bytes = 0
        self.shape: dict[str, Any] = {}


def plain_dump(db: str, work: Path, res: Results) -> None:
    path = work / "plain.dump"
    seconds, rss, _ = measured(["pg_dump", "-Fc", "--no-password", "-f", str(path), db], tool_env(db))
    res.dump.add(seconds)
    res.dump_rss.add(rss)
    res.dump_bytes = path.stat().st_size
    path.unlink()
    log(f"  (a) pg_dump -Fc: {seconds:.2f} s, peak RSS {human_bytes(rss)}")


def tminus_fingerprint(db: str, res: Results) -> None:
    url = f"postgresql://{USER}@{HOST}:{PORT}/{db}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    wall, rss, out = measured([sys.executable, "-c", _CHILD, url], env)
    facts = json.loads(out)
    res.fp.add(facts["seconds"])
    res.fp_process.add(wall)
    res.fp_schema.add(facts["schema"])
    res.fp_rss.add(rss)
    res.shape = {"tables": facts["tables"], "objects": facts["objects"]}
    log(f"  (b) fingerprint: {facts['seconds']:.2f} s (schema {facts['schema']:.3f} s; process {wall:.2f} s),"
        f" peak RSS {human_bytes(rss)}")


def old_row_hash(db: str, res: Results) -> None:
    with psycopg.connect(host=HOST, port=PORT, user=USER, dbname=db, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r'").fetchall()]
        start = time.perf_counter()
        for table in tables:
            conn.execute(OLD_ROW_HASH.format(pgtools.ident(table))).fetchone()
        res.old_rows.add(time.perf_counter() - start)
    log(f"  (c) previous md5 row hash: {res.old_rows.values[-1]:.2f} s")


def run(args: argparse.Namespace) -> str:
    """The whole benchmark: generate (or reuse) the database, measure, and the Markdown report."""
    budget = Budget(args.budget)
    res = Results()
    name = args.db or PREFIX + secrets.token_hex(4)
    facts = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": str(len(os.sched_getaffinity(0))),
             "load_start": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
             "pg_dump": tool_version("pg_dump"), **server_facts()}
    work = Path(tempfile.mkdtemp(prefix=PREFIX))
    gen_seconds = 0.0
    try:
        if not args.db:
            log(f"creating {name} and generating about {args.size_gb} GiB ...")
            create_db(name)
            start = time.perf_counter()
            generate(name, args.size_gb, budget)
            gen_seconds = time.perf_counter() - start
        with admin() as conn:
            size = conn.execute("SELECT pg_database_size(%s)", (name,)).fetchone()[0]  # type: ignore[index]
        log(f"database {name}: {human_bytes(size)}")
        for rep in range(args.reps):
            estimate = (res.dump.median() + res.fp_process.median() + res.old_rows.median()) * 1.2 if rep else 0.0
            if rep and not budget.allows(estimate):
                log(f"  stopping after {rep} repetitions: the budget is used up")
                break
            log(f"repetition {rep + 1}")
            if rep % 2 == 0:
                plain_dump(name, work, res)
                tminus_fingerprint(name, res)
            else:
                tminus_fingerprint(name, res)
                plain_dump(name, work, res)
            old_row_hash(name, res)
    finally:
        for leftover in work.glob("*"):
            leftover.unlink()
        work.rmdir()
        if not args.db:
            drop_db(name)
    facts["load_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return report(args, facts, size, gen_seconds, budget.elapsed(), res)


def report(args: argparse.Namespace, facts: dict[str, str], size: int, gen_seconds: float, total: float,
           res: Results) -> str:
    share = res.fp.median() / res.dump.median()
    memory = res.fp_rss.median()
    made = f"generated in {gen_seconds:.0f} s" if gen_seconds else "an existing database"
    lines = [
        f"_Written by `.venv/bin/python benchmarks/fingerprint.py --size-gb {args.size_gb}` "
        f"({len(res.dump.values)} repetitions; median, with min .. max)._",
        "",
        f"- Date: {facts['date']}; the whole benchmark took {total:.0f} s; load average "
        f"{facts['load_start']} at the start, {facts['load_end']} at the end (`nproc` = {facts['nproc']})",
        f"- PostgreSQL server {facts.get('server_version', '?')}; {facts['pg_dump']}",
        f"- Data: `pg_database_size` = **{human_bytes(size)}** ({made}); {res.shape.get('tables')} tables, "
        f"{res.shape.get('objects')} schema objects fingerprinted; custom-format dump {human_bytes(res.dump_bytes)}",
        "",
        "| Measurement | Median | Min .. max | Target | Met |",
        "| --- | --- | --- | --- | --- |",
        f"| (a) plain `pg_dump -Fc -f FILE` | {res.dump.median():.2f} s | {res.dump.low():.2f} s .. "
        f"{res.dump.high():.2f} s | | |",
        f"| (b) `fingerprint(url)`: rows and schema | {res.fp.median():.2f} s | {res.fp.low():.2f} s .. "
        f"{res.fp.high():.2f} s | | |",
        f"|   of which the schema (catalog queries) | {res.fp_schema.median():.3f} s | | | |",
        f"|   the whole process (Python start-up and imports included) | {res.fp_process.median():.2f} s | | | |",
        f"| **fingerprint / plain dump** | **{100 * share:.1f} %** | | < {100 * TARGET_TIME_SHARE:.0f} % | "
        f"{'yes' if share < TARGET_TIME_SHARE else '**no**'} |",
        f"| **fingerprint process peak memory** (max RSS) | **{human_bytes(memory)}** | "
        f"{human_bytes(res.fp_rss.low())} .. {human_bytes(res.fp_rss.high())} | < {human_bytes(TARGET_MEMORY)} | "
        f"{'yes' if memory < TARGET_MEMORY else '**no**'} |",
        f"|   pg_dump peak memory (max RSS), for comparison | {human_bytes(res.dump_rss.median())} | | | |",
        f"| (c) the previous row hash (`md5(row::text)`, numeric sums), rows only | {res.old_rows.median():.2f} s | "
        f"{res.old_rows.low():.2f} s .. {res.old_rows.high():.2f} s | | |",
        "",
    ]
    return "\n".join(lines) + "\n"


def write_doc(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    if START_MARK not in doc or END_MARK not in doc:
        doc = doc.rstrip("\n") + f"\n\n## Fingerprint (issue 10)\n\n{START_MARK}\n{END_MARK}\n"
    pattern = re.compile(re.escape(START_MARK) + ".*?" + re.escape(END_MARK), re.S)
    DOC.write_text(pattern.sub(lambda _: f"{START_MARK}\n{text}{END_MARK}", doc, count=1), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0, help="about how much data to generate (GiB)")
    parser.add_argument("--db", default=None, help="use this existing database instead (not dropped)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each measurement, budget allowing")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds for the whole run (default 600)")
    parser.add_argument("--no-write", action="store_true", help=f"print only, do not rewrite {DOC.name}")
    args = parser.parse_args(argv)
    if args.size_gb <= 0 or args.reps < 1:
        parser.error("--size-gb must be positive and --reps at least 1")

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # so `finally` drops the database

    signal.signal(signal.SIGTERM, on_term)
    text = run(args)
    print(text)
    if not args.no_write:
        write_doc(text)
        print(f"written into {DOC.relative_to(Path(DOC).parent.parent)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
