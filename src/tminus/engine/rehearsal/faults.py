"""The faults a rehearsal injects, without touching the runbook: the engine itself stops the run.

- `FailAfter`: right after a phase ends, the run takes the rollback path exactly as when a step fails
  (a `rollback` stop by `policy:rehearsal`, recorded as policy.applied and run.stop).
- `kill` (SIGKILL of tminus right after the phase; the rehearsal then rolls the crashed run back) and
  `monitor` (a monitor rule forced to fire once the window begins) live beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tminus.engine.policy import CONTINUE, Decision, Policy, stop
from tminus.engine.stop import ROLLBACK

if TYPE_CHECKING:
    from tminus.engine.lifecycle import Section, SectionResult

POLICY = "rehearsal"  # the policy's name: the stop is `by: policy:rehearsal`


def fault_reason(phase: str) -> str:
    return f"rehearsal: failure injected after phase '{phase}'"


class FailAfter(Policy):
    """Roll back right after the phase at `index` (of `phases:`) has passed."""

    name = POLICY

    def __init__(self, index: int, phase: str) -> None:
        self.index, self.phase = index, phase

    def after_section(self, section: Section, result: SectionResult) -> Decision:
        if section.kind == "phase" and section.index == self.index:
            return stop(ROLLBACK, fault_reason(self.phase))
        return CONTINUE


__all__ = ["POLICY", "FailAfter", "fault_reason"]
