"""Checks side by side: a gate's checks, and runs of verify checks that read nothing of each other.

A check whose kind has an async executor (`http`) and that acts on nothing (effect `none`) runs on the
run's event loop (kinds/aio.py: one thread, one connection pool for the run), at most
MAX_CONCURRENT_CHECKS at once; any other check runs in a thread as before. The policy is consulted
before each check, in order, in the section's thread; the events of the loop's checks are
*deferrable* (StepRunner.grouped): the ledger's subscriber writes them in grouped transactions
(engine/recorder.py), since a check changes nothing and is simply run again if a crash loses its
record. The group's events are durable before the section goes on (`bus.flush`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress

from tminus.engine.outcome import StepOutcome
from tminus.engine.run_state import RunState
from tminus.engine.stop import Stopped
from tminus.kinds import registry
from tminus.kinds.base import Effect
from tminus.runbook.models import Step
from tminus.runbook.references import step_outputs_read

MAX_CONCURRENT_CHECKS = 16  # checks in flight at once: this many threads, and as many on the loop
FLUSH_EVERY = 0.25  # seconds: a long group's finished checks reach the ledger at least this often


def on_loop(state: RunState, step: Step) -> bool:
    """Run on the event loop: its kind has an async executor, it acts on nothing, and resume asks
    nothing special of it (an execution the operator skipped or waited for)."""
    kind = registry.get(step.kind)
    return (kind.execute_async is not None and registry.effect_of(step) == Effect.NONE
            and state.prior.interrupted.get(step.key) not in ("skip", "wait"))


def run_all(state: RunState, checks: Sequence[Step], section: str) -> list[StepOutcome]:
    """A gate's checks, all side by side; outcomes in the checks' order."""
    looped = [i for i, s in enumerate(checks) if on_loop(state, s)]
    threaded = [i for i in range(len(checks)) if i not in set(looped)]
    if len(checks) == 1 or len(looped) < 2:
        looped, threaded = [], list(range(len(checks)))
    outcomes: dict[int, StepOutcome] = {}
    group = _Group(state, [checks[i] for i in looped], section) if looped else None
    try:
        if group is not None:
            group.start()
        if len(threaded) == 1:
            outcomes[threaded[0]] = state.run_step(checks[threaded[0]], section)
        elif threaded:
            with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT_CHECKS, len(threaded))) as pool:
                done = pool.map(lambda i: state.run_step(checks[i], section), threaded)
                outcomes.update(zip(threaded, done, strict=True))
    finally:
        if group is not None:
            outcomes.update(zip(looped, group.wait(), strict=True))
    return [outcomes[i] for i in range(len(checks))]


def run_group(state: RunState, checks: Sequence[Step], section: str) -> list[StepOutcome]:
    """Checks that all run on the loop (`on_loop`), side by side; outcomes in their order."""
    group = _Group(state, list(checks), section)
    group.start()
    return group.wait()


def batches(state: RunState, checks: Sequence[Step]) -> list[list[Step]]:
    """Verify's checks in order, cut into runs that may go side by side: consecutive loop checks none
    of which reads the outputs of another in its run (`steps.<id>`); every other step alone."""
    out: list[list[Step]] = []
    ids: set[str] = set()  # ids of the current run's steps
    for step in checks:
        current = out[-1] if out and on_loop(state, out[-1][0]) else None
        if not on_loop(state, step):
            out.append([step])
            continue
        if current is not None and not (ids and ids & set(step_outputs_read(step))):
            current.append(step)
        else:
            out.append([step])
            ids = set()
        if step.id:
            ids.add(step.id)
    return out


class _Group:
    """One group on the loop: consulted and marked in the caller's thread, run on the loop."""

    def __init__(self, state: RunState, checks: list[Step], section: str) -> None:
        self.state, self.checks, self.section = state, checks, section
        self._future: Future[list[StepOutcome | BaseException | None]] | None = None

    def start(self) -> None:
        for step in self.checks:
            self.state.before_step(step)  # in order; a stop asked for here raises before any runs
        self.state.steps.grouped.update(s.key for s in self.checks)
        self.state.steps.kinds_used.update(s.kind for s in self.checks)  # the loop is closed with the run
        # asyncio and the loop here, not at import: a run whose checks all go to threads never loads them
        import asyncio

        from tminus.kinds.aio import run_loop

        self._future = asyncio.run_coroutine_threadsafe(self._run(), run_loop(self.state.steps.shared).loop)

    def wait(self) -> list[StepOutcome]:
        if self._future is None:
            return []
        try:
            results = self._future.result()
        finally:
            self.state.steps.grouped.difference_update(s.key for s in self.checks)
            self.state.steps.bus.flush()  # the group's record is durable before the section goes on
        for step, outcome in zip(self.checks, results, strict=True):
            if isinstance(outcome, StepOutcome):
                self.state.after_step(step, outcome)
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            raise failed
        self.state.check_stop()  # a stop while they ran (some may never have started) ends the section
        outcomes = [r for r in results if isinstance(r, StepOutcome)]
        if len(outcomes) != len(self.checks):
            raise RuntimeError("a check of the group never started, yet the run was not stopped")
        return outcomes

    async def _run(self) -> list[StepOutcome | BaseException | None]:
        import asyncio

        limit = asyncio.Semaphore(MAX_CONCURRENT_CHECKS)

        async def one(step: Step) -> StepOutcome | None:
            async with limit:
                if self.state.stop.pending is not None:
                    return None  # stopped before its turn: it never starts
                return await self.state.steps.run_async(step, self.section)

        flusher = asyncio.ensure_future(self._flush_while_running())
        try:
            return list(await asyncio.gather(*(one(s) for s in self.checks), return_exceptions=True))
        finally:
            flusher.cancel()

    async def _flush_while_running(self) -> None:
        import asyncio

        with suppress(Stopped):  # the lease is gone: the checks see the stop, the caller raises it
            while True:
                await asyncio.sleep(FLUSH_EVERY)
                self.state.steps.bus.flush()


__all__ = ["MAX_CONCURRENT_CHECKS", "batches", "on_loop", "run_all", "run_group"]
