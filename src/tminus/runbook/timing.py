"""Time on the runbook's own axis: the cutover time (`at:`) and the stages before it (`stage: T-48h`).

The cutover is an ISO 8601 time with its zone (`2026-12-05T22:00Z`, `2026-12-05T23:00+01:00`); a
time without a zone is refused, since "22:00" means another moment on every operator's laptop. A
stage is `T-` and a duration (`T-48h`, `T-2h30m`, `T-2d`): how long before the cutover its gates run.
Both are parsed here, once, for the model's validators, the engine and the CLI's `--at`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from tminus.durations import parse_duration
from tminus.runbook.types import MAX_DURATION, HintedValueError

AT_HINT = "write the cutover time in ISO 8601 with its zone, e.g. 2026-12-05T22:00Z or 2026-12-05T23:00+01:00"
STAGE_HINT = "a stage is T- and a duration before the cutover, e.g. T-48h, T-2h30m or T-2d"
_STAGE = re.compile(r"^T-(.+)$")


def parse_at(text: object) -> datetime:
    """An aware datetime; ValueError (with AT_HINT as its hint) for junk or a time without a zone."""
    if isinstance(text, datetime):  # YAML reads an unquoted timestamp as a datetime
        value = text
    elif isinstance(text, str):
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            raise HintedValueError(f"'{text}' is not an ISO 8601 time", AT_HINT) from None
    else:
        raise HintedValueError(f"expected a cutover time, got {type(text).__name__}", AT_HINT)
    if value.tzinfo is None or value.utcoffset() is None:
        raise HintedValueError(f"'{text}' has no zone: it would mean another moment on each machine", AT_HINT)
    try:
        year = value.astimezone(UTC).year
    except (OverflowError, ValueError):  # 0001-01-01T00:00+14:00 is before year 1 in UTC
        year = 0
    if not 1971 <= year <= 9998:  # room for a stage's window (up to 366 days) on either side
        raise HintedValueError(f"'{text}' is out of range (years 1971 to 9998)", AT_HINT)
    return value


def format_at(epoch: float) -> str:
    """A cutover or a record's time as tminus prints it: 2026-12-05T22:00:00Z (UTC, to the second)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stage_offset(text: object) -> float:
    """`T-48h` -> 172800.0 seconds before the cutover; HintedValueError for anything else."""
    if not isinstance(text, str):
        raise HintedValueError(f"expected a stage such as T-48h, got {type(text).__name__}", STAGE_HINT)
    match = _STAGE.match(text.strip())
    if match is None:
        raise HintedValueError(f"'{text}' is not a stage", STAGE_HINT)
    try:
        seconds = parse_duration(match.group(1))
    except ValueError:
        raise HintedValueError(f"'{text}': '{match.group(1)}' is not a duration", STAGE_HINT) from None
    if seconds <= 0:
        raise HintedValueError(f"'{text}' is the cutover itself, not a stage before it", STAGE_HINT)
    if seconds > MAX_DURATION:
        raise HintedValueError(f"'{text}' is more than 366 days before the cutover", STAGE_HINT)
    return seconds


def format_offset(seconds: float, sign: str = "-") -> str:
    """172800 -> T-48h, 9000 -> T-2h30m, 90 -> T-1m30s: the shortest exact form in h, m, s."""
    whole = round(abs(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return f"T{sign}{''.join(parts) or '0s'}"


def _at_text(value: object) -> str:
    if isinstance(value, str) and "{{" in value:
        return value
    parsed = parse_at(value)
    return value if isinstance(value, str) else parsed.isoformat()


def _stage_text(value: object) -> str:
    stage_offset(value)
    assert isinstance(value, str)
    return value.strip()


CutoverTime = Annotated[
    str,
    BeforeValidator(_at_text),
    WithJsonSchema({"type": "string", "description": (
        "The cutover time (T+0): ISO 8601 with its zone, e.g. 2026-12-05T22:00Z, or a template.")}),
]

Stage = Annotated[
    str,
    AfterValidator(_stage_text),
    WithJsonSchema({"type": "string", "pattern": r"^T-(\d+(\.\d+)?(ms|s|m|h|d))+$",
                    "description": "How long before the cutover this gate runs: T-48h, T-2h."}),
]

__all__ = ["AT_HINT", "STAGE_HINT", "CutoverTime", "Stage", "format_at", "format_offset", "parse_at", "stage_offset"]
