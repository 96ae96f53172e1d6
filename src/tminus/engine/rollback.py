"""The undo plan: derived from what a run executed, recorded whole in `rollback.started`, executed
from that record (a resumed rollback reads it back from the ledger rather than re-deriving it).

Order: the phases that were started (finalize, after_go, then the phases), newest first; inside a
phase, the undo of each touched step
newest first (the runbook's `undo`, or the undo its kind derives from what the execution recorded:
a `migrate` step's revert), then the phase's own `undo`; then the rollback section.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tminus import events as ev
from tminus.engine import lifecycle as lc
from tminus.engine.changes import verify_within
from tminus.engine.run_state import RunState
from tminus.kinds import registry
from tminus.kinds.base import Execution
from tminus.runbook.document import PathKey, path_to_str
from tminus.runbook.models import Step


@dataclass
class PlannedUndo:
    step: Step
    section: str  # "undo:<phase name>" or "rollback"
    derived: bool = False  # returned by the step's kind (key ends in `.undo[auto]`), not written in the runbook
    undoes: str = ""  # what it undoes, in words: "step 'NAME'" or "phase 'NAME'" ("" for a rollback step)

    def to_record(self) -> dict[str, Any]:
        """The entry as `rollback.started` records it: enough to rebuild the step without the runbook."""
        return {
            "key": self.step.key,
            "name": self.step.title,
            "section": self.section,
            "derived": self.derived,
            "undoes": self.undoes,
            "path": list(self.step.path),
            "step": self.step.model_dump(mode="json", by_alias=True, exclude_none=True),
        }

    @classmethod
    def from_record(cls, entry: dict[str, Any]) -> PlannedUndo:
        return cls(step_from_record(entry), str(entry["section"]), bool(entry.get("derived")),
                   str(entry.get("undoes") or ""))


def step_from_record(entry: dict[str, Any]) -> Step:
    step = Step.model_validate(entry["step"])
    path = tuple(entry.get("path") or ())
    _place(step, path)
    step._key = str(entry["key"])  # a derived step's key is its origin's plus `.undo[auto]`
    return step


def _place(step: Step, path: PathKey) -> None:
    """Keys and places of a rebuilt step and of the steps inside it (a wait's check, undo steps)."""
    step._path = path
    step._key = path_to_str(path)
    if step.wait is not None:
        _place(step.wait.check, (*path, "wait", "check"))
    if step.watch is not None:
        for index, probe in enumerate(step.watch.probes):
            _place(probe, (*path, "watch", "probes", index))
    for index, undo in enumerate(step.undo or []):
        _place(undo, (*path, "undo", index))


def is_recorded_plan(entries: Any) -> bool:
    """Whether a `rollback.started` carries a plan to execute (older ledgers list only keys and names)."""
    return isinstance(entries, list) and all(isinstance(e, dict) and "step" in e for e in entries)


@dataclass
class RollbackEnd:
    ok: bool
    state: str = ""
    failures: list[str] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)  # what the rollback undid, in words, in order
    needs_operator: bool = False  # stopped at a decision nobody could make (--no-input)


def execution_of(state: RunState, step: Step) -> Execution:
    """What the run knows of a step's executions: effects recorded before acting, how it ended."""
    outcome = state.done.get(step.key)
    steps = state.steps
    return Execution(
        key=step.key,
        target=steps.transport.target,
        effects=list(steps.effects.get(step.key, [])),
        status=None if outcome is None else outcome.status,
        outputs=dict(outcome.outputs) if outcome is not None else {},
        evidence=dict(outcome.evidence) if outcome is not None else {},
    )


