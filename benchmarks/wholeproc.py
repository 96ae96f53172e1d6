"""Whole-process measurement for the issue-15 cases (floors.py): one command from spawn to exit, with
the kernel's own accounting of the finished child (os.wait4: user and system CPU, peak RSS), and
several commands measured in turn, interleaved, so the machine's drift touches them alike."""

from __future__ import annotations

import atexit
import marshal
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PYTHON = sys.executable
_SCRIPT = Path(PYTHON).parent / "tminus"
TMINUS: list[str] = [str(_SCRIPT)] if _SCRIPT.exists() else [PYTHON, "-m", "tminus"]


class BenchError(SystemExit):
    """The benchmark cannot go on (a command failed, the time budget is spent): exits non-zero."""


@dataclass(frozen=True)
class Sample:
    """One finished process: wall seconds, CPU seconds (its own and its reaped children's), peak RSS
    of the largest single process among them, in MiB."""

    wall: float
    user: float
    sys: float
    peak_mb: float

    @property
    def cpu(self) -> float:
        return self.user + self.sys


@dataclass
class Command:
    """A command to measure: `key` names it in the results, `role` is tminus, floor or peer."""

    key: str
    label: str
    role: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    samples: list[Sample] = field(default_factory=list)

    def walls(self) -> list[float]:
        return [s.wall for s in self.samples]

    def cpus(self) -> list[float]:
        return [s.cpu for s in self.samples]

    def peaks(self) -> list[float]:
        return [s.peak_mb for s in self.samples]


class OverBudget(BenchError):
    """The time budget is spent: the cases done so far are still reported."""


class Clock:
    """The benchmark's overall time budget: every measurement checks it first."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.deadline = time.monotonic() + budget

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise OverBudget(f"benchmark: over its {self.budget:.0f} s budget, stopping")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A measured child's environment: none of the caller's TMINUS_* settings, and bytecode written
    (this machine sets PYTHONDONTWRITEBYTECODE; without the .pyc files every start compiles again)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMINUS_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["TMINUS_OPERATOR"] = "bench"
    env.update(extra or {})
    return env


def compile_once() -> None:
    """Compile tminus's sources once, so no measured start pays for it (site-packages came compiled)."""
    import tminus

    package = Path(tminus.__file__).resolve().parent
    subprocess.run([PYTHON, "-m", "compileall", "-q", "-j", "0", str(package)], env=child_env(),
                   stdout=subprocess.DEVNULL, check=True, timeout=300)


# The launcher every measured command is spawned from. A child's peak RSS (ru_maxrss) can never read
# below the RSS of the process that spawned it (exec carries the old memory's high-water mark over),
# so the commands are not spawned from this process, which has imported much more: a bare interpreter
# (-I -S, about 9 MB) spawns them (posix_spawn, its own session), reaps them with wait4 and answers
# "wall user sys maxrss_kib exit_code". Requests: 8 ASCII digits of length, then marshal data.
_LAUNCHER = r"""
import marshal, os, signal, sys, time
child = 0
def expire(signum, frame):
    try:
        os.killpg(child, signal.SIGKILL)
    except ProcessLookupError:
        pass
signal.signal(signal.SIGALRM, expire)
src, dst = sys.stdin.buffer, sys.stdout.buffer
null = os.open(os.devnull, os.O_RDONLY)
while True:
    size = src.read(8)
    if len(size) < 8:
        break
    argv, cwd, env, log, timeout = marshal.loads(src.read(int(size)))
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.chdir(cwd)
    actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, out, 2)]
    start = time.perf_counter()
    try:
        child = os.posix_spawnp(argv[0], argv, env, file_actions=actions, setsid=True)
    except OSError as exc:
        os.write(out, ("cannot start %s: %s\n" % (argv[0], exc)).encode())
        answer = "0 0 0 0 127"
    else:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        _, status, usage = os.wait4(child, 0)
        wall = time.perf_counter() - start
        signal.setitimer(signal.ITIMER_REAL, 0)
        answer = "%r %r %r %d %d" % (wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss,
                                     os.waitstatus_to_exitcode(status))
    os.close(out)
    dst.write(answer.encode() + b"\n")
    dst.flush()
"""
_launcher: subprocess.Popen[bytes] | None = None


def _launch() -> subprocess.Popen[bytes]:
    global _launcher
    if _launcher is None or _launcher.poll() is not None:
        _launcher = subprocess.Popen([PYTHON, "-I", "-S", "-c", _LAUNCHER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        atexit.register(_launcher.kill)
    return _launcher


def measure(argv: Sequence[str], cwd: Path, env: dict[str, str], log: Path, timeout: float) -> Sample:
    """Run `argv` once, its output appended to `log`; the command must exit 0."""
    launcher = _launch()
    assert launcher.stdin is not None and launcher.stdout is not None
    request = marshal.dumps(([str(a) for a in argv], str(cwd), env, str(log), float(timeout)))
    launcher.stdin.write(b"%08d" % len(request) + request)
    launcher.stdin.flush()
    answer = launcher.stdout.readline().split()
    if len(answer) != 5:
        raise BenchError("benchmark: the launcher of the measured commands died")
    wall, user, sys_, peak = (float(x) for x in answer[:4])
    code = int(answer[4])
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:] if log.exists() else ""
        raise BenchError(f"benchmark: `{' '.join(argv)}` in {cwd} exited {code}\n{tail}")
    return Sample(wall=wall, user=user, sys=sys_, peak_mb=peak / 1024)


def interleave(commands: list[Command], reps: int, warmup: int, clock: Clock, logs: Path,
               timeout: float = 300.0) -> None:
    """Measure each command `reps` times in turn (A B C, B C A, ...: the order rotates so no command
    always follows the same one), after `warmup` uncounted rounds."""
    logs.mkdir(parents=True, exist_ok=True)
    for rep in range(-warmup, reps):
        shift = rep % len(commands)
        for command in commands[shift:] + commands[:shift]:
            clock.check()
            sample = measure(command.argv, command.cwd, command.env, logs / f"{command.key}.log", timeout)
            if rep >= 0:
                command.samples.append(sample)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
