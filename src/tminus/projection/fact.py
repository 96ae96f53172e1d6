"""One event as the fold reads it (`Fact`), whatever it came as: a ledger EventRecord, an engine
Event or a mapping with the same fields. The folds read payload values through `number`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tminus.projection.times import epoch


@dataclass(frozen=True)
class Fact:
    """One event as the fold reads it: its payload upcast to the newest version."""

    seq: int
    type: str
    step_key: str | None
    at: float | None
    data: dict[str, Any]
    version: int


def read_fact(event: Any, next_seq: int) -> Fact:
    """The event's fields, by name; an event without a seq (an engine Event) gets `next_seq`."""
    get: Callable[[str], Any]
    if isinstance(event, Mapping):
        get = event.get
    else:
        def get(name: str) -> Any:
            return getattr(event, name, None)
    seq = get("seq")
    return Fact(seq if isinstance(seq, int) else next_seq, str(get("type")), get("step_key"), epoch(get("at")),
                get("data") or {}, 0)


def number(value: Any, default: float | None = None) -> float | None:
    """A payload's number as a float; anything else (a bool included) is `default`."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


__all__ = ["Fact", "number", "read_fact"]
