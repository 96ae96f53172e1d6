"""`requires:`: runs of other runbooks (or of this one elsewhere) that must be in the ledger before this
runbook may change anything: "the rollback was rehearsed in staging within the last week".

The model only; the check (reading the ledger) is engine/prerequisites.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tminus.runbook.types import Duration, Spec

# How a run ended, as the ledger records it; only ended runs can satisfy a requirement.
Outcome = Literal["completed", "rolled_back", "rollback_failed", "blocked", "aborted"]


class Requirement(Spec):
    """Another run that must have ended a certain way, in an environment, recently enough."""

    runbook: str = Field(min_length=1, description="The required run's runbook, by its `name:`.")
    environment: str = Field(min_length=1, description="Its environment; may be a template ({{ vars.env }}).")
    outcome: Outcome = Field("completed", description="How it ended: completed (default), rolled_back, ...")
    within: Duration | None = Field(None, description="It ended at most this long before this run starts.")
    same_hash: bool = Field(False, description=(
        "It ran this very runbook text (same content hash): a rehearsal of this file, not of an older copy."))


class RehearsalRequirement(Spec):
    """`decision.require_rehearsal`: a passing `tminus rehearse` of this runbook's content must be in the
    ledger before a run elsewhere (production) may change anything."""

    environment: str = Field(min_length=1, description="Where rehearsals run, e.g. staging.")
    within: Duration | None = Field(None, description="The rehearsal finished at most this long ago, e.g. 7d.")
    max_rto: Duration | None = Field(None, description=(
        "Every cycle's recovery time (injected failure to rollback finished) at most this, e.g. 10m."))
    all_phases: bool = Field(True, description=(
        "Every phase was rehearsed (a phase after the point of no return: by the roll-forward cycle)."))
    enforced_in: list[str] = Field(default_factory=list, description=(
        "The environments that require it; empty (default): every environment but `environment`."))

    def applies_to(self, environment: str) -> bool:
        if environment == self.environment:
            return False
        return not self.enforced_in or environment in self.enforced_in


__all__ = ["Outcome", "RehearsalRequirement", "Requirement"]
