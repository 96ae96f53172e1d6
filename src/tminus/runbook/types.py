"""Base types shared by every spec model: the strict base class, durations, identifiers, retry."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

from tminus.durations import parse_duration

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda v: v, return_type=float),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"},
                {"type": "number", "minimum": 0},
            ],
            "description": "A duration: 500ms, 30s, 5m, 1h30m, or a number of seconds.",
        }
    ),
]

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]

OnFailure = Literal["rollback", "abort", "continue"]


class Spec(BaseModel):
    """Base of every spec model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Retry(Spec):
    """Retry a failing step. Every attempt is recorded in the ledger."""

    attempts: int = Field(3, ge=1, description="Total attempts, the first included.")
    interval: Duration = Field(1.0, description="Wait before the second attempt.")
    backoff: float = Field(1.0, ge=1.0, description="Multiply the interval by this after each attempt.")
    max_interval: Duration | None = Field(None, description="Upper bound of the interval.")
    timeout: Duration | None = Field(None, description="Give up when all attempts together exceed this.")
