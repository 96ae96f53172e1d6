"""The monitor's notifications: sent to named channels in the background, so that a webhook's
retries never delay the next probe (detection latency), and drained when a monitor stage ends.
Each delivery, or its failure, is a ledger event (`notify.sent`, `notify.failed`)."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tminus import events as ev
from tminus.engine.steps import StepRunner

NOTIFY_DRAIN_SECONDS = 30.0  # how long the end of a stage waits for notifications still retrying


class Notifier:
    def __init__(self, steps: StepRunner) -> None:
        self.steps = steps
        self._pool: ThreadPoolExecutor | None = None  # started by the first notification
        self._pending: list[Future[Any]] = []

    def send(self, channels: list[str], message: str, extra: dict[str, Any]) -> None:
        """Deliver `message` to each named channel in the background."""
        if not channels:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tminus-notify")
        for name in channels:
            self._pending.append(self._pool.submit(deliver, self.steps, name, message, extra))

    def drain(self) -> None:
        """Wait (up to NOTIFY_DRAIN_SECONDS in all) for the deliveries still under way."""
        deadline = time.monotonic() + NOTIFY_DRAIN_SECONDS
        for future in self._pending:
            # a delivery's own failure is already a ledger event (notify.failed)
            with contextlib.suppress(Exception):
                future.result(timeout=max(0.0, deadline - time.monotonic()))
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


def deliver(steps: StepRunner, channel_name: str, message: str, extra: dict[str, Any]) -> bool:
    """Send one notification to a named channel and record the delivery (or its failure)."""
    from tminus.kinds.http import client_for
    from tminus.notify import send

    channel = steps.doc.runbook.channels.get(channel_name)
    if channel is None:
        steps.emit(ev.NOTIFY_FAILED, channel=channel_name, error=f"no channel named '{channel_name}'")
        return False
    steps.refresh_facts()
    message = steps.templater.masker.mask(message)  # a webhook is output too: secrets stay masked
    delivery = send(
        channel, message, render=lambda text, names: steps.templater.render(text, steps.outputs, names),
        extra=extra, cancel=steps.stop, client=client_for(steps.shared, verify=True),
    )
    steps.emit(ev.NOTIFY_SENT if delivery.ok else ev.NOTIFY_FAILED, channel=channel_name, url=delivery.url,
               attempts=delivery.attempts, status=delivery.status, error=delivery.error, message=message)
    return delivery.ok


__all__ = ["NOTIFY_DRAIN_SECONDS", "Notifier", "deliver"]
