"""tminus backup/restore benchmark: `.venv/bin/python benchmarks/backup.py [--size-gb 1.0]` from the repo root.

It creates a scratch database `tminus_bench_backup_<random>` on the local PostgreSQL
(postgresql://postgres@127.0.0.1:5432), fills it server-side with about `--size-gb` of data
(`generate_series`: accounts, events with text and jsonb, notes; primary keys, two secondary
indexes, two foreign keys), then measures on that same data:

  (a) plain `pg_dump -Fc -f FILE`;
  (b) plain `pg_restore --exit-on-error` into an empty database;
  (c) tminus `backup(url, dir, label="bench")` without drill: its dump_seconds, verify_seconds
      (`pg_restore --list`) and the sha256 of the file (timed separately, see the doc);
  (d) tminus `restore(url, file)` into an existing (empty) target database;
  (e) one `backup(..., drill=True)`, when the time budget allows.

Each measurement is repeated `--reps` times (default 3) while the budget (`--budget`, default
840 s for the whole run) allows; medians are reported. Every scratch database it created is
dropped and every dump file deleted in `finally`, also on Ctrl-C or SIGTERM. The results are
printed as Markdown and written into docs/performance.md between the
`<!-- backup-results:start -->` and `<!-- backup-results:end -->` markers (`--no-write`: print only).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from tminus.db import backup as backup_mod
from tminus.db import pgtools
from tminus.db import restore as restore_mod

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
START_MARK = "<!-- backup-results:start -->"
END_MARK = "<!-- backup-results:end -->"

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"
ADMIN_URL = f"postgresql://{USER}@{HOST}:{PORT}/postgres"
PREFIX = "tminus_bench_backup_"  # + 8 hex: 28 characters, so "<name>_t_old_..." keeps our prefix
TARGET_VERIFY_OVERHEAD = 0.15  # verification may add at most 15 % to the raw dump time
TOOL_TIMEOUT = 900.0  # seconds, any one pg_dump / pg_restore / tminus call
CHUNK_ROWS = 250_000  # events per INSERT while generating (about 100 MB)
SECONDARY_INDEX_SHARE = 0.10  # of the final size, built after the load; the load stops short by this much


# --- small helpers ---------------------------------------------------------------------------


class Budget:
    def __init__(self, seconds: float):
        self.start = time.monotonic()
        self.seconds = seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def allows(self, estimate: float) -> bool:
        return estimate <= self.left()


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def url_of(db: str) -> str:
    return f"postgresql://{USER}@{HOST}:{PORT}/{db}"


def admin() -> psycopg.Connection[Any]:
    return psycopg.connect(host=HOST, port=PORT, user=USER, dbname="postgres", autocommit=True, connect_timeout=10)


def tool_env(db: str) -> dict[str, str]:
    return {**os.environ, "PGHOST": HOST, "PGPORT": str(PORT), "PGUSER": USER, "PGDATABASE": db}


def run_tool(args: list[str], db: str, cpu: list[float] | None = None) -> float:
    """Run a client tool against `db`; its wall time (its user+system CPU appended to `cpu`)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(args, env=tool_env(db), capture_output=True, text=True, timeout=TOOL_TIMEOUT,
                          stdin=subprocess.DEVNULL, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()[:2000]}")
    return seconds


def ident(name: str) -> str:
    return pgtools.ident(name)


def create_db(name: str) -> None:
    with admin() as conn:
        conn.execute(f"CREATE DATABASE {ident(name)} TEMPLATE template0")


def drop_db(name: str) -> None:
    with admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {ident(name)} WITH (FORCE)")


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


class Series(list[float]):
    def median(self) -> float:
        return statistics.median(self)

    def cell(self) -> str:
        if not self:
            return "| n/a | n/a"
        span = f"{min(self):.2f} s .. {max(self):.2f} s" if len(self) > 1 else "(1 run)"
        return f"| {self.median():.2f} s | {span}"


