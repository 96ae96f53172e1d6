"""Base types shared by every spec model: the strict base class, durations, identifiers, retry."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)

from tminus.durations import parse_duration
from tminus.templating.templater import has_template

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


class DurationTemplate(str):
    """A duration written as a template (`"{{ vars.window }}"`): it stands where a float will, until
    the run renders it with its variables (runbook/templated.py) and validates what it became."""


def is_template(value: object) -> bool:
    return isinstance(value, DurationTemplate)


def duration_value(value: object) -> float:
    """Seconds from what a runbook says (or a template rendered): the checks every Duration gets."""
    return _bounded(parse_duration(value))


def _duration(value: object) -> float:
    # A plain duration is a float from here on (the static path stays as fast as it was); only a
    # template waits, typed as a float for the code that reads the model after it was rendered.
    if isinstance(value, str) and has_template(value):
        return DurationTemplate(value)  # type: ignore[return-value]
    return duration_value(value)


Duration = Annotated[
    float,
    PlainValidator(_duration),
    PlainSerializer(lambda v: str(v) if is_template(v) else v, return_type=float | str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"},
                {"type": "number", "minimum": 0, "maximum": MAX_DURATION},
                {"type": "string", "pattern": r"\{\{",
                 "description": "A template rendered with the run's variables when it starts."},
            ],
            "description": "A duration: 500ms, 30s, 5m, 1h30m, a number of seconds, or a template such as "
                           "'{{ vars.window }}'.",
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
