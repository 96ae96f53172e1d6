"""`for` and `consecutive`: a run of breaching samples, reset by one good sample."""

from __future__ import annotations

from tminus.durations import format_duration
from tminus.expect import Assertion
from tminus.monitor.evaluator import Evaluator
from tminus.monitor.modes import Consecutive, For
from tminus.monitor.readers import read_condition
from tminus.monitor.samples import Action, Judgement, Reading, Sample, State
from tminus.monitor.text import clock, short_duration


class StreakEvaluator(Evaluator):
    def __init__(self, condition: Assertion, mode: For | Consecutive):
        self.condition = condition
        self.mode = mode
        self.run = 0  # breaching samples in a row
        self.since: float | None = None  # time of the first of them

    def read(self, sample: Sample) -> Reading:
        return read_condition(self.condition, sample)

    def step(self, at: float, reading: Reading, action: Action) -> Judgement | None:
        if action is Action.GOOD:
            self.run, self.since = 0, None
            return Judgement(State.OK, f"good sample: {reading.detail}")
        self.run += 1
        if self.since is None:
            self.since = at
        if isinstance(self.mode, Consecutive):
            need = self.mode.count
            state = State.FIRING if self.run >= need else State.PENDING
            return Judgement(state, f"probe {self.run}/{need}: {reading.detail}")
        held = at - self.since
        wanted = short_duration(self.mode.seconds)
        if held >= self.mode.seconds:
            return Judgement(
                State.FIRING,
                f"breaching for {format_duration(held)} (since {clock(self.since)}) >= for {wanted}: {reading.detail}",
            )
        if self.run == 1:
            return Judgement(State.PENDING, f"breaching since {clock(at)}, fires after {wanted}: {reading.detail}")
        return Judgement(
            State.PENDING,
            f"breaching for {format_duration(held)} (since {clock(self.since)}) < for {wanted}: {reading.detail}",
        )