def derive(state: RunState) -> Iterator[PlannedUndo]:
    """The plan from what was executed (see the module's docstring): the finalize and after_go
    phases first (they ran last), then the phases. A phase none of whose steps was touched (each
    skipped by `when`, or the run stopped before its first) did nothing: neither it nor its own
    `undo` is part of the plan."""
    rb = state.rb
    started = [p for p in reversed(rb.live_phases) if any(state.touched(s) for s in p.steps)]
    started += [rb.phases[i] for i in sorted(set(state.started_phases), reverse=True)
                if any(state.touched(s) for s in rb.phases[i].steps)]
    for phase in started:
        section = lc.section_id(lc.UNDO, phase.name)
        for step in reversed(phase.steps):
            if not state.touched(step):
                continue
            what = f"step '{step.title}'"
            if step.undo:
                for undo in step.undo:
                    yield PlannedUndo(undo, section, undoes=what)
                continue
            derive_undo = registry.get(step.kind).derive_undo
            if derive_undo is not None:
                for undo in derive_undo(step, execution_of(state, step)) or []:
                    yield PlannedUndo(undo, section, derived=True, undoes=what)
        for undo in phase.undo:
            yield PlannedUndo(undo, section, undoes=f"phase '{phase.name}'")
    for step in rb.rollback.steps:
        yield PlannedUndo(step, lc.ROLLBACK)


def plan_for(state: RunState) -> tuple[list[PlannedUndo], bool]:
    """The plan a rollback executes, and whether it is the one recorded by an earlier process of
    this run (a rollback interrupted, or stopped by a failed undo step, continues with its plan
    even if the runbook's undo steps were edited since)."""
    prior = state.prior
    recorded = prior.rollback_plan
    if prior.in_rollback and recorded:
        return [PlannedUndo.from_record(e) for e in recorded], True
    return list(derive(state)), False


def execute(state: RunState, reason: str) -> RollbackEnd:
    """Undo what was done, then the rollback steps, then verify again."""
    plan, recorded = plan_for(state)
    steps = state.steps
    steps.emit(ev.ROLLBACK_STARTED, section=lc.ROLLBACK, reason=reason, recorded=recorded,
               steps=[p.to_record() for p in plan])
    completed: list[str] = []
    for index, planned in enumerate(plan):
        step = planned.step
        if state.finished_ok(step):
            completed.append(step.key)
            continue  # resumed rollback: this undo step already ran
        outcome = state.run_step(step, planned.section)
        if outcome.ok or step.failure_policy == "continue":
            completed.append(step.key)
            continue
        remaining = [p.step.title for p in plan[index + 1:]]
        # A step that needs an operator's decision nobody could give (a restore that would discard
        # writes, under --no-input) stops the rollback as needing an operator, not as failed.
        asks = bool(outcome.evidence.get("needs_operator"))
        summary = (
            f"rollback stopped at '{step.title}' ({step.key}): {outcome.message}\n"
            f"undone so far: {', '.join(completed) or 'nothing'}\n"
            f"not yet undone: {', '.join(remaining) or 'nothing'}\n"
            + (f"an operator decides: `tminus resume {steps.run_id}` asks again; answer there, or from "
               f"another terminal with `tminus approve {steps.run_id} --step {step.key}`" if asks else
               f"fix the cause, then `tminus resume {steps.run_id}` continues the rollback")
        )
        steps.emit(ev.ROLLBACK_FINISHED, section=lc.ROLLBACK, ok=False, state=summary)
        return RollbackEnd(False, summary, needs_operator=asks)
    failures = verify_within(state, section=lc.VERIFY_AFTER_ROLLBACK, after_rollback=True)
    if failures:
        summary = "the rollback ran, but verify does not confirm the service is back:\n" + "\n".join(failures)
        steps.emit(ev.ROLLBACK_FINISHED, section=lc.ROLLBACK, ok=False, state=summary)
        return RollbackEnd(False, summary, failures)
    steps.emit(ev.ROLLBACK_FINISHED, section=lc.ROLLBACK, ok=True, undone=completed)
    return RollbackEnd(True, undone=list(dict.fromkeys(p.undoes for p in plan if p.undoes)))


def recorded_steps(entries: Any) -> dict[str, Step]:
    """The steps of a recorded plan by key, derived undo steps included: on resume an interrupted
    `...undo[auto]` step is known like any step of the runbook (and gets the operator's choice)."""
    if not is_recorded_plan(entries):
        return {}
    return {str(e["key"]): step_from_record(e) for e in entries}
