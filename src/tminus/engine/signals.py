"""SIGINT and SIGTERM as stop requests: while a run executes, they stop the current step (its process
group is killed) and end the run resumably, instead of killing tminus mid-write."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tminus.engine.stop import INTERRUPT, StopChannel

SIGNAL_REASON = "interrupted by a signal; `tminus resume` continues"


@contextmanager
def signals_stop(stop: StopChannel) -> Iterator[None]:
    """Route SIGINT/SIGTERM to `stop` for the duration; the previous handlers come back after.
    Only the main thread may set handlers: elsewhere (a run driven from a thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        # Not from the handler itself: recording takes locks the interrupted code may hold.
        name = signal.Signals(signum).name
        threading.Thread(
            target=stop.request, name="tminus-stop-signal", daemon=True,
            args=(INTERRUPT, SIGNAL_REASON, f"signal {name}"),
        ).start()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


__all__ = ["signals_stop"]
