"""Versioned payloads: every event written carries `v` (tminus.events.PAYLOAD_VERSION); the
projection reads older payloads through one upcaster per (event type, version) step.

Version 0 is what ledgers written before payloads had a version hold (no "v"): the same shapes as
version 1, which only added the version itself. A later change of a payload's shape adds a
version and an upcaster here, so the readers above the projection only ever see the newest shape.
A payload newer than this tminus knows is read as it is (best effort) and the view says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tminus.events import PAYLOAD_VERSION

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]

ANY = "*"  # an upcaster for every event type of its version

# (event type or ANY, version it reads) -> the payload at version + 1
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    (ANY, 0): lambda data: data,  # version 1 only added "v"
}


def upcast(type_: str, data: Any) -> tuple[Payload, int, str | None]:
    """The payload in the newest shape, the version it was written with, and a warning (or None).

    The caller's dict is not changed; "v" is taken out (it is about the payload, not in it)."""
    payload: Payload = dict(data) if isinstance(data, dict) else {}
    raw = payload.pop("v", 0)
    valid = isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0
    version = raw if valid else 0
    if version > PAYLOAD_VERSION:
        return payload, version, (f"payload version {version} is newer than this tminus reads "
                                  f"({PAYLOAD_VERSION}): read as far as it is understood")
    for step in range(version, PAYLOAD_VERSION):
        fn = UPCASTERS.get((type_, step)) or UPCASTERS.get((ANY, step))
        if fn is not None:
            payload = fn(payload)
    warning = None if valid else f"payload version {raw!r} is not a version: read as version 0"
    return payload, version, warning


__all__ = ["ANY", "UPCASTERS", "Upcaster", "upcast"]
