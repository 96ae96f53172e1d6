"""The one callback interface through which the engine reports what happens.

The ledger and the display both subscribe; neither is known to the engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Event types, in the order a run emits them.
RUN_STARTED = "run.started"
RUN_RESUMED = "run.resumed"
SECTION_STARTED = "section.started"  # gates, phase:<name>, verify, decision, rollback
SECTION_FINISHED = "section.finished"
STEP_STARTED = "step.started"  # written before the step acts: the intent
STEP_ATTEMPT = "step.attempt"  # one failed attempt of a retried step
STEP_FINISHED = "step.finished"
STEP_SKIPPED = "step.skipped"
APPROVAL_REQUESTED = "approval.requested"
APPROVAL_GIVEN = "approval.given"
DECISION = "decision"
ROLLBACK_STARTED = "rollback.started"
ROLLBACK_FINISHED = "rollback.finished"
MONITOR_STARTED = "monitor.started"  # the baseline or the watch window begins
MONITOR_SAMPLE = "monitor.sample"  # one probe's raw values (or its error): replay reads these
MONITOR_TRANSITION = "monitor.transition"  # a rule changed state (pending, firing, resolved, ...)
MONITOR_ACTION = "monitor.action"  # what a firing rule did: rollback, abort, pause, notify
MONITOR_FINISHED = "monitor.finished"
NOTIFY_SENT = "notify.sent"  # a notification delivered (attempts, status)
NOTIFY_FAILED = "notify.failed"  # every attempt failed
RUN_FINISHED = "run.finished"
NOTE = "note"  # operator notes, unlock reasons, resume choices


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Event:
    type: str
    run_id: str
    data: dict[str, Any] = field(default_factory=dict)
    step_key: str | None = None
    at: str = field(default_factory=utcnow)
    monotonic: float = field(default_factory=time.monotonic)


Subscriber = Callable[[Event], None]


class EventBus:
    """Delivers each event to every subscriber, in order, one event at a time.

    Gate checks run concurrently; the lock keeps ledger hash chains and display lines ordered.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> None:
        self._subscribers.append(fn)

    def emit(self, event: Event) -> None:
        with self._lock:
            for fn in self._subscribers:
                fn(event)
