"""The ledger's subscriber on a run's event bus: each event goes through the run's writer.

Two events are written with more than themselves, in one transaction each:
- `approval.given` naming an approval consumes that approval, keyed by the `approval.requested`
  it answers (the recorder remembers each request's seq); ApprovalTaken reaches the emitter, which
  waits for another answer.
- `run.finished` carries the run's final status (writer.finish).
Deferrable events (those of side-effect-free checks run side by side: engine/checkgroup.py) are
held and written together with `append_many`, in one transaction: when GROUP_EVENTS are held, when
the oldest is GROUP_AGE seconds old, at `flush()` (the bus's, at the end of a group and every
GROUP_AGE while it runs), and always before any other event, so the ledger's order is the order
of emission and nothing that acts is recorded before the checks that ran ahead of it. A crash loses
at most held check events: the checks run again on resume, and they changed nothing.
When the writer's lease is gone (LeaseLost: nothing was written), `on_lost` is told (the session
raises its stop channel) and the emitter gets Stopped with an interrupt, so the run stops as it does
when a signal interrupts it; it stays resumable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tminus import events as ev
from tminus.engine.stop import Stopped, StopRequest
from tminus.errors import LeaseLost
from tminus.events import Event
from tminus.ledger.interfaces import RunWriter

GROUP_EVENTS = 100  # deferrable events held at most before they are written
GROUP_AGE = 0.25  # seconds the oldest held event waits at most (a long group still shows progress)


class LedgerRecorder:
    def __init__(self, writer: RunWriter, on_lost: Callable[[LeaseLost], StopRequest]) -> None:
        self.writer = writer
        self.on_lost = on_lost
        self.lost: StopRequest | None = None
        self._requests: dict[str | None, int] = {}  # step key -> seq of its open approval request
        self._lock = threading.Lock()
        self._held: list[Event] = []
        self._held_since = 0.0
        self.transactions = 0  # grouped writes made (what tests count)

    def __call__(self, event: Event) -> None:
        if self.lost is not None:
            raise Stopped(self.lost)
        try:
            if event.deferrable:
                self._hold(event)
            else:
                self._write_held()
                self._record(event)
        except LeaseLost as exc:
            self.lost = self.on_lost(exc)
            raise Stopped(self.lost) from exc

    def flush(self) -> None:
        """Write the held events now (the bus calls it; Stopped when the lease is gone)."""
        if self.lost is not None:
            if self._held:
                raise Stopped(self.lost)
            return
        try:
            self._write_held()
        except LeaseLost as exc:
            self.lost = self.on_lost(exc)
            raise Stopped(self.lost) from exc

    def _hold(self, event: Event) -> None:
        now = time.monotonic()
        if not self._held:
            self._held_since = now
        self._held.append(event)
        if len(self._held) >= GROUP_EVENTS or now - self._held_since >= GROUP_AGE:
            self._write_held()

    def _write_held(self) -> None:
        if not self._held:
            return
        held, self._held = self._held, []
        self.writer.append_many(held)
        self.transactions += 1

    def _record(self, event: Event) -> None:
        data = event.data
        if event.type == ev.APPROVAL_GIVEN and data.get("approval_id") is not None:
            with self._lock:
                request = self._requests.get(event.step_key)
            if request is not None:
                self.writer.consume_approval(request, int(data["approval_id"]), event)
                with self._lock:
                    self._requests.pop(event.step_key, None)
                return
        if event.type == ev.RUN_FINISHED:
            status = str(data.get("status"))
            self.writer.finish(status, int(data.get("exit_code") or 0), data.get("reason"), event,
                               finished=status != "interrupted")
            return
        record = self.writer.append(event)
        if event.type == ev.APPROVAL_REQUESTED:
            with self._lock:
                self._requests[event.step_key] = record.seq
        elif event.type == ev.APPROVAL_GIVEN:
            with self._lock:
                self._requests.pop(event.step_key, None)


__all__ = ["LedgerRecorder"]
