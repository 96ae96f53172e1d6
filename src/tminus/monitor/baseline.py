"""`ratio`: a value against its own pre-cutover baseline (retries, latency, queue depth).

Samples taken before `begin_cutover(at)` only build the baseline and are never judged, so a spike
before the cutover cannot fire the rule; it raises the baseline instead. Without a cutover the
rule only learns.
"""

from __future__ import annotations

import math
from collections import deque

from tminus.monitor.evaluator import Evaluator
from tminus.monitor.modes import Ratio
from tminus.monitor.readers import parse_query, read_number
from tminus.monitor.samples import Action, Judgement, Outcome, Reading, Sample, State
from tminus.monitor.text import decimal


class RatioEvaluator(Evaluator):
    def __init__(self, mode: Ratio, label: str):
        self.mode = mode
        self.label = label
        self.query = parse_query(mode.query)
        self.cutover: float | None = None
        self.last_at: float | None = None
        self.baseline: deque[tuple[float, float]] = deque()

    def begin_cutover(self, at: float) -> None:
        if self.cutover is not None:
            raise ValueError(f"the cutover already began at {self.cutover:g}")
        if self.last_at is not None and at < self.last_at:
            # Samples after `at` were already taken as baseline; the baseline would be wrong.
            raise ValueError(f"the cutover cannot begin at {at:g}, before the sample already seen at {self.last_at:g}")
        self.cutover = at

    def judging(self, at: float) -> bool:
        return self.cutover is not None and at >= self.cutover

    def learn(self, at: float, reading: Reading) -> None:
        self.last_at = at
        if reading.outcome is not Outcome.VALUE:
            return  # a failed pre-cutover probe tells nothing about the normal level
        self.baseline.append((at, reading.value))
        if self.mode.baseline_window is not None:
            # Safe: the cutover is at or after `at`, so older samples are out of its window.
            while self.baseline[0][0] < at - self.mode.baseline_window:
                self.baseline.popleft()

    def mean(self) -> float | None:
        assert self.cutover is not None
        start = -math.inf if self.mode.baseline_window is None else self.cutover - self.mode.baseline_window
        values = [v for t, v in self.baseline if start <= t < self.cutover]
        return sum(values) / len(values) if values else None

    def read(self, sample: Sample) -> Reading:
        reading = read_number(self.query, sample)
        if reading.outcome is Outcome.VALUE and self.judging(sample.at) and self.mean() is None:
            return Reading(Outcome.NO_DATA, reading.value, f"no baseline: no {self.query.subject} before the cutover")
        return reading

    def step(self, at: float, reading: Reading, action: Action) -> Judgement | None:
        self.last_at = at
        if action is Action.BREACH:
            return Judgement(State.FIRING, f"cannot compare with the baseline: {reading.detail}")
        if action is Action.GOOD:
            return Judgement(State.OK, reading.detail)
        mean = self.mean()
        assert mean is not None  # read() made a missing baseline no data
        current = reading.value
        base = max(mean, self.mode.floor)
        # A baseline of 0 makes any rise an infinite ratio: fail closed unless a floor is set.
        ratio = current / base if base > 0 else (math.inf if current > 0 else 0.0)
        against = f"baseline {decimal(mean)}" + (f" (floor {decimal(base)})" if base != mean else "")
        text = f"{self.label} {decimal(current)} vs {against}: ratio {ratio:.2f}"
        if ratio > self.mode.above:
            return Judgement(State.FIRING, f"{text} > {decimal(self.mode.above)}")
        return Judgement(State.OK, f"{text} <= {decimal(self.mode.above)}")
