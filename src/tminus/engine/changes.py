"""The sections around the change itself: the gates that must pass before anything changes, the
phases that change, and verify, which confirms the change (and, inside the rollback, its undoing).

Each is a function of the run's shared state (run_state.py); the runner plugs them into the
lifecycle (`Runner.lifecycle`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tminus import events as ev
from tminus.engine import checkgroup, preconditions
from tminus.engine import lifecycle as lc
from tminus.engine.lifecycle import Next, Section, SectionResult
from tminus.engine.outcome import FAILED, SKIPPED, StepOutcome
from tminus.engine.run_state import RunState
from tminus.engine.stages import gates_for
from tminus.runbook.models import Gate, Phase, Runbook, Step
from tminus.runbook.references import step_outputs_read

# --- gates ---------------------------------------------------------------------------------------


def gates(state: RunState, section: Section) -> SectionResult:
    """Every gate's checks, concurrently within a gate; every failure reported. Before them, what
    the ledger must hold (`requires:`, stages: engine/preconditions.py)."""
    failures = manifest_problems(state.rb, state.environment, state.steps.environ)
    for problem in failures:
        state.steps.emit(ev.NOTE, "environment", action="manifest", message=problem)
    checked = preconditions.check(state, state.preconditions) if state.preconditions is not None else None
    if checked is not None:
        failures.extend(checked.failures)
    for gate in gates_to_run(state):
        outcomes = checkgroup.run_all(state, gate.checks, lc.section_id(lc.GATE, gate.name))
        failures.extend(f"gate '{gate.name}': {o.message}" for o in outcomes if not o.ok)
    data = checked.data if checked is not None else {}
    if failures:
        return SectionResult(Next.BLOCK, ok=False, reason="a gate failed: nothing was changed",
                             failures=failures, data={"failures": failures, **data})
    return SectionResult(reason="every gate passed", data={"failures": [], **data})


def gates_to_run(state: RunState) -> list[Gate]:
    """A stage run (`tminus gate --stage`) runs that stage's gates; every other run the unstaged ones."""
    pre = state.preconditions
    return gates_for(state.rb, pre.stage if pre is not None else None)


def manifest_problems(rb: Runbook, env_name: str, environ: Mapping[str, str]) -> list[str]:
    """The environment's variable manifest: required names set, forbidden values absent."""
    spec = rb.environments.get(env_name)
    if spec is None:
        return []
    out = [
        f"environment variable {n} is required in '{env_name}' but is not set"
        for n in spec.env.required
        if not environ.get(n)
    ]
    for name, forbidden in spec.env.forbidden.items():
        values = [forbidden] if isinstance(forbidden, str) else forbidden
        if name in environ and environ[name] in values:
            # never print the value itself: it may be a secret
            out.append(f"environment variable {name} is set to a value forbidden in '{env_name}'")
    return out


# --- phases --------------------------------------------------------------------------------------


def phase_section(state: RunState, index: int, phase: Phase) -> Section:
    """The section of one phase; done when every step finished ok (a step re-run for its secret
    outputs is not done)."""
    return Section(lc.PHASE, phase.name, run=lambda section: _phase(state, section), index=index,
                   done=lambda: all(state.finished_ok(s) for s in phase.steps),
                   starting=lambda: _phase_starting(state, index))


def _phase_starting(state: RunState, index: int) -> dict[str, Any]:
    phase = state.rb.phases[index]
    if index not in state.started_phases:
        state.started_phases.append(index)
    fields: dict[str, Any] = {
        "phase": phase.name,
        "index": index,
        "budget": phase.budget,
        "planned_start": sum(p.budget or 0.0 for p in state.rb.phases[:index]),
    }
    monitor = state.monitor
    if monitor is not None and monitor.cutover_at is None:
        monitor.begin_cutover()  # the baseline ends where the first change begins
        fields["cutover_at"] = monitor.cutover_at
    return fields