@contextmanager
def timing(module: Any, name: str, into: list[float]) -> Iterator[None]:
    """Wrap `module.name` so every call's wall time is appended to `into` (restored afterwards).

    Used to split tminus's own calls (sha256, fingerprints, pg_restore) without editing them.
    """
    original = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - start)

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


# --- data ------------------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE accounts (
    id bigint PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL,
    settings jsonb NOT NULL
);
CREATE TABLE events (
    id bigint PRIMARY KEY,
    account_id bigint NOT NULL,
    kind text NOT NULL,
    created_at timestamptz NOT NULL,
    amount numeric(12, 2),
    body text NOT NULL,
    payload jsonb NOT NULL
);
CREATE TABLE notes (
    id bigint PRIMARY KEY,
    event_id bigint NOT NULL,
    author text NOT NULL,
    created_at timestamptz NOT NULL,
    note text NOT NULL
);
"""

ACCOUNTS = """
INSERT INTO accounts
SELECT g,
       'user' || g || '@example.com',
       initcap(substr(md5(g::text), 1, 8)) || ' ' || initcap(substr(md5((g + 1)::text), 3, 10)),
       timestamptz '2020-01-01 00:00:00+00' + g * interval '37 seconds',
       jsonb_build_object('plan', (ARRAY['free', 'pro', 'team'])[1 + g %% 3], 'locale',
                          (ARRAY['en', 'de', 'fr', 'ja'])[1 + g %% 4], 'beta', g %% 7 = 0)
FROM generate_series(1, %(n)s) g
"""

# Text bodies of 40..199 characters made of six different md5s (hex digits, so less compressible
# than repeated text), a ~200-byte jsonb payload, a nullable amount.
EVENTS = """
INSERT INTO events
SELECT g,
       1 + floor(random() * %(accounts)s)::bigint,
       (ARRAY['login', 'logout', 'purchase', 'refund', 'page_view', 'api_call', 'export', 'invite'])
           [1 + floor(random() * 8)::int],
       timestamptz '2022-01-01 00:00:00+00' + g * interval '13 seconds' + random() * interval '10 seconds',
       CASE WHEN random() < 0.3 THEN round((random() * 500)::numeric, 2) END,
       left(md5(g::text) || ' ' || md5((g * 7)::text) || ' ' || md5((g * 13)::text) || ' '
            || md5((g * 17)::text) || ' ' || md5((g * 19)::text) || ' ' || md5((g * 23)::text), 40 + g %% 160),
       jsonb_build_object(
           'ip', '10.' || g %% 256 || '.' || (g / 256) %% 256 || '.' || g %% 7,
           'user_agent', (ARRAY['Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
                                'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15',
                                'curl/8.5.0', 'python-httpx/0.27.0'])[1 + g %% 4],
           'request_id', md5((g * 3)::text),
           'items', jsonb_build_array(g %% 97, g %% 89, g %% 83),
           'ok', g %% 11 <> 0)
FROM generate_series(%(lo)s::int, %(hi)s::int) g
"""

# One note per four events: "md5 repeated" text of 33..264 characters.
NOTES = """
INSERT INTO notes
SELECT g / 4, g, 'user' || g %% 5000 || '@example.com',
       timestamptz '2022-01-01 00:00:00+00' + g * interval '13 seconds' + interval '5 minutes',
       repeat(md5(g::text) || ' ', 1 + g %% 8)
