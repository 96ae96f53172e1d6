"""Durations as users write them: `500ms`, `30s`, `5m`, `1h30m`, or a number of seconds."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$")


def parse_duration(value: object) -> float:
    """Return seconds. Raises ValueError with the accepted forms on bad input."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 30s, 5m or 1h30m, got a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 500ms, 30s, 5m or 1h30m, got {type(value).__name__}")
    text = value.strip().replace(" ", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if not _WHOLE.match(text):
        raise ValueError(f"'{value}' is not a duration; write it as 500ms, 30s, 5m, 2h or 1h30m")
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """Short human form: 850ms, 12.3s, 4m05s, 1h02m."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        m, s = divmod(round(seconds), 60)
        return f"{m}m{s:02d}s"
    h, rest = divmod(round(seconds), 3600)
    return f"{h}h{rest // 60:02d}m"


def format_tplus(seconds: float) -> str:
    """A T+ clock: T+0:05 for five minutes, T+1:30 for ninety."""
    minutes = int(seconds // 60)
    return f"T+{minutes // 60}:{minutes % 60:02d}"


def format_clock(seconds: float) -> str:
    """A running T+ clock with seconds: T+0:03:07."""
    whole = int(seconds)
    return f"T+{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