def _phase(state: RunState, section: Section) -> SectionResult:
    assert section.index is not None
    phase = state.rb.phases[section.index]
    phase_started = time.monotonic()
    continued: list[str] = []  # steps with on_failure: continue that failed
    for step in phase.steps:
        if state.finished_ok(step):
            continue
        outcome = state.run_step(step, section.id)
        if outcome.ok:
            continue
        policy = step.failure_policy
        if policy == "continue":
            continued.append(step.key)
            continue
        reason = f"step '{step.title}' in phase '{phase.name}' failed:\n{outcome.message}"
        if policy == "abort":
            return SectionResult(Next.ABORT, ok=False, data={"failed_step": step.key},
                                 reason=reason + "\n(on_failure: abort: nothing undone)")
        return SectionResult(Next.ROLLBACK, ok=False, reason=reason, data={"failed_step": step.key})
    data: dict[str, Any] = {"actual": round(time.monotonic() - phase_started, 3), "budget": phase.budget}
    if continued:
        data["continued"] = continued
    return SectionResult(data=data)


# --- verify --------------------------------------------------------------------------------------


def verify(state: RunState, section: Section) -> SectionResult:
    """The verify section: every check runs; any failure takes the undo path."""
    failures = _verify_checks(state, list(state.rb.verify), section.id)
    if failures:
        return SectionResult(Next.ROLLBACK, ok=False, reason="verify failed:\n" + "\n".join(failures),
                             failures=failures, data={"failures": failures})
    return SectionResult(data={"failures": []})


def verify_within(state: RunState, *, section: str, after_rollback: bool = False) -> list[str]:
    """Verify as a part of another section (the rollback's verify-after-rollback), with section
    events of its own."""
    checks = [s for s in state.rb.verify if s.after_rollback or not after_rollback]
    if not checks:
        return []
    where = Section.parse(section).describe()
    state.steps.emit(ev.SECTION_STARTED, **where)
    failures = _verify_checks(state, checks, section, after_rollback=after_rollback)
    state.steps.emit(ev.SECTION_FINISHED, **where, ok=not failures, status=lc.FAILED if failures else lc.OK,
                     failures=failures)
    state.check_stop()
    return failures


def _verify_checks(state: RunState, checks: list[Step], section: str, *, after_rollback: bool = False) -> list[str]:
    """In order; consecutive checks that can go side by side do (engine/checkgroup.py)."""
    failures = []
    for batch in checkgroup.batches(state, checks):
        to_run = []
        for step in batch:
            unjudgeable = _needs_what_never_ran(state, step) if after_rollback else None
            if unjudgeable is not None:
                _skip(state, step, section, unjudgeable)
            else:
                to_run.append(step)
        if len(to_run) > 1:
            outcomes = checkgroup.run_group(state, to_run, section)
        else:
            outcomes = [state.run_step(step, section) for step in to_run]
        failures += [f"verify '{s.title}': {o.message}" for s, o in zip(to_run, outcomes, strict=True) if not o.ok]
    return failures


def _needs_what_never_ran(state: RunState, step: Step) -> str | None:
    """Why a check after a rollback cannot be judged: it reads the outputs of a step that never ran
    (the run failed before it) or did not finish ok. The validator has made sure every id read
    names a step of the runbook, so a missing output is the run's history, not a typo."""
    by_id = {s.id: s for s in state.doc.step_by_key().values() if s.id}
    missing = []
    for key in step_outputs_read(step):
        if key in state.steps.outputs:
            continue
        source = by_id.get(key)
        outcome = state.done.get(source.key) if source is not None else None
        if outcome is None:
            why = "which never ran"
        elif outcome.status == SKIPPED:
            why = "which was skipped"
        elif outcome.status == FAILED:
            why = "which failed"
        else:  # a secret output an earlier process held, not in the ledger
            why = "whose outputs are not available in this process"
        missing.append(f"steps.{key}, {why}")
    return f"needs {'; '.join(missing)}" if missing else None


def _skip(state: RunState, step: Step, section: str, message: str) -> None:
    """Recorded like a step whose `when` is false: the rollback judges what it can."""
    state.check_stop()
    outcome = StepOutcome(step.key, SKIPPED, message=message)
    state.steps.emit(ev.STEP_SKIPPED, step.key, name=step.title, kind=step.kind, section=section, message=message)
    state.done[step.key] = outcome


__all__ = ["gates", "gates_to_run", "manifest_problems", "phase_section", "verify", "verify_within"]
