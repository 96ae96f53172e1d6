"""Sliding-window modes: a counter's increase (restart churn) and the share of failed probes.

A window of W seconds at time t holds the samples with t - W <= at <= t.
"""

from __future__ import annotations

import re
from collections import deque
from typing import NamedTuple

from tminus.expect import Assertion
from tminus.monitor.evaluator import Evaluator
from tminus.monitor.modes import ErrorRate, Increase
from tminus.monitor.readers import parse_query, probe_error, read_condition, read_number
from tminus.monitor.samples import Action, Judgement, Outcome, Reading, Sample, State
from tminus.monitor.text import clock, count, short_duration


class _Delta(NamedTuple):
    at: float  # when the rise was observed: the later of the two samples
    rise: float
    reset: bool


class IncreaseEvaluator(Evaluator):
    """Like Prometheus `increase`, without extrapolation: the sum of the rises between consecutive
    readings, each counted at the time it was observed. A drop is a counter reset (the process
    restarted and counts from 0), so the new value itself is the rise. The first reading only sets
    the level: restarts from before monitoring began are not churn."""

    def __init__(self, mode: Increase):
        self.mode = mode
        self.query = parse_query(mode.query)
        self.last: float | None = None
        self.deltas: deque[_Delta] = deque()
        words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", self.query.argument or self.query.query)
        self.noun = words[-1] if words else "increase"  # `$.watchdog.restarts` counts restarts

    def read(self, sample: Sample) -> Reading:
        return read_number(self.query, sample)

    def step(self, at: float, reading: Reading, action: Action) -> Judgement | None:
        if action is Action.BREACH:  # no counter to read, and the policy says fail closed
            return Judgement(State.FIRING, f"cannot read the counter: {reading.detail}")
        if action is Action.VALUE:
            value = reading.value
            if self.last is not None:
                reset = value < self.last
                self.deltas.append(_Delta(at, value if reset else value - self.last, reset))
            self.last = value
        while self.deltas and self.deltas[0].at < at - self.mode.window:
            self.deltas.popleft()
        total = sum(d.rise for d in self.deltas)
        resets = [clock(d.at) for d in self.deltas if d.reset]
        reason = f"{count(total)} {self.noun} in the last {short_duration(self.mode.window)}"
        if resets:
            reason += f", counter reset at {', '.join(resets)} counted from 0"
        if total >= self.mode.at_least:
            return Judgement(State.FIRING, f"{reason} (at least {count(self.mode.at_least)}): {reading.detail}")
        return Judgement(State.OK, f"{reason} (fires at {count(self.mode.at_least)}): {reading.detail}")


class ErrorRateEvaluator(Evaluator):
    """Failed probes are errors and breaches of the condition (when there is one), after the
    policies: a held sample is left out of the window altogether."""

    def __init__(self, mode: ErrorRate, condition: Assertion | None):
        self.mode = mode
        self.condition = condition
        self.window: deque[tuple[float, bool]] = deque()  # (at, failed)

    def read(self, sample: Sample) -> Reading:
        if self.condition is not None:
            return read_condition(self.condition, sample)
        return probe_error(sample) or Reading(Outcome.PASS, None, "probe ok")

    def step(self, at: float, reading: Reading, action: Action) -> Judgement | None:
        self.window.append((at, action is Action.BREACH))
        while self.window and self.window[0][0] < at - self.mode.window:
            self.window.popleft()
        total = len(self.window)
        if total < self.mode.min_samples:
            return None  # too few probes to call it a rate; keep the state
        failed = sum(1 for _, bad in self.window if bad)
        rate = failed / total
        text = f"error rate {failed}/{total} = {rate:.1%}"
        where = f"in the last {short_duration(self.mode.window)}: {reading.detail}"
        if rate > self.mode.above:
            return Judgement(State.FIRING, f"{text} > {self.mode.above:.1%} {where}")
        return Judgement(State.OK, f"{text} <= {self.mode.above:.1%} {where}")
