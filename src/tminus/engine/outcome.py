"""How one step ended: the record a run keeps of each step, and what resume rebuilds from the ledger.

Apart from `steps.py` (which produces it) so that what reads outcomes, the prior record and the
sections, need not import the step executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OK = "ok"
FAILED = "failed"
SKIPPED = "skipped"
INTERRUPTED = "interrupted"  # cut short by an interrupt: no `step.finished`, resume decides


@dataclass
class StepOutcome:
    """How one step ended. `outputs` feed later templates; the rest is evidence."""

    key: str
    status: str  # ok | failed | skipped
    attempts: int = 0
    duration: float = 0.0  # seconds, all attempts
    message: str = ""  # why it failed (or was skipped), in one or a few lines
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    # skipped, yet it acted: the operator took an interrupted step as done (`resume --skip`), so
    # a rollback runs its undo
    touched: bool = False

    @property
    def ok(self) -> bool:
        return self.status in (OK, SKIPPED)

    def to_event_data(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "attempts": self.attempts,
            "duration_ms": round(self.duration * 1000, 3),
            "message": self.message,
            "verdicts": self.verdicts,
            "outputs": self.outputs,
            "evidence": self.evidence,
        }


__all__ = ["FAILED", "INTERRUPTED", "OK", "SKIPPED", "StepOutcome"]
