"""The faults a rehearsal injects, without touching the runbook: the engine itself stops the run.

- `FailAfter`: right after a phase ends, the run takes the rollback path exactly as when a step fails
  (a `rollback` stop by `policy:rehearsal`, recorded as policy.applied and run.stop).
- `KillAfter` / `run_killed`: tminus is SIGKILLed right after a phase passed, as a `kill -9` would:
  the run is left `running` (resumable), and the rehearsal rolls the crashed run back with
  `Session.rollback`. The run happens in a child process (child.py) so that it is tminus itself,
  mid-run, that dies, and the rehearsal survives to measure the recovery.
- `ForceMonitor`: a monitor rule forced to fire once the monitor window begins (the policy hook
  `forced_rules`, engine/policy.py): recorded as a forced transition, then acted on as a real firing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tminus.engine.policy import CONTINUE, Decision, Policy, stop
from tminus.engine.stop import ROLLBACK
from tminus.errors import TminusError

if TYPE_CHECKING:
    from tminus.engine.lifecycle import Section, SectionResult
    from tminus.runbook.models import Runbook
    from tminus.runbook.monitor import AlertRule

POLICY = "rehearsal"  # the policy's name: the stop is `by: policy:rehearsal`
CHILD = "tminus.engine.rehearsal.child"  # `python -m` it: the kill cycle's run (not a user-visible command)
SPEC_REFUSED = 2  # the child's exit code when its spec is wrong (a programming error of the caller)
KILLED = -signal.SIGKILL  # Popen's returncode of a child that SIGKILLed itself
GRACE = 10.0  # seconds a timed-out child has to stop its run resumably (SIGTERM) before SIGKILL
TAIL = 4000  # characters of the child's stderr kept


class FaultError(TminusError):
    """A fault that cannot be injected into this runbook (no rule to force, no such phase)."""


def fault_reason(phase: str) -> str:
    return f"rehearsal: failure injected after phase '{phase}'"


def forced_reason(rule: str) -> str:
    """The reason of a forced transition: an auditor must see it was not a breach the probes saw."""
    return (f"forced by the rehearsal (monitor fault): rule '{rule}' made to fire as the window began, "
            "not by a breach")


class FailAfter(Policy):
    """Roll back right after the phase at `index` (of `phases:`) has passed."""

    name = POLICY

    def __init__(self, index: int, phase: str) -> None:
        self.index, self.phase = index, phase

    def after_section(self, section: Section, result: SectionResult) -> Decision:
        if section.kind == "phase" and section.index == self.index:
            return stop(ROLLBACK, fault_reason(self.phase))
        return CONTINUE


class KillAfter(Policy):
    """SIGKILL this process right after the phase at `index` passed (its `section.finished` is in the
    ledger: the recorder appends synchronously). `announce(epoch)` is called just before, so the
    parent learns when the fault struck. A phase that failed is not killed: the run goes on to its
    real outcome (the rollback of a failing step), which the rehearsal reports as such."""

    name = POLICY

    def __init__(self, index: int, phase: str, *, announce: Callable[[float], None] | None = None) -> None:
        self.index, self.phase, self.announce = index, phase, announce

    def after_section(self, section: Section, result: SectionResult) -> Decision:
        if section.kind == "phase" and section.index == self.index and result.ok:
            if self.announce is not None:
                self.announce(time.time())
            os.kill(os.getpid(), signal.SIGKILL)
        return CONTINUE


class ForceMonitor(Policy):
    """Force one monitor rule to fire once the window begins: `rule` by name, else the first rule
    whose action is rollback. Call `check(runbook)` before the run: it raises FaultError when there is
    no such rule (the hook raises it too, but by then the run has begun)."""

    name = POLICY

    def __init__(self, rule: str | None = None) -> None:
        self.rule = rule

    def check(self, runbook: Runbook) -> AlertRule:
        """The rule that will be forced, or FaultError saying why there is none."""
        if runbook.monitor is None:
            raise FaultError(f"the runbook '{runbook.name}' has no monitor section: there is no rule to force "
                             "(the monitor fault needs one)")
        return self.pick(runbook.monitor.rules, runbook.name)

    def pick(self, rules: Sequence[AlertRule], runbook: str = "") -> AlertRule:
        of = f"the runbook '{runbook}'" if runbook else "the runbook"
        listed = ", ".join(f"'{r.name}' ({r.action})" for r in rules) or "none"
        if self.rule is not None:
            named = next((r for r in rules if r.name == self.rule), None)
            if named is None:
                raise FaultError(f"{of} has no monitor rule named '{self.rule}'; its rules: {listed}")
            return named
        first = next((r for r in rules if r.action == "rollback"), None)
        if first is None:
            raise FaultError(f"{of} has no monitor rule whose action is rollback to force (its rules: {listed}); "
                             "name the rule to force")
        return first

    def forced_rules(self, rules: Sequence[AlertRule]) -> dict[str, str]:
        name = self.pick(rules).name
        return {name: forced_reason(name)}


@dataclass(frozen=True)
class Killed:
    """How a kill cycle's child ended. `killed_at` (epoch) is when it was about to SIGKILL itself,
    None when it never reached the phase: then `status` and `returncode` are the run's real outcome
    (blocked gates: status `blocked`, exit 10; a failing step rolled back: `rolled_back`, 11; lease
    held: no run, exit 14). `status` is the run's status in the ledger once the child is gone (None:
    no run was recorded); `reason` the child's own account, or why the parent stopped it."""

    run_id: str
    killed_at: float | None
    returncode: int
    stderr_tail: str
    status: str | None = None
    reason: str = ""

    @property
    def killed(self) -> bool:
        return self.killed_at is not None and self.returncode == KILLED


