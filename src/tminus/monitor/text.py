"""How numbers, clocks and durations read in transition reasons."""

from __future__ import annotations

import math
from datetime import UTC, datetime


def clock(at: float) -> str:
    """A sample time as a UTC wall clock, 10:02:00 (UTC keeps ledgers comparable across hosts)."""
    return datetime.fromtimestamp(at, tz=UTC).strftime("%H:%M:%S")


def short_duration(seconds: float) -> str:
    """A rule's duration as an author writes it: 5m, 1m30s, 1h, 2.5s."""
    if seconds < 60 and not float(seconds).is_integer():
        return f"{seconds:g}s"
    whole = round(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((h, "h"), (m, "m"), (s, "s")) if n]
    return "".join(parts) or "0s"


def count(value: float) -> str:
    """Counter increases read as whole numbers when they are: 3 restarts, not 3.0."""
    if math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


def decimal(value: float) -> str:
    """Gauges and ratios with one decimal (42.0), small values with three significant digits."""
    if not math.isfinite(value) or value == 0 or abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.3g}"
