"""The issue-15 cases: each measures tminus as a whole process beside its floor (and a peer where
there is one), interleaved in the same run, and states its figures against the issue's targets."""

from __future__ import annotations

import secrets
import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import floor_runbooks as rb
from floor_results import CaseResult, Figure, Yardstick
from loopback import HTTPX_SEQUENTIAL, RAW_ASYNCIO_CLIENT, loopback_server
from wholeproc import PYTHON, TMINUS, Clock, Command, Sample, child_env, interleave, measure

# Targets of issue 15 (seconds, or MiB).
TARGET_EMPTY_RUN = 0.150
TARGET_VALIDATE_PLAN = 0.120
TARGET_HTTP = 0.5
TARGET_STEP_CPU_SQLITE = 0.001
TARGET_STEP_CPU_POSTGRES = 0.0015
TARGET_PEAK_RSS_MB = 80.0


@dataclass(frozen=True)
class Sizes:
    """Repetitions and workload sizes: the default, `--full` (more repetitions) and the smoke test's
    smallest (one repetition, small workloads, no warm-up)."""

    reps: int = 5
    http_reps: int = 3
    step_reps: int = 3
    big_reps: int = 1
    warmup: int = 1
    validate_steps: tuple[int, ...] = (100, 8)
    http_checks: int = 200
    run_steps: int = 200
    big_steps: int = 5000


DEFAULT = Sizes()
FULL = Sizes(reps=15, http_reps=9, step_reps=7, big_reps=3, warmup=2)
SMOKE = Sizes(reps=1, http_reps=1, step_reps=1, big_reps=1, warmup=0, validate_steps=(8,), http_checks=5, run_steps=5,
              big_steps=20)


@dataclass
class Context:
    sizes: Sizes
    workspace: Path
    clock: Clock
    pg_url: str

    def workdir(self, name: str, files: dict[str, str]) -> Path:
        """A directory kept for the whole case: its `.tminus/ledger.db` persists from run to run."""
        path = self.workspace / name
        path.mkdir(parents=True, exist_ok=True)
        for file, text in files.items():
            (path / file).write_text(text, encoding="utf-8")
        return path

    def run(self, commands: list[Command], reps: int, warmup: int | None = None) -> None:
        interleave(commands, reps, self.sizes.warmup if warmup is None else warmup, self.clock,
                   self.workspace / "logs")

    def once(self, command: Command) -> Sample:
        """One uncounted run (to create a ledger, or compile what it imports)."""
        self.clock.check()
        logs = self.workspace / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return measure(command.argv, command.cwd, command.env, logs / f"{command.key}.log", 300)


def python_pass(ctx: Context) -> Command:
    return Command("python-pass", "`python -c pass` (the venv's interpreter)", "floor", [PYTHON, "-c", "pass"],
                   ctx.workspace, child_env())


