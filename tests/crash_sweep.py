"""The crash sweep's machinery (issue 9): a 12-step, 3-phase runbook whose steps log what they do,
trials that SIGKILL tminus at a ledger write (the test-only crash point, ledger/crashpoint.py) or in
the middle of a step, resume as docs/cli.md says, and the invariants every trial must keep.

A trial never fails on its own: it returns the violations it found, so the sweep reports them all."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner, Result
from tests.helpers import TMINUS

PHASES, PER_PHASE = 3, 4
STEPS = [f"s{i}" for i in range(1, PHASES * PER_PHASE + 1)]
NOT_IDEMPOTENT = {name for i, name in enumerate(STEPS) if i % 2 == 1}  # s2, s4, ...: re-running harms
FAILING = "s9"  # the first step of phase 3, in the configuration that rolls back
PHASE_UNDO = "p2"  # one phase with an undo of its own, beside every step's
TERMINAL_EXIT = {"completed": 0, "rolled_back": 11}
NEEDS_OPERATOR, RESUMES = 15, 4


def runbook(*, fail: bool) -> str:
    """Every step logs `start NAME PID` and `end NAME`, and holds while `hold-NAME` exists (so a test
    can kill it mid-step); its undo logs `undo NAME`."""
    lines = ["name: crash-sweep", "phases:"]
    for p in range(PHASES):
        lines += [f"  - name: p{p + 1}", "    steps:"]
        for name in STEPS[p * PER_PHASE:(p + 1) * PER_PHASE]:
            tail = "exit 1" if fail and name == FAILING else f'echo "end {name}" >> log'
            command = (f'echo "start {name} $$" >> log; while [ -e hold-{name} ]; do sleep 0.05; done; {tail}')
            lines += [f"      - name: {name}", f"        idempotent: {str(name not in NOT_IDEMPOTENT).lower()}",
                      f"        run: '{command}'", f"        undo: [{{run: 'echo \"undo {name}\" >> log'}}]"]
        if f"p{p + 1}" == PHASE_UNDO:
            lines.append(f"    undo: [{{run: 'echo \"undo {PHASE_UNDO}\" >> log'}}]")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Point:
    """Where a trial kills: `at` a crash-point spec for the process named by `during` ('run' or
    'rollback' of a completed run), or mid-step in step `hold`."""

    config: str  # "fails" or "completes"
    during: str
    at: str | None = None
    hold: str | None = None
    group: bool = False

    def __str__(self) -> str:
        where = f"after append {self.at}" if self.at else f"mid-step {self.hold}"
        return f"{self.config}/{self.during} {where} ({'group' if self.group else 'alone'})"


@dataclass
class Trial:
    point: Point
    violations: list[str] = field(default_factory=list)
    chose: list[str] = field(default_factory=list)  # operator choices made on resume
    status: str = ""
    undone_twice: list[str] = field(default_factory=list)  # an undo step run again (not a violation)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMINUS_TEST_CRASH")}
    return {**env, "TMINUS_OPERATOR": "tester", **(extra or {})}


def cli(directory: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TMINUS, *args], cwd=directory, env=_env(env), capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def spawn(directory: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """tminus in a session of its own, so a `group:` crash point kills tminus's group, not pytest."""
    return subprocess.Popen([*TMINUS, *args], cwd=directory, env=_env(env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, start_new_session=True)


def reference(directory: Path, config: str, during: str) -> list[tuple[int, str]]:
    """The appends of a clean run (or of the rollback of a clean, completed run): (index, type)."""
    (directory / "runbook.yaml").write_text(runbook(fail=config == "fails"))
    counted = {"TMINUS_TEST_CRASH_LOG": str(directory / "appends")}
    proc = cli(directory, "run", "runbook.yaml", "--no-input", env=None if during == "rollback" else counted)
    if during == "rollback":
        assert proc.returncode == 0, proc.stderr
        proc = cli(directory, "rollback", _run_id(directory), "--reason", "sweep", "--no-input", env=counted)
    assert proc.returncode == TERMINAL_EXIT["rolled_back" if config == "fails" or during == "rollback"
                                            else "completed"], proc.stderr
    return [(int(i), t) for i, t in (line.split() for line in (directory / "appends").read_text().splitlines())]


def run_trial(directory: Path, point: Point) -> Trial:
    trial = Trial(point)
    (directory / "runbook.yaml").write_text(runbook(fail=point.config == "fails"))
    crash = {"TMINUS_TEST_CRASH_AT": ("group:" if point.group else "") + point.at} if point.at else None
    if point.during == "rollback":
        done = cli(directory, "run", "runbook.yaml", "--no-input")
        if done.returncode != 0:
            return _violation(trial, f"the run to roll back did not complete: {done.stderr.strip()}")
        proc = spawn(directory, "rollback", _run_id(directory), "--reason", "sweep", "--no-input", env=crash)
    else:
        if point.hold:
            (directory / f"hold-{point.hold}").touch()
        proc = spawn(directory, "run", "runbook.yaml", "--no-input", env=crash)
    if point.hold:
        _wait(lambda: f"start {point.hold}" in _text(directory / "log") or proc.poll() is not None)
        os.killpg(proc.pid, signal.SIGKILL) if point.group else os.kill(proc.pid, signal.SIGKILL)
    code = proc.wait(timeout=120)
    if code != -signal.SIGKILL:
        return _violation(trial, f"tminus was not killed at the point (exit {code})")
    if point.group:
        _kill_step_groups(directory)
    if point.hold:
        (directory / f"hold-{point.hold}").unlink()  # a step that outlived tminus may now end
    _resume(directory, trial)
    _check(directory, trial)
    return trial


def _resume(directory: Path, trial: Trial) -> None:
    """As docs/cli.md says: `tminus resume RUN --no-input`; when it needs a choice for an interrupted
    step, the operator chooses --rollback (it never runs that step again). Bounded."""
    run_id, code = _run_id(directory), None
    for _ in range(RESUMES):
        trial.status = _status(directory, run_id)
        if trial.status == "completed" and trial.point.during == "rollback":
            # killed before the rollback changed anything the run's status shows: ask again
            trial.chose.append("tminus rollback again")
            code = cli(directory, "rollback", run_id, "--reason", "sweep, again", "--no-input").returncode
            continue
        if trial.status in TERMINAL_EXIT:
            break
        proc = cli(directory, "resume", run_id, "--no-input")
        code = proc.returncode
        if code == NEEDS_OPERATOR and "--rollback" in proc.stderr:
            trial.chose.append("--rollback")
            proc = cli(directory, "resume", run_id, "--no-input", "--rollback")
            code = proc.returncode
    trial.status = _status(directory, run_id)
    if trial.status not in TERMINAL_EXIT:
        _violation(trial, f"not ended after {RESUMES} resumes: status {trial.status}, last exit {code}")
    elif code is not None and code != TERMINAL_EXIT[trial.status]:
        _violation(trial, f"status {trial.status} but the last resume exited {code}")


def _check(directory: Path, trial: Trial) -> None:
    point, log = trial.point, [line.split() for line in _text(directory / "log").splitlines()]
    starts = {name: [i for i, words in enumerate(log) if words[:2] == ["start", name]] for name in STEPS}
    undos = {words[1]: i for i, words in enumerate(log) if words[0] == "undo"}
    trial.undone_twice = sorted({w[1] for w in log if w[0] == "undo" and log.count(w) > 1})
    for name in sorted(NOT_IDEMPOTENT & set(STEPS)):
        if len(starts[name]) > 1 and "--retry" not in trial.chose:
            _violation(trial, f"non-idempotent {name} started {len(starts[name])} times")
    expected = ("rolled_back" if point.config == "fails" or point.during == "rollback" or trial.chose
                else "completed")
    if trial.status != expected and trial.status in TERMINAL_EXIT:
        _violation(trial, f"ended {trial.status}, expected {expected}")
    if trial.status == "rolled_back":
        touched = _started_in_ledger(directory)
        for name in STEPS:
            if starts[name] and (name not in undos or undos[name] < starts[name][-1]):
                _violation(trial, f"{name} ran (log line {starts[name][-1] + 1}) but was not undone after it")
            if name in undos and name not in touched:
                _violation(trial, f"{name} was undone but never started (not in the ledger either)")
            if name in touched and name not in undos:
                _violation(trial, f"{name} was started (step.started recorded) but not undone")
        phase_touched = any(starts[n] for n in STEPS[PER_PHASE:2 * PER_PHASE])
        if phase_touched and PHASE_UNDO not in undos:
            _violation(trial, f"phase {PHASE_UNDO} was touched but its undo did not run")
    elif any(words[0] == "undo" for words in log):
        _violation(trial, "undo ran in a run that did not roll back")
    verify = ledger_verify(directory)
    if verify.exit_code != 0:
        _violation(trial, f"ledger verify exited {verify.exit_code}: {verify.output.strip()}")
    with contextlib.suppress(AssertionError):
        _wait(lambda: not _living(directory), timeout=10)
    if alive := _living(directory):
        _violation(trial, f"step processes still alive at the end: {alive}")
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _violation(trial: Trial, text: str) -> Trial:
    trial.violations.append(f"{trial.point}: {text}")
    return trial


def _started_in_ledger(directory: Path) -> set[str]:
    """Phase steps with a step.started: what the engine counts as touched (undo runs for these)."""
    with contextlib.closing(sqlite3.connect(directory / ".tminus" / "ledger.db")) as db:
        keys = {k for (k,) in db.execute("SELECT step_key FROM tminus_events WHERE type = 'step.started'")}
    return {STEPS[p * PER_PHASE + i] for p in range(PHASES) for i in range(PER_PHASE)
            if f"phases[{p}].steps[{i}]" in keys}


def _status(directory: Path, run_id: str) -> str:
    with contextlib.closing(sqlite3.connect(directory / ".tminus" / "ledger.db")) as db:
        return str(db.execute("SELECT status FROM tminus_runs WHERE id = ?", (run_id,)).fetchone()[0])


def _run_id(directory: Path) -> str:
    with contextlib.closing(sqlite3.connect(directory / ".tminus" / "ledger.db")) as db:
        return str(db.execute("SELECT id FROM tminus_runs ORDER BY started_at DESC LIMIT 1").fetchone()[0])


def ledger_verify(directory: Path) -> Result:
    """`tminus ledger verify`, in this process: the same command, without a second of start-up."""
    from tminus.cli.app import cli as tminus_cli

    url = f"sqlite:///{directory / '.tminus' / 'ledger.db'}"
    return CliRunner().invoke(tminus_cli, ["ledger", "verify", "--ledger", url])


def _processes(directory: Path) -> list[tuple[int, int]]:
    """(pid, pgid) of every living process working in `directory` (a trial's own: never another's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") != str(directory):
                continue
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            found.append((int(entry.name), int(fields[2])))
    return found


def _living(directory: Path) -> list[int]:
    return [pid for pid, _ in _processes(directory)]


def _kill_step_groups(directory: Path) -> None:
    """The second kill mode: the steps' process groups die with tminus (a host losing power)."""
    for pgid in {pgid for _, pgid in _processes(directory)}:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _wait(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout}s")
