"""The phases after the go decision: `after_go` (right after it, before the monitor window) and
`finalize` (once the window has passed; without a monitor, right after after_go).

The cutover is live when they run, so a failed step does not roll it back: the run ends *not
finalized* (exit 16), naming every step not done, and `tminus resume` finishes them (steps done
are not run again). An after_go phase with `on_failure: rollback` (or a step of it saying so)
takes the undo path instead; the undo of its touched steps is part of it (rollback.py derives the
plan from what was touched, after-go and finalize phases included).
"""

from __future__ import annotations

from typing import Any

from tminus.engine import lifecycle as lc
from tminus.engine.lifecycle import Lifecycle, Next, Section, SectionResult
from tminus.engine.run_state import RunState
from tminus.runbook.models import AfterGoPhase, Phase

_WORDS = {lc.AFTER_GO: "after_go phase", lc.FINALIZE: "finalize phase"}


def plug(life: Lifecycle, state: RunState) -> None:
    """after_go phases right after the decision; finalize phases after the monitor window, or
    after the last after_go phase (the decision) when the run does not watch."""
    anchor = lc.DECISION
    for index, after in enumerate(state.rb.after_go):
        anchor = life.plug(_section(state, lc.AFTER_GO, index, after), after=anchor).id
    if any(s.kind == lc.MONITOR for s in life):
        anchor = lc.MONITOR
    for index, phase in enumerate(state.rb.finalize):
        anchor = life.plug(_section(state, lc.FINALIZE, index, phase), after=anchor).id


def _section(state: RunState, kind: str, index: int, phase: Phase) -> Section:
    """Done when every step finished ok, as a phase is: a resume runs what is not."""
    return Section(kind, phase.name, run=lambda section: _run(state, section, phase), index=index,
                   done=lambda: all(state.finished_ok(s) for s in phase.steps),
                   starting=lambda: {"phase": phase.name, "index": index, "budget": phase.budget})


def _run(state: RunState, section: Section, phase: Phase) -> SectionResult:
    continued: list[str] = []
    for step in phase.steps:
        if state.finished_ok(step):
            continue
        outcome = state.run_step(step, section.id)
        if outcome.ok:
            continue
        if step.failure_policy == "continue":
            continued.append(step.key)
            continue
        reason = f"step '{step.title}' in {_WORDS[section.kind]} '{phase.name}' failed:\n{outcome.message}"
        data: dict[str, Any] = {"failed_step": step.key}
        if step.on_failure == "abort":
            return SectionResult(Next.ABORT, ok=False, data=data,
                                 reason=reason + "\n(on_failure: abort: nothing undone)")
        rolls_back = isinstance(phase, AfterGoPhase) and phase.on_failure == "rollback"
        if rolls_back or step.on_failure == "rollback":
            return SectionResult(Next.ROLLBACK, ok=False, reason=reason, data=data)
        not_done = not_finalized(state)
        watching = section.kind == lc.AFTER_GO and state.rb.monitor is not None
        data["not_done"] = not_done
        return SectionResult(Next.NOT_FINALIZED, ok=False, data=data,
                             reason=f"{reason}\n{_summary(state, not_done, watching)}")
    return SectionResult(data={"continued": continued} if continued else {})


def not_finalized(state: RunState) -> list[dict[str, Any]]:
    """Every step of the after_go and finalize phases not done yet, in the order they run."""
    out: list[dict[str, Any]] = []
    phases = [(lc.AFTER_GO, p) for p in state.rb.after_go] + [(lc.FINALIZE, p) for p in state.rb.finalize]
    for kind, phase in phases:
        for step in phase.steps:
            if state.finished_ok(step):
                continue
            outcome = state.done.get(step.key)
            out.append({"key": step.key, "name": step.title, "section": lc.section_id(kind, phase.name),
                        "status": "not run" if outcome is None else outcome.status})
    return out


def _summary(state: RunState, not_done: list[dict[str, Any]], watching: bool) -> str:
    lines = ["the cutover is live and stays: nothing is rolled back.", "not finalized:"]
    for entry in not_done:
        kind, name = lc.parse_section(entry["section"])
        lines.append(f"  {_WORDS[kind]} '{name}': '{entry['name']}' ({entry['key']}) {entry['status']}")
    if watching:
        lines.append("  the monitor window has not run: it runs once the after_go phases are done")
    run_id = state.steps.run_id
    lines.append(f"`tminus resume {run_id}` finishes what is not done (steps done are not run again); "
                 f"`tminus rollback {run_id}` undoes the whole run instead")
    return "\n".join(lines)


__all__ = ["not_finalized", "plug"]
