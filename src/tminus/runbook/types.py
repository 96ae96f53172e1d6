"""Base types shared by every spec model: the strict base class, durations, identifiers, retry."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from tminus.durations import parse_duration

MAX_DURATION = 366 * 86400.0  # beyond a year a timer is a typo, and sleep() refuses inf


class HintedValueError(ValueError):
    """A validator's refusal with a hint, which the loader shows under the message."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


def _bounded(seconds: float) -> float:
    """A finite duration of at most a year: `.inf`, `.nan` and `1e308` are typos, not timeouts."""
    if not math.isfinite(seconds):
        raise HintedValueError(f"a duration must be finite, got {seconds}", "write it as 30s, 5m or 2h")
    if seconds > MAX_DURATION:
        raise HintedValueError(f"a duration is at most 366 days, got {seconds / 86400:.3g} days",
                               "write it as 30s, 5m or 2h; a step that may run for ever has no timeout")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    AfterValidator(_bounded),
    PlainSerializer(lambda v: v, return_type=float),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"},
                {"type": "number", "minimum": 0, "maximum": MAX_DURATION},
            ],
            "description": "A duration: 500ms, 30s, 5m, 1h30m, or a number of seconds.",
        }
    ),
]

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]

OnFailure = Literal["rollback", "abort", "continue"]
EffectClass = Literal["none", "additive", "reversible", "irreversible"]  # kinds/base.py Effect, as written


class Spec(BaseModel):
    """Base of every spec model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Retry(Spec):
    """Retry a failing step. Every attempt is recorded in the ledger."""

    attempts: int = Field(3, ge=1, description="Total attempts, the first included.")
    interval: Duration = Field(1.0, description="Wait before the second attempt.")
    backoff: float = Field(1.0, ge=1.0, le=100.0, allow_inf_nan=False,
                           description="Multiply the interval by this after each attempt.")
    max_interval: Duration | None = Field(None, description="Upper bound of the interval.")
    timeout: Duration | None = Field(None, description="Give up when all attempts together exceed this.")