def run_killed(
    runbook_path: str | Path, environment: str, ledger_url: str, *, phase_index: int, phase: str,
    overrides: dict[str, Any] | None = None, operator: str = "", yes: bool = False,
    tags: dict[str, Any] | None = None, timeout: float | None = None, run_id: str | None = None,
) -> Killed:
    """Run the runbook in a child process (a normal Session.run, under `KillAfter`) that SIGKILLs
    itself right after phase `phase_index` (named `phase`) passed, and wait for it. The run id is
    chosen here and handed to the child, so it is known even if the child dies before saying
    anything. A child still running after `timeout` seconds is stopped as an operator would (SIGTERM:
    the run ends interrupted, resumable; SIGKILL after GRACE seconds). FaultError, before any child,
    when the runbook has no phase `phase` at `phase_index`."""
    from tminus.engine.session import new_run_id

    check_phase(runbook_path, phase_index, phase)
    run_id = run_id or new_run_id()
    spec = {"runbook": str(Path(runbook_path).resolve()), "environment": environment, "ledger": ledger_url,
            "phase_index": phase_index, "phase": phase, "overrides": overrides or {}, "operator": operator,
            "yes": yes, "tags": tags or {}, "run_id": run_id}
    proc = subprocess.Popen([sys.executable, "-m", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stopped = ""
    try:
        out, err = proc.communicate(json.dumps(spec), timeout=timeout)
    except subprocess.TimeoutExpired:
        stopped = f"the run did not reach the end of phase '{phase}' within {timeout:g}s: stopped (SIGTERM)"
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            stopped += f", then killed: it did not stop within {GRACE:g}s"
    said = _said(out)
    if proc.returncode == SPEC_REFUSED and "error" in said:
        raise FaultError(str(said["error"]))
    killed_at = said.get("killing") if proc.returncode == KILLED else None
    reason = stopped or str(said.get("reason") or said.get("error") or "")
    return Killed(run_id, float(killed_at) if isinstance(killed_at, int | float) else None, proc.returncode,
                  (err or "")[-TAIL:], _status(ledger_url, run_id), reason)


def check_phase(runbook_path: str | Path, index: int, phase: str) -> None:
    """FaultError unless phase `index` of the runbook is named `phase` (the child checks it again)."""
    from tminus.runbook.loader import load_runbook

    problem = phase_problem([p.name for p in load_runbook(Path(runbook_path)).runbook.phases], index, phase)
    if problem:
        raise FaultError(problem)


def phase_problem(names: list[str], index: Any, phase: str) -> str | None:
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(names) and names[index] == phase:
        return None
    listed = ", ".join(f"{i}: '{name}'" for i, name in enumerate(names)) or "none"
    return f"no phase '{phase}' at index {index!r}; the phases are {listed}"


def _said(out: str | None) -> dict[str, Any]:
    """The child's JSON lines (`{"killing": epoch}`, then its end or its error), merged."""
    said: dict[str, Any] = {}
    for line in (out or "").splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            said.update(data)
    return said


def _status(ledger_url: str, run_id: str) -> str | None:
    from tminus.errors import LedgerError
    from tminus.ledger import open_reader

    try:
        reader = open_reader(ledger_url)
    except LedgerError:
        return None
    try:
        record = reader.get_run(run_id)
        return record.status if record is not None else None
    finally:
        reader.close()


__all__ = ["POLICY", "FailAfter", "FaultError", "ForceMonitor", "KillAfter", "Killed", "check_phase",
           "fault_reason", "forced_reason", "run_killed"]
