"""The ledger's subscriber on a run's event bus: each event goes through the run's writer.

Two events are written with more than themselves, in one transaction each:
- `approval.given` naming an approval consumes that approval, keyed by the `approval.requested`
  it answers (the recorder remembers each request's seq); ApprovalTaken reaches the emitter, which
  waits for another answer.
- `run.finished` carries the run's final status (writer.finish).
When the writer's lease is gone (LeaseLost: nothing was written), `on_lost` is told (the session
raises its stop channel) and the emitter gets Stopped with an interrupt, so the run stops as it does
when a signal interrupts it; it stays resumable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from tminus import events as ev
from tminus.engine.stop import Stopped, StopRequest
from tminus.errors import LeaseLost
from tminus.events import Event
from tminus.ledger.interfaces import RunWriter


class LedgerRecorder:
    def __init__(self, writer: RunWriter, on_lost: Callable[[LeaseLost], StopRequest]) -> None:
        self.writer = writer
        self.on_lost = on_lost
        self.lost: StopRequest | None = None
        self._requests: dict[str | None, int] = {}  # step key -> seq of its open approval request
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if self.lost is not None:
            raise Stopped(self.lost)
        try:
            self._record(event)
        except LeaseLost as exc:
            self.lost = self.on_lost(exc)
            raise Stopped(self.lost) from exc

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
