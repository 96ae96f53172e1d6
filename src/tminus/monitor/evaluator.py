"""The interface between a rule (policies, inconclusive, transitions) and its mode's arithmetic."""

from __future__ import annotations

from tminus.monitor.samples import Action, Judgement, Reading, Sample


class Evaluator:
    """One mode's running state. `Rule` calls read() on every sample, then step() unless the
    sample is held; a mode that is not judging yet (a ratio before the cutover) gets learn()."""

    def read(self, sample: Sample) -> Reading:
        raise NotImplementedError

    def judging(self, at: float) -> bool:
        return True

    def learn(self, at: float, reading: Reading) -> None:
        """Take in a sample that is not judged (baseline material)."""

    def begin_cutover(self, at: float) -> None:
        """Only a ratio rule cares when the cutover began."""

    def step(self, at: float, reading: Reading, action: Action) -> Judgement | None:
        """The state the rule should be in after this sample; None when it cannot tell (keep it)."""
        raise NotImplementedError
