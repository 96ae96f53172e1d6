"""Holding a run's lease while it acts: the heartbeat keeps it, and a watcher notices when someone
broke it (`tminus unlock`) so the run stops before another run acts beside it."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tminus.ledger.interfaces import Ledger
from tminus.ledger.records import Fence, Reclaimed

LEASE_BROKEN = "the lease was broken by `tminus unlock`; the run stopped. `tminus resume` continues"
WATCH_INTERVAL = 0.5  # seconds between looks at the lease's `lost` flag


@contextmanager
def hold_lease(
    ledger: Ledger, key: str, *, run_id: str, operator: str, wait: float, on_broken: Callable[[], None],
    on_reclaimed: Callable[[Reclaimed], None] | None = None,
) -> Iterator[Fence]:
    """Hold the lease `key` for `run_id`; yields its fence, which every write of the run checks.
    `on_broken` is called (from the watcher's thread) when the lease is lost while held;
    `on_reclaimed` when the lease was taken over from an ended or unrecorded run."""
    lease = ledger.acquire_lease(
        key, run_id=run_id, operator=operator, host=socket.gethostname(), pid=os.getpid(), wait=wait,
    )
    if lease.reclaimed is not None and on_reclaimed is not None:
        on_reclaimed(lease.reclaimed)
    lease.start_heartbeat()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if lease.lost.wait(WATCH_INTERVAL):
                on_broken()
                return

    threading.Thread(target=watch, name="tminus-lease-watch", daemon=True).start()
    try:
        yield lease.fence
    finally:
        done.set()
        lease.release()


__all__ = ["LEASE_BROKEN", "hold_lease"]
