"""Time words every view of a run shares: epoch seconds from an event's time, the UTC clock and T+
offsets from the start of the run. Below the projection's readers (reports, replay, the CLI)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def epoch(at: str | float | None) -> float | None:
    """An event's ISO time (or epoch seconds) as epoch seconds; naive ISO times are UTC."""
    if at is None:
        return None
    if isinstance(at, int | float):
        return float(at)
    try:
        parsed = datetime.fromisoformat(at)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def clock(at: float) -> str:
    """UTC wall clock, 12:03:15: ledgers written on hosts in different zones stay comparable."""
    return datetime.fromtimestamp(at, tz=UTC).strftime("%H:%M:%S")


def tplus(seconds: float) -> str:
    """An offset from the start of the run: T+45s, T+4m05s, T+1h02m03s."""
    sign = "-" if seconds < 0 else "+"
    whole = round(abs(seconds))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"T{sign}{h}h{m:02d}m{s:02d}s"
    if m:
        return f"T{sign}{m}m{s:02d}s"
    return f"T{sign}{s}s"


def when(at: float | None, t0: float | None) -> str:
    """`12:03:15 (T+4m05s)`; just the clock when the run's start is unknown."""
    if at is None:
        return "an unknown time"
    if t0 is None:
        return clock(at)
    return f"{clock(at)} ({tplus(at - t0)})"


def stamp(at: float | None, t0: float | None) -> dict[str, Any]:
    """The same time for --json: epoch seconds, UTC clock and T+ offset."""
    if at is None:
        return {"at": None, "clock": None, "tplus": None}
    return {"at": at, "clock": clock(at), "tplus": None if t0 is None else tplus(at - t0)}


__all__ = ["clock", "epoch", "stamp", "tplus", "when"]
