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


__all__ = ["Outcome", "Requirement"]