FROM generate_series(%(lo)s::int, %(hi)s::int) g
WHERE g %% 4 = 0
"""

AFTER_LOAD = [
    "CREATE INDEX events_account_created ON events (account_id, created_at)",
    "CREATE INDEX notes_event ON notes (event_id)",
    "ALTER TABLE events ADD CONSTRAINT events_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id)",
    "ALTER TABLE notes ADD CONSTRAINT notes_event_fk FOREIGN KEY (event_id) REFERENCES events (id)",
]


def generate(db: str, size_gb: float, budget: Budget) -> dict[str, Any]:
    """Fill `db` with about `size_gb` GiB; the facts about what was made."""
    target = size_gb * 1024**3
    n_accounts = max(1000, int(size_gb * 100_000))
    with psycopg.connect(host=HOST, port=PORT, user=USER, dbname=db, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("SELECT setseed(0.42)")
        conn.execute(SCHEMA)
        conn.execute(ACCOUNTS, {"n": n_accounts})
        chunk = max(10_000, min(CHUNK_ROWS, int(target / 450 / 8)))  # about 8+ chunks, ~450 bytes a row
        lo = 1
        while True:
            hi = lo + chunk - 1
            conn.execute(EVENTS, {"accounts": n_accounts, "lo": lo, "hi": hi})
            conn.execute(NOTES, {"lo": lo, "hi": hi})
            lo = hi + 1
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
            log(f"  generated {hi:,} events, database {human_bytes(size)}")
            if size >= target * (1 - SECONDARY_INDEX_SHARE):
                break
            if budget.elapsed() > budget.seconds * 0.35:
                log("  stopping generation early: it is using too much of the time budget")
                break
        for sql in AFTER_LOAD:
            conn.execute(sql)
        conn.execute("VACUUM (FREEZE, ANALYZE)")  # hint bits set now, not during the first dump
        conn.execute("CHECKPOINT")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
        tables = [(rel, conn.execute(f"SELECT count(*) FROM {ident(rel)}").fetchone()[0], t, i)  # type: ignore[index]
                  for rel, t, i in conn.execute(
            "SELECT c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY pg_total_relation_size(c.oid) DESC"
        ).fetchall()]
    return {"size": int(size), "tables": tables}


# --- machine facts ---------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return human_bytes(int(line.split()[1]) * 1024)
    except OSError:
        pass
    return "unknown"


def tool_version(tool: str) -> str:
    try:
        return subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"{tool}: not found"


def server_facts() -> dict[str, str]:
    with admin() as conn:
        facts = {k: str(conn.execute(f"SHOW {k}").fetchone()[0])  # type: ignore[index]
                 for k in ("server_version", "shared_buffers", "max_wal_size", "fsync")}
    return facts


# --- the benchmark ---------------------------------------------------------------------------


class Results:
    def __init__(self) -> None:
        self.plain_dump = Series()
        self.plain_dump_bytes = 0
        self.plain_dump_cpu = Series()  # pg_dump's own user+system CPU seconds
        self.plain_restore = Series()
        self.bk_wall = Series()
        self.bk_dump = Series()
        self.bk_verify = Series()
        self.bk_sha = Series()
        self.bk_bytes = 0
        self.bk_entries: int | None = None
        self.rs_wall = Series()
        self.rs_seconds = Series()  # RestoreResult.seconds
        self.rs_sha = Series()
        self.rs_pg_restore = Series()
        self.rs_create = Series()  # create_scratch
        self.rs_drop = Series()  # drop_database (the old, replaced database)
        self.drill: dict[str, float] | None = None
        self.notes: list[str] = []


def plain_dump(db: str, work: Path, res: Results, rep: int) -> Path:
    path = work / f"plain-{rep}.dump"
    seconds = run_tool(["pg_dump", "-Fc", "--no-password", "-f", str(path), db], db, res.plain_dump_cpu)
    res.plain_dump.append(seconds)
    res.plain_dump_bytes = path.stat().st_size
    log(f"  (a) plain pg_dump -Fc: {seconds:.2f} s, {human_bytes(res.plain_dump_bytes)}")
    return path


def tminus_backup(db: str, work: Path, res: Results, rep: int) -> Path:
    directory = work / f"tminus-{rep}"
    shas: list[float] = []
    with timing(backup_mod, "sha256_file", shas):
        start = time.perf_counter()
        result = backup_mod.backup(url_of(db), directory, label="bench", timeout=TOOL_TIMEOUT)
        wall = time.perf_counter() - start
    res.bk_wall.append(wall)
    res.bk_dump.append(result.dump_seconds)
    res.bk_verify.append(result.verify_seconds)
    res.bk_sha.append(sum(shas))
    res.bk_bytes, res.bk_entries = result.bytes, result.entries
    log(f"  (c) tminus backup: {wall:.2f} s (dump {result.dump_seconds:.2f} s, verify {result.verify_seconds:.2f} s,"
        f" sha256 {sum(shas):.2f} s, {result.entries} entries)")
    return result.path


def plain_restore(db: str, dump: Path, res: Results, rep: int) -> None:
    scratch = f"{db}_r{rep}"
    create_db(scratch)
    try:
        seconds = run_tool(["pg_restore", "--exit-on-error", "--no-password", "--dbname", scratch, str(dump)],
                           scratch)
    finally:
        drop_db(scratch)
    res.plain_restore.append(seconds)
    log(f"  (b) plain pg_restore: {seconds:.2f} s")


def tminus_restore(db: str, dump: Path, res: Results) -> None:
    target = f"{db}_t"
    drop_db(target)
    create_db(target)  # restore() replaces an existing database; an empty one, like plain pg_restore's
    shas: list[float] = []
    restores: list[float] = []
    creates: list[float] = []
    drops: list[float] = []
    try:
        with timing(restore_mod, "sha256_file", shas), timing(pgtools, "pg_restore_into", restores), \
                timing(pgtools, "create_scratch", creates), timing(pgtools, "drop_database", drops):
            start = time.perf_counter()
            result = restore_mod.restore(url_of(target), dump, timeout=TOOL_TIMEOUT)
            wall = time.perf_counter() - start
    finally:
        drop_db(target)
    if result.old_kept:
        drop_db(result.old_kept)
    res.rs_wall.append(wall)
    res.rs_seconds.append(result.seconds)
    res.rs_sha.append(sum(shas))
    res.rs_pg_restore.append(sum(restores))
    res.rs_create.append(sum(creates))
    res.rs_drop.append(sum(drops))
    log(f"  (d) tminus restore: {wall:.2f} s (checksum {sum(shas):.2f} s, pg_restore {sum(restores):.2f} s)")


def tminus_drill(db: str, work: Path, res: Results) -> None:
    fps: list[float] = []
    shas: list[float] = []
    with timing(backup_mod, "pg_fingerprint", fps), timing(backup_mod, "sha256_file", shas):
        start = time.perf_counter()
        result = backup_mod.backup(url_of(db), work / "drill", label="bench", drill=True, timeout=TOOL_TIMEOUT)
        wall = time.perf_counter() - start
    res.drill = {"wall": wall, "dump": result.dump_seconds, "verify": result.verify_seconds,
                 "drill": result.drill_seconds or 0.0, "sha": sum(shas),
                 "fp_source": fps[0] if fps else 0.0, "fp_restored": fps[1] if len(fps) > 1 else 0.0}
    log(f"  (e) tminus backup(drill=True): {wall:.2f} s (drill_seconds {result.drill_seconds:.2f} s,"
        f" fingerprints {sum(fps):.2f} s)")
    result.path.unlink(missing_ok=True)
    backup_mod.checksum_path(result.path).unlink(missing_ok=True)


def drill_estimate(res: Results) -> float:
    """dump + list + restore + two full-table fingerprints (each about a plain dump's time)."""
    return (res.bk_wall.median() + res.plain_restore.median() + 2 * res.plain_dump.median()) * 1.3


def run(args: argparse.Namespace) -> str:
    budget = Budget(args.budget)
    res = Results()
    name = PREFIX + secrets.token_hex(4)
    created = [name, f"{name}_t"] + [f"{name}_r{i}" for i in range(args.reps)]
    try:
        with admin() as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise SystemExit(f"PostgreSQL at {ADMIN_URL} is not reachable: {exc}") from None

    work_parent = Path(args.workdir) if args.workdir else Path(tempfile.gettempdir())
    free = shutil.disk_usage(work_parent).free
    need = args.size_gb * 1024**3 * 3.5 + 1024**3  # source + restored copy + dumps + WAL
    if free < need:
        raise SystemExit(f"{human_bytes(free)} free under {work_parent}, about {human_bytes(need)} needed for "
                         f"--size-gb {args.size_gb}; use a smaller --size-gb")

    facts = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": str(len(os.sched_getaffinity(0))),
             "cpu": cpu_model(), "mem": mem_total(), "kernel": platform.release(),
             "load_start": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
             "pg_dump": tool_version("pg_dump"), "pg_restore": tool_version("pg_restore"), **server_facts()}

    work = Path(tempfile.mkdtemp(prefix=PREFIX, dir=work_parent))
    try:
        log(f"creating {name} and generating about {args.size_gb} GiB ...")
        create_db(name)
        gen_start = time.perf_counter()
        data = generate(name, args.size_gb, budget)
        gen_seconds = time.perf_counter() - gen_start
        log(f"generated {human_bytes(data['size'])} in {gen_seconds:.0f} s")

        # Rep 1 of everything, then further reps and the drill only while the budget allows.
        dumps: list[Path] = []
        backups: list[Path] = []
        for rep in range(args.reps):
            estimate = ((res.plain_dump.median() + res.bk_wall.median() + res.plain_restore.median()
                         + res.rs_wall.median()) * 1.2 + 10) if rep else 0.0
            # A third or later repetition must also leave room for the drill.
            drill = drill_estimate(res) if rep >= 2 and not args.no_drill else 0.0
            if rep and not budget.allows(estimate + drill + 60):
                res.notes.append(f"only {rep} repetition(s): another would not fit the {args.budget:.0f} s budget")
                break
            # The order alternates, so neither side always runs right after the other's writes.
            plain_first = rep % 2 == 0
            log(f"repetition {rep + 1}: dumps")
            if plain_first:
                dumps.append(plain_dump(name, work, res, rep))
            backups.append(tminus_backup(name, work, res, rep))
            if not plain_first:
                dumps.append(plain_dump(name, work, res, rep))
            log(f"repetition {rep + 1}: restores")
            if plain_first:
                plain_restore(name, dumps[-1], res, rep)
            tminus_restore(name, backups[-1], res)
            if not plain_first:
                plain_restore(name, dumps[-1], res, rep)
            for path in (*dumps, *backups):  # keep the disk use flat
                path.unlink(missing_ok=True)
                backup_mod.checksum_path(path).unlink(missing_ok=True)

        if args.no_drill:
            res.notes.append("drill skipped (--no-drill)")
        else:
            estimate = drill_estimate(res)
            if budget.allows(estimate + 30):
                log("drill: backup(drill=True)")
                tminus_drill(name, work, res)
            else:
                res.notes.append(f"drill skipped: about {estimate:.0f} s needed, {budget.left():.0f} s of the "
                                 f"budget left")
    finally:
        log("cleaning up: dropping the scratch databases, deleting the dump files")
        for db in reversed(created):
            try:
                drop_db(db)
            except psycopg.Error as exc:
                log(f"  could not drop {db}: {exc}")
        try:
            with admin() as conn:
                left = [r[0] for r in conn.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE %s", (name + "%",)).fetchall()]
            for db in left:  # e.g. "<name>_t_old_..." should a restore's swap not have dropped it
                drop_db(db)
        except psycopg.Error as exc:
            log(f"  could not list/drop leftovers: {exc}")
        shutil.rmtree(work, ignore_errors=True)

    facts["elapsed"] = f"{budget.elapsed():.0f} s"
    facts["load_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return report(args, facts, data, gen_seconds, res)


# --- the report ------------------------------------------------------------------------------


def pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def report(args: argparse.Namespace, facts: dict[str, str], data: dict[str, Any], gen_seconds: float,
           res: Results) -> str:
    reps = len(res.plain_dump)
    dump = res.plain_dump.median()
    verify = res.bk_verify.median()
    sha = res.bk_sha.median()
    list_ratio = verify / dump
    full_ratio = (verify + sha) / dump
    wall_ratio = res.bk_wall.median() / dump - 1
    other = Series(w - d - v - s for w, d, v, s in zip(res.bk_wall, res.bk_dump, res.bk_verify, res.bk_sha,
                                                        strict=True))
    rs_other = Series(w - s - p - c - d for w, s, p, c, d in zip(
        res.rs_wall, res.rs_sha, res.rs_pg_restore, res.rs_create, res.rs_drop, strict=True))
    restore_ratio = res.rs_wall.median() / res.plain_restore.median()
    cpu_share = res.plain_dump_cpu.median() / dump
    per_call = Series((v + s) / d for v, s, d in zip(res.bk_verify, res.bk_sha, res.bk_dump, strict=True) if d)
    additions = res.rs_sha.median() + res.rs_create.median() + res.rs_drop.median() + rs_other.median()
    lo = lambda xs: min(xs)  # noqa: E731
    hi = lambda xs: max(xs)  # noqa: E731
    overlap = lo(res.bk_dump) <= hi(res.plain_dump) and lo(res.plain_dump) <= hi(res.bk_dump)
    met = full_ratio < TARGET_VERIFY_OVERHEAD
    yes = lambda ok: "yes" if ok else "**no**"  # noqa: E731

    out = [f"_Written by `.venv/bin/python benchmarks/backup.py --size-gb {args.size_gb:g}` "
           f"({reps} repetition{'s' if reps != 1 else ''} of each measurement, plain and tminus alternating "
           f"which goes first; median, with min .. max)._", ""]
    out += [f"- Date: {facts['date']}; the whole benchmark took {facts['elapsed']}; load average (1/5/15 min) "
            f"{facts['load_start']} at the start, {facts['load_end']} at the end (other work on the machine "
            f"shows up here and in the min .. max spread)",
            f"- Machine: `nproc` = {facts['nproc']}, CPU: {facts['cpu']}, RAM {facts['mem']}, Linux {facts['kernel']}",
            f"- PostgreSQL server {facts['server_version']} on 127.0.0.1 (shared_buffers {facts['shared_buffers']}, "
            f"max_wal_size {facts['max_wal_size']}, fsync {facts['fsync']}); {facts['pg_dump']}; {facts['pg_restore']}",
            f"- Data: `pg_database_size` = **{human_bytes(data['size'])}** (asked for {args.size_gb:g} GiB; "
            f"generated in {gen_seconds:.0f} s). Custom-format dump (default compression): "
            f"{human_bytes(res.plain_dump_bytes)}, {res.bk_entries} table-of-contents entries."]
    for relname, rows, table, index in data["tables"]:
        out.append(f"  - `{relname}`: {rows:,} rows, table {human_bytes(table)}, indexes {human_bytes(index)}")
    out += ["", "| Measurement | Median | Min .. max | Target | Met |", "|---|---:|---:|---|---|"]
    out += [f"| (a) plain `pg_dump -Fc -f FILE` {res.plain_dump.cell()} | | |",
            f"|   pg_dump's own CPU time (user + system) {res.plain_dump_cpu.cell()} | | |",
            f"| (c) tminus `backup()`, whole call {res.bk_wall.cell()} | | |",
            f"|   `dump_seconds` (pg_dump with an exported snapshot) {res.bk_dump.cell()} | | |",
            f"|   `verify_seconds` (`pg_restore --list` + entry count) {res.bk_verify.cell()} | | |",
            f"|   sha256 of the file (in `_finish`, not in `verify_seconds`) {res.bk_sha.cell()} | | |",
            f"|   the rest (connect, snapshot export, rename, `.sha256` file) {other.cell()} | | |",
            f"| **verification overhead** = (verify_seconds + sha256) / plain dump | **{pct(full_ratio)}** | | "
            f"< {pct(TARGET_VERIFY_OVERHEAD)} | {yes(met)} |",
            f"|   per `backup()` call: (verify_seconds + sha256) / its own dump_seconds | {pct(per_call.median())} | "
            f"{pct(min(per_call))} .. {pct(max(per_call))} | | |",
            f"|   `verify_seconds` alone / plain dump | {pct(list_ratio)} | | | |",
            f"|   whole `backup()` / plain dump | {wall_ratio + 1:.2f}x | | | |",
            f"| (b) plain `pg_restore --exit-on-error` into an empty database {res.plain_restore.cell()} | | |",
            f"| (d) tminus `restore()` into an existing empty database, whole call {res.rs_wall.cell()} | | |",
            f"|   checksum check (sha256 of the file) {res.rs_sha.cell()} | | |",
            f"|   create the scratch database {res.rs_create.cell()} | | |",
            f"|   `pg_restore` into the scratch database {res.rs_pg_restore.cell()} | | |",
            f"|   drop the replaced database {res.rs_drop.cell()} | | |",
            f"|   the rest (owner, swap: two renames, connections) {rs_other.cell()} | | |",
            f"|   tminus `restore()` / plain `pg_restore` (medians of the whole calls) | {restore_ratio:.2f}x | | | |",
            f"|   what tminus adds (checksum + create + drop + rest) / plain `pg_restore` | "
            f"{pct(additions / res.plain_restore.median())} | | | |"]
    d = res.drill
    if d is not None:
        rest = d["wall"] - d["dump"] - d["verify"] - d["drill"] - d["fp_source"] - d["fp_restored"] - d["sha"]
        out += [f"| (e) tminus `backup(drill=True)`, whole call | {d['wall']:.2f} s | (1 run) | | |",
                f"|   `drill_seconds` (create scratch + `pg_restore`: the measured recovery time) | "
                f"{d['drill']:.2f} s | (1 run) | | |",
                f"|   fingerprint of the source + of the restored copy | {d['fp_source']:.2f} s + "
                f"{d['fp_restored']:.2f} s | | | |",
                f"|   dump + verify + sha256 + rest (drop the drill database, ...) | {d['dump']:.2f} + "
                f"{d['verify']:.2f} + {d['sha']:.2f} + {rest:.2f} s | | | |"]
    out.append("")
    out += [f"_Note: {n}._" for n in res.notes]
    if res.notes:
        out.append("")

    verdict = "met" if met else "**not met**"
    out.append(
        f"**Verification overhead: target {verdict}.** Verifying the archive (`pg_restore --list` reads its table "
        f"of contents; sha256 hashes the whole file) costs {verify + sha:.2f} s against a {dump:.2f} s plain dump: "
        f"{pct(full_ratio)}, under the {pct(TARGET_VERIFY_OVERHEAD)} target" if met else
        f"**Verification overhead: target {verdict}.** Verifying the archive (`pg_restore --list` reads its table "
        f"of contents; sha256 hashes the whole file) costs {verify + sha:.2f} s against a {dump:.2f} s plain dump: "
        f"{pct(full_ratio)}, over the {pct(TARGET_VERIFY_OVERHEAD)} target")
    out[-1] += (
        f" ({pct(list_ratio)} for `pg_restore --list` alone, which is all that `verify_seconds` counts). "
        f"The table of contents is small, so the listing costs about the same at any data size; the sha256 reads "
        f"the {human_bytes(res.bk_bytes)} file (from the page cache here) and grows with the dump, but at "
        f"{res.bk_bytes / max(sha, 1e-9) / 1e6:.0f} MB/s (measured) it stays "
        f"far below the dump, which has to read and compress all the data. "
        f"pg_dump itself was on the CPU for {res.plain_dump_cpu.median():.1f} s of its {dump:.1f} s "
        f"({pct(cpu_share)}): compressing the rows (zlib, the custom format's default) on one core is the bulk "
        f"of a dump; the rest is waiting for the server to read and send them. The dump inside `backup()` is the "
        f"same pg_dump plus `--snapshot`: {res.bk_dump.median():.2f} s median "
        f"({min(res.bk_dump):.2f} .. {max(res.bk_dump):.2f} s) vs {dump:.2f} s "
        f"({min(res.plain_dump):.2f} .. {max(res.plain_dump):.2f} s) plain"
        + (", a difference within the run-to-run spread. " if overlap else ". ")
        + f"Measured against each call's own dump, verification added {pct(per_call.median())} (median).")
    out.append("")
    out.append(
        f"**Restore.** A tminus `restore()` took {restore_ratio:.2f}x a plain `pg_restore` (medians of the whole "
        f"calls). The pg_restore inside it ({res.rs_pg_restore.median():.2f} s, "
        f"{min(res.rs_pg_restore):.2f} .. {max(res.rs_pg_restore):.2f} s, vs {res.plain_restore.median():.2f} s, "
        f"{min(res.plain_restore):.2f} .. {max(res.plain_restore):.2f} s, plain: the same command) is most of it: "
        f"loading the rows, then building the indexes and checking the foreign keys. On top: "
        f"{res.rs_sha.median():.2f} s for the checksum check, {res.rs_create.median():.2f} s to create the scratch "
        f"database, {res.rs_drop.median():.2f} s to drop the replaced one and {rs_other.median():.2f} s for the "
        f"owner change and the two-rename swap: {additions:.2f} s, {pct(additions / res.plain_restore.median())} "
        f"of a plain pg_restore. The rest of the difference between the two medians is run-to-run variation "
        f"of pg_restore itself.")
    if d is not None:
        out.append("")
        out.append(
            f"**Drill.** `drill_seconds` = {d['drill']:.2f} s is the measured recovery time (the plain pg_restore "
            f"median is {res.plain_restore.median():.2f} s). The two fingerprints (an md5 of every row, of the source "
            f"and of the copy) add {d['fp_source'] + d['fp_restored']:.2f} s, so a drilled backup took "
            f"{d['wall']:.2f} s, {d['wall'] / dump:.1f}x a plain dump.")
    return "\n".join(out) + "\n"


def write_doc(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8") if DOC.exists() else f"# Backup performance\n\n{START_MARK}\n{END_MARK}\n"
    if START_MARK not in doc or END_MARK not in doc:
        doc = doc.rstrip("\n") + f"\n\n## Results\n\n{START_MARK}\n{END_MARK}\n"
    pattern = re.compile(re.escape(START_MARK) + ".*?" + re.escape(END_MARK), re.S)
    doc = pattern.sub(lambda _: f"{START_MARK}\n{text}{END_MARK}", doc, count=1)
    DOC.write_text(doc, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0, help="about how much data to generate (GiB)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each measurement, budget allowing")
    parser.add_argument("--budget", type=float, default=840.0, help="seconds for the whole run (default 840)")
    parser.add_argument("--no-drill", action="store_true", help="skip the backup(drill=True) measurement")
    parser.add_argument("--no-write", action="store_true", help=f"print only, do not rewrite {DOC.name}")
    parser.add_argument("--workdir", help="where to put the dump files (default: the temp directory)")
    args = parser.parse_args(argv)
    if args.size_gb <= 0 or args.reps < 1:
        parser.error("--size-gb must be positive and --reps at least 1")

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # so `finally` drops the databases

    signal.signal(signal.SIGTERM, on_term)
    text = run(args)
    print(text)
    if not args.no_write:
        write_doc(text)
        print(f"written into {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
