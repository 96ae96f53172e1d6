"""The run's event loop: one asyncio loop in one thread of its own, made on first use and closed
when the run ends. Kinds with an async executor (`http`) run their side-by-side checks on it, so
their clients (made on that loop) keep one connection pool for the whole run."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from tminus.kinds.base import Resource

T = TypeVar("T")
_KEY = "aio.loop"
_lock = threading.Lock()


class RunLoop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="tminus-checks", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and wait for its result (from any thread but the loop's own)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def run_loop(shared: dict[str, Any]) -> RunLoop:
    """The run's loop, started on first use."""
    loop = shared.get(_KEY)
    if loop is None:
        with _lock:
            loop = shared.get(_KEY)
            if loop is None:
                loop = shared[_KEY] = RunLoop()
    return loop


def loop_of(shared: dict[str, Any]) -> RunLoop | None:
    """The run's loop if one was started."""
    return shared.get(_KEY)


def close_loop(shared: dict[str, Any]) -> None:
    loop = shared.pop(_KEY, None)
    if loop is not None:
        loop.close()


RUN_LOOP = Resource("aio.loop", close_loop)

__all__ = ["RUN_LOOP", "RunLoop", "close_loop", "loop_of", "run_loop"]