def tminus(key: str, label: str, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Command:
    return Command(key, label, "tminus", [*TMINUS, *args], cwd, env or child_env())


def median_of(command: Command) -> float:
    return statistics.median(command.walls())


def stick(command: Command) -> Yardstick:
    """A floor or peer command beside a whole-process figure: its wall and CPU medians."""
    return Yardstick(command.label, median_of(command), statistics.median(command.cpus()))


# --- the cases -----------------------------------------------------------------------------------


def empty_run(ctx: Context) -> CaseResult:
    cwd = ctx.workdir("empty-run", {"runbook.yaml": rb.empty_runbook()})
    run = tminus("tminus-run", "`tminus run` of a runbook with nothing but a name", ["run", "runbook.yaml"], cwd)
    floor = python_pass(ctx)
    ctx.run([run, floor], ctx.sizes.reps)
    return CaseResult(
        "empty-run", "empty `tminus run`, persistent SQLite ledger (warmed) vs `python -c pass`", ctx.sizes.reps,
        [run, floor],
        [Figure("empty `tminus run`, whole process", "ms", run.walls(), TARGET_EMPTY_RUN, stick(floor),
                cpu=run.cpus())])


def validate_plan(ctx: Context) -> CaseResult:
    files = {f"release-{n}.yaml": rb.mixed(n) for n in ctx.sizes.validate_steps}
    cwd = ctx.workdir("validate-plan", files)
    floor = python_pass(ctx)
    commands: list[Command] = []
    figures: list[Figure] = []
    for n in ctx.sizes.validate_steps:
        for verb in ("validate", "plan"):
            commands.append(tminus(f"{verb}-{n}", f"`tminus {verb}` of a {n}-step runbook",
                                   [verb, f"release-{n}.yaml"], cwd))
    ctx.run([*commands, floor], ctx.sizes.reps)
    for i, command in enumerate(commands):
        target = TARGET_VALIDATE_PLAN if i < 2 else None  # the targets are the first (largest) size's
        figures.append(Figure(f"{command.label}, whole process", "ms", command.walls(), target, stick(floor),
                              cpu=command.cpus()))
    return CaseResult("validate-plan", "`tminus validate` and `tminus plan` vs `python -c pass`", ctx.sizes.reps,
                      [*commands, floor], figures,
                      ["Runbook: vars and templates, a gate of HTTP checks, phases of named `run` steps (every other "
                       "with its undo), verify checks; N steps as `tminus validate` counts them (undo included)."])


def http_checks(ctx: Context) -> CaseResult:
    n = ctx.sizes.http_checks
    with loopback_server() as port:
        cwd = ctx.workdir("http", {"gate.yaml": rb.gate_checks(n, port), "verify.yaml": rb.verify_checks(n, port)})
        gate = tminus("gate", f"`tminus gate`: one gate of {n} HTTP checks", ["gate", "gate.yaml"], cwd)
        verify = tminus("verify", f"`tminus run`: a verify section of {n} HTTP checks", ["run", "verify.yaml"], cwd)
        raw = Command("raw-asyncio", f"raw asyncio client, {n} requests on one keep-alive connection", "floor",
                      [PYTHON, "-c", RAW_ASYNCIO_CLIENT, str(port), str(n)], cwd, child_env())
        peer = Command("httpx", f"httpx `Client`, {n} sequential requests", "peer",
                       [PYTHON, "-c", HTTPX_SEQUENTIAL, str(port), str(n)], cwd, child_env())
        commands = [gate, verify, raw, peer]
        ctx.run(commands, ctx.sizes.http_reps)
    return CaseResult(
        "http-checks", f"{n} HTTP checks (gate and verify) against a loopback keep-alive server",
        ctx.sizes.http_reps,
        commands,
        [Figure(f"{n} HTTP checks as a gate, whole process", "s", gate.walls(), TARGET_HTTP, stick(raw), stick(peer),
                cpu=gate.cpus()),
         Figure(f"{n} HTTP checks as verify, whole process", "s", verify.walls(), TARGET_HTTP, stick(raw),
                stick(peer), cpu=verify.cpus())],
        ["Server: asyncio, HTTP/1.1 keep-alive, in its own process on 127.0.0.1 (benchmarks/loopback.py). Each check "
         "`GET /health` expecting `status == 200` and `jsonpath \"$.ok\" == true`; the floor and the peer check "
         "the same two things."])


def _steps(ctx: Context, name: str, ledger: str, env: dict[str, str], target: float) -> CaseResult:
    n = ctx.sizes.run_steps
    cwd = ctx.workdir(name, {"steps-0.yaml": rb.run_steps(0), f"steps-{n}.yaml": rb.run_steps(n)})
    zero = tminus("tminus-0", "`tminus run`, 0 steps", ["run", "steps-0.yaml"], cwd, env)
    many = tminus(f"tminus-{n}", f"`tminus run`, {n} x `run: \"true\"`", ["run", f"steps-{n}.yaml"], cwd, env)
    bash0 = Command("bash-0", "bash loop, 0 x `/bin/sh -c true`", "floor",
                    ["bash", "-c", "for i in $(seq 0); do /bin/sh -c true; done"], cwd, child_env())
    bash = Command(f"bash-{n}", f"bash loop, {n} x `/bin/sh -c true`", "floor",
                   ["bash", "-c", f"for i in $(seq {n}); do /bin/sh -c true; done"], cwd, child_env())
    commands = [zero, many, bash0, bash]
    ctx.run(commands, ctx.sizes.step_reps)

    def per_step(of: Callable[[Sample], float], a: Command, b: Command) -> list[float]:
        return [(of(x) - of(y)) / n for x, y in zip(a.samples, b.samples, strict=True)]

    tm_cpu, sh_cpu = per_step(lambda s: s.cpu, many, zero), per_step(lambda s: s.cpu, bash, bash0)
    tm_wall, sh_wall = per_step(lambda s: s.wall, many, zero), per_step(lambda s: s.wall, bash, bash0)
    cpu_beyond = [t - s for t, s in zip(tm_cpu, sh_cpu, strict=True)]
    wall_beyond = [t - s for t, s in zip(tm_wall, sh_wall, strict=True)]
    spawn_cpu = Yardstick("bash: CPU per `/bin/sh -c true`", statistics.median(sh_cpu))
    spawn_wall = Yardstick("bash: wall per `/bin/sh -c true`", statistics.median(sh_wall))
    return CaseResult(
        name, f"`run: \"true\"` steps on a {ledger} ledger vs a bash loop spawning the same shell", ctx.sizes.step_reps,
        commands,
        [Figure(f"{ledger}: tminus CPU per step beyond the spawn", "ms", cpu_beyond, target, spawn_cpu),
         Figure(f"{ledger}: wall per step beyond the spawn", "ms", wall_beyond, None, spawn_wall),
         Figure(f"{ledger}: tminus CPU per step, spawn included", "ms", tm_cpu, None, spawn_cpu),
         Figure(f"{ledger}: `tminus run` of {n} steps, whole process", "s", many.walls(), None, stick(bash),
                cpu=many.cpus())],
        [f"Per step = (N={n} - N=0) / {n}, repetition by repetition, for tminus and for the bash loop; "
         "\"beyond the spawn\" subtracts the bash loop's figure. CPU is user+sys of the process and every child it "
         "reaped (os.wait4); tminus runs each step as one `/bin/sh`, like the loop."])


def steps_sqlite(ctx: Context) -> CaseResult:
    return _steps(ctx, "steps-sqlite", "SQLite", child_env(), TARGET_STEP_CPU_SQLITE)


def steps_postgres(ctx: Context) -> CaseResult:
    with scratch_database(ctx.pg_url) as (url, problem):
        if url is None:
            return CaseResult("steps-postgres", "`run: \"true\"` steps on a PostgreSQL ledger", 0,
                              notes=[f"skipped: {problem}"])
        return _steps(ctx, "steps-postgres", "PostgreSQL", child_env({"TMINUS_LEDGER": url}),
                      TARGET_STEP_CPU_POSTGRES)


def steps_5000(ctx: Context) -> CaseResult:
    n = ctx.sizes.big_steps
    cwd = ctx.workdir("steps-big", {"empty.yaml": rb.empty_runbook(), "steps.yaml": rb.run_steps(n)})
    if ctx.sizes.warmup:  # the ledger exists, the modules are compiled; too long to warm up with the big run
        ctx.once(tminus("warm", "", ["run", "empty.yaml"], cwd))
    run = tminus("tminus-big", f"`tminus run`, {n} x `run: \"true\"` (SQLite)", ["run", "steps.yaml"], cwd)
    bash = Command("bash-big", f"bash loop, {n} x `/bin/sh -c true`", "floor",
                   ["bash", "-c", f"for i in $(seq {n}); do /bin/sh -c true; done"], cwd, child_env())
    floor = python_pass(ctx)
    ctx.run([run, bash, floor], ctx.sizes.big_reps, warmup=0)
    return CaseResult(
        "steps-5000", f"a {n}-step run: peak RSS and time", ctx.sizes.big_reps, [run, bash, floor],
        [Figure(f"peak RSS of a {n}-step `tminus run`", "MB", run.peaks(), TARGET_PEAK_RSS_MB,
                Yardstick(floor.label, statistics.median(floor.peaks()))),
         Figure(f"`tminus run` of {n} steps, whole process", "s", run.walls(), None, stick(bash), cpu=run.cpus())],
        ["Peak RSS: ru_maxrss of the largest single process among the run and the children it reaped."])


@contextmanager
def scratch_database(admin_url: str) -> Iterator[tuple[str | None, str]]:
    """A fresh database on the server of `admin_url`, dropped afterwards: (its URL, "") or (None, why not)."""
    try:
        import psycopg
    except ImportError:
        yield None, "psycopg is not installed"
        return
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        yield None, f"PostgreSQL not reachable at {admin_url} ({str(exc).strip().splitlines()[0:1]})"
        return
    name = f"tminus_bench_{secrets.token_hex(4)}"
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        base = admin_url.rsplit("/", 1)[0]
        yield f"{base}/{name}", ""
    finally:
        try:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.close()


CASES: dict[str, Callable[[Context], CaseResult]] = {
    "empty-run": empty_run,
    "validate-plan": validate_plan,
    "http-checks": http_checks,
    "steps-sqlite": steps_sqlite,
    "steps-postgres": steps_postgres,
    "steps-5000": steps_5000,
}
