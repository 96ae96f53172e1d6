"""Checks of the phases after the go decision (`after_go:`, `finalize:`) and of a step's declared
`effect:`: names unique across every kind of phase (a rollback's undo section is `undo:NAME`),
no step of `finalize` asking to roll back a live cutover, no `guard:` there (the monitor watches a
live cutover), and no `effect: reversible` that nothing
reverses.
"""

from __future__ import annotations

from collections.abc import Callable

from tminus.runbook.models import Phase, Runbook, Step

Add = Callable[..., None]  # _Validator.add(message, path, hint)
Where = Callable[..., str]  # _Validator.where(path)


def phase_problems(runbook: Runbook, add: Add, where: Where) -> None:
    _unique_phase_names(runbook, add, where)
    for pi, phase in enumerate(runbook.finalize):
        for step in phase.steps:
            if step.on_failure == "rollback":
                add("a finalize step cannot roll back: finalize runs once the cutover is live and watched",
                    (*step.path, "on_failure"),
                    "remove 'on_failure: rollback' (a failure stops the run, not finalized, and `tminus resume` "
                    "finishes it), or move the step into after_go: with on_failure: rollback on its phase")
        del pi
    for field in ("after_go", "finalize"):
        for i, phase in enumerate(getattr(runbook, field)):
            if phase.guard is not None:
                add(f"a guard watches a phase of phases: only; '{phase.name}' is in {field}:",
                    (field, i, "guard"),
                    "once the cutover is live, watch it with the monitor: window (its rules can roll back), "
                    "or move the guarded steps into phases:")
    for owner, phase_undo in _owners(runbook):
        for step in owner:
            _reversible(step, phase_undo, add)


def _unique_phase_names(runbook: Runbook, add: Add, where: Where) -> None:
    seen: dict[str, tuple[str, int]] = {}
    for field in ("phases", "after_go", "finalize"):
        phases: list[Phase] = getattr(runbook, field)
        for i, phase in enumerate(phases):
            first = seen.get(phase.name)
            if first is None:
                seen[phase.name] = (field, i)
                continue
            if first[0] == field == "phases":
                continue  # reported by the validator's own check of phase names
            add(f"duplicate phase name '{phase.name}' (first used in {first[0]} at {where((*first, 'name'))})",
                (field, i, "name"),
                "give each phase of phases:, after_go: and finalize: its own name; the ledger, reports and "
                "the rollback's undo sections refer to phases by name")


def _owners(runbook: Runbook) -> list[tuple[list[Step], bool]]:
    """Every list of steps that may declare an effect, and whether a phase's `undo` covers them."""
    out: list[tuple[list[Step], bool]] = [(g.checks, False) for g in runbook.gates]
    out += [(p.steps, bool(p.undo)) for p in (*runbook.phases, *runbook.live_phases)]
    out.append((runbook.verify, False))
    return out


def _reversible(step: Step, phase_undo: bool, add: Add) -> None:
    """`effect: reversible` promises an undo: the step's own, its phase's, or one its kind derives."""
    if step.declared_effect != "reversible" or step.undo or phase_undo:
        return
    from tminus.kinds.registry import get  # what a kind derives, asked of the registry

    if get(step.kind).derive_undo is not None:
        return
    add(f"'{step.title}' declares effect: reversible, but nothing reverses it: it has no undo, its phase has "
        f"none, and a '{step.kind}' step derives none",
        (*step.path, "effect"),
        "add 'undo:' steps that reverse it, or say what it is: effect: irreversible (a point of no return), "
        "additive (adds, nothing to undo) or none (read-only)")


__all__ = ["phase_problems"]
