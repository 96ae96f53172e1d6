"""The probing loop a phase's guard (engine/guards.py) and a `watch` step (kinds/watch.py) share:
every `interval`, each probe runs (concurrently), each sample is judged the moment it completes by
the rules that read that probe, and a transition is handed to the caller, who records it and says
whether the watch must stop (a firing or inconclusive rule that acts).

Pure scheduling and judging: how a probe runs and what is recorded are the caller's (`probes` are
callables returning a Sample; `on_transition` records and decides). It ends when `halt` is set, when
`keep_going()` says no before a round, when a transition acts, or when `duration` has passed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tminus.monitor.rules import Rule
from tminus.monitor.samples import Sample, Transition

MAX_PROBES_AT_ONCE = 16
KEPT = 50  # samples kept per probe, for the evidence of a verdict

PASSED, ACTED, HALTED, STOPPED = "passed", "acted", "halted", "stopped"


@dataclass
class Armed:
    """One rule, its running state, and the probe it reads. `spec` is the runbook's AlertRule."""

    spec: Any
    rule: Rule
    probe: str


def arm(rules: Sequence[Any], probes: Sequence[str]) -> list[Armed]:
    """The runbook's AlertRules with their state machines; a rule without `probe:` reads the only probe."""
    only = probes[0] if len(probes) == 1 else ""
    return [Armed(r, r.to_rule(), r.probe or only) for r in rules]


class Watching:
    def __init__(
        self,
        probes: Mapping[str, Callable[[], Sample]],
        rules: Sequence[Armed],
        interval: float,
        *,
        on_transition: Callable[[Armed, Transition], bool],
        halt: threading.Event,
        keep_going: Callable[[], bool] = lambda: True,
        duration: float | None = None,
        on_round: Callable[[], None] | None = None,
        thread_name: str = "tminus-probe",
    ) -> None:
        self.probes, self.rules, self.interval = dict(probes), list(rules), interval
        self.on_transition, self.halt, self.keep_going = on_transition, halt, keep_going
        self.duration, self.on_round, self.thread_name = duration, on_round, thread_name
        self.acted = False
        self.rounds = 0
        self._judging = threading.Lock()
        self._kept: dict[str, deque[Sample]] = {}

    def recent(self, probe: str, n: int) -> list[Sample]:
        """The last `n` samples of a probe (what a verdict quotes)."""
        return list(self._kept.get(probe, ()))[-n:]

    def run(self) -> str:
        """Probe and judge until the end; returns passed (the duration ran out quietly), acted,
        halted (`halt` was set) or stopped (`keep_going` said no)."""
        began = time.monotonic()
        end = began + self.duration if self.duration is not None else None
        workers = ThreadPoolExecutor(max_workers=max(1, min(MAX_PROBES_AT_ONCE, len(self.probes))),
                                     thread_name_prefix=self.thread_name)
        try:
            while True:
                due = began + self.rounds * self.interval
                if end is not None and due >= end:
                    due = end
                if self.halt.wait(max(0.0, due - time.monotonic())):
                    return HALTED
                if end is not None and time.monotonic() >= end:
                    return PASSED
                if not self.keep_going():
                    return STOPPED
                futures = [workers.submit(self._probe_and_judge, n, p) for n, p in self.probes.items()]
                for future in futures:
                    future.result()
                self.rounds += 1
                if self.on_round is not None:
                    self.on_round()
                if self.acted:
                    return ACTED
        finally:
            workers.shutdown(wait=True)

    def _probe_and_judge(self, name: str, probe: Callable[[], Sample]) -> None:
        sample = probe()
        with self._judging:
            if self.acted:
                return  # decided: later samples are recorded, not judged
            self._kept.setdefault(name, deque(maxlen=KEPT)).append(sample)
            for armed in self.rules:
                if armed.probe != name:
                    continue
                for moved in armed.rule.observe(sample):
                    if self.on_transition(armed, moved):
                        self.acted = True
                        return


class Clock:
    """Sample times in order per probe even if the wall clock steps back (rules need time order)."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def at(self, probe: str) -> float:
        with self._lock:
            at = max(time.time(), self._last.get(probe, 0.0) + 1e-6)
            self._last[probe] = at
            return at


__all__ = ["ACTED", "HALTED", "PASSED", "STOPPED", "Armed", "Clock", "Watching", "arm"]
