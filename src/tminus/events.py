"""What a run records: the event types, the event itself, and the bus that delivers it.

Defined below the ledger and the engine: the engine emits, the ledger stores, the projection folds,
the display prints; none of them knows the others. Every event type is a constant here: nothing
else spells an event's name.
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
STEP_EFFECT = "step.effect"  # what a kind found or started, recorded *before* it acts on it
STOP_REQUESTED = "run.stop"  # the stop channel was used: interrupt, rollback, abort or kill switch
POLICY_APPLIED = "policy.applied"  # a policy hook (before a step, after a section) acted
GUARD_STARTED = "guard.started"  # a phase's guard begins probing (before the phase's first step)
GUARD_SAMPLE = "guard.sample"  # one guard probe's values (or its error), tagged with the phase
GUARD_TRANSITION = "guard.transition"  # a guard rule changed state; a firing one says what it did
GUARD_FINISHED = "guard.finished"  # the guard stopped probing: after the last step (and settle), or a stop
WATCH_SAMPLE = "watch.sample"  # one probe of a `watch` step: its values (or its error), under the step's key
WATCH_TRANSITION = "watch.transition"  # a `watch` step's rule changed state; a firing one fails the step
DEADLINE_EXCEEDED = "deadline.exceeded"  # a phase, the rollback or the downtime took longer than its deadline
DEADLINE_ANSWERED = "deadline.answered"  # what came of it: the operator's answer to a pause, or none
# A rehearsal's own record (a run of kind `rehearsal`): its plan, then one event per cycle it measured.
REHEARSAL_STARTED = "rehearsal.started"
REHEARSAL_CYCLE = "rehearsal.cycle"

# The version of event payloads this tminus writes; readers upcast older payloads (see projection).
PAYLOAD_VERSION = 1

TYPES = frozenset({
    RUN_STARTED, RUN_RESUMED, SECTION_STARTED, SECTION_FINISHED, STEP_STARTED, STEP_ATTEMPT, STEP_FINISHED,
    STEP_SKIPPED, STEP_EFFECT, APPROVAL_REQUESTED, APPROVAL_GIVEN, DECISION, ROLLBACK_STARTED,
    ROLLBACK_FINISHED, MONITOR_STARTED, MONITOR_SAMPLE, MONITOR_TRANSITION, MONITOR_ACTION, MONITOR_FINISHED,
    NOTIFY_SENT, NOTIFY_FAILED, RUN_FINISHED, NOTE, STOP_REQUESTED, POLICY_APPLIED,
    GUARD_STARTED, GUARD_SAMPLE, GUARD_TRANSITION, GUARD_FINISHED, DEADLINE_EXCEEDED, DEADLINE_ANSWERED,
    WATCH_SAMPLE, WATCH_TRANSITION, REHEARSAL_STARTED, REHEARSAL_CYCLE,
})


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
    # An event of a side-effect-free check run beside others: it need not be durable before `emit`
    # returns (the check acts on nothing), so the ledger's subscriber may write it later, with others
    # in one transaction, but always before the next event that is not deferrable.
    deferrable: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        # Every payload says which version of its shape it is (readers upcast older ones). A new
        # dict: the caller's may be shared (a step's base fields go into several events).
        if "v" not in self.data:
            self.data = {**self.data, "v": PAYLOAD_VERSION}


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

    def flush(self) -> None:
        """Subscribers that hold deferrable events (the ledger's) write them now."""
        with self._lock:
            for fn in self._subscribers:
                flush = getattr(fn, "flush", None)
                if flush is not None:
                    flush()
