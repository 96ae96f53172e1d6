"""A rule's mode: how breaching samples add up to a firing rule. Exactly one per rule.

Each configuration validates itself (ValueError) so that rules built in code and rules built
from a runbook's `monitor:` section fail the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from tminus.durations import parse_duration


def _seconds(value: float, what: str, *, positive: bool) -> float:
    seconds = parse_duration(value)  # also rejects negatives, booleans and junk
    if positive and seconds <= 0:
        raise ValueError(f"{what} must be longer than 0")
    return seconds


@dataclass(frozen=True)
class For:
    """Fires once the condition has held continuously for `seconds` (0 = on the first breach)."""

    seconds: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "seconds", _seconds(self.seconds, "for", positive=False))


@dataclass(frozen=True)
class Consecutive:
    """Fires on the `count`th breaching sample in a row."""

    count: int

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"consecutive must be a whole number >= 1, got {self.count!r}")


@dataclass(frozen=True)
class Increase:
    """Fires when a counter rose by `at_least` within the last `window` seconds (restart churn)."""

    query: str
    window: float
    at_least: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", _seconds(self.window, "increase window", positive=True))
        if self.at_least <= 0:
            raise ValueError(f"increase at_least must be above 0, got {self.at_least}")


@dataclass(frozen=True)
class Ratio:
    """Fires when a value exceeds `above` times its pre-cutover baseline.

    The baseline is the mean of the samples in the `baseline_window` seconds before the cutover
    (all of them when None). `floor` is the least baseline used: with a quiet baseline of 0 any
    value would be an infinite ratio, so a floor turns the rule into "above floor * above".
    """

    query: str
    above: float
    baseline_window: float | None = None
    floor: float = 0.0

    def __post_init__(self) -> None:
        if self.baseline_window is not None:
            window = _seconds(self.baseline_window, "baseline_window", positive=True)
            object.__setattr__(self, "baseline_window", window)
        if self.above <= 0:
            raise ValueError(f"ratio above must be above 0, got {self.above}")
        if self.floor < 0:
            raise ValueError(f"ratio floor cannot be negative, got {self.floor}")


@dataclass(frozen=True)
class ErrorRate:
    """Fires when the share of failed probes in the last `window` seconds exceeds `above` (0.05 = 5%).

    Below `min_samples` probes in the window the rate is not judged, so one early failure out of
    one probe is not a 100% error rate.
    """

    window: float
    above: float
    min_samples: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", _seconds(self.window, "error_rate window", positive=True))
        if not 0 <= self.above < 1:
            raise ValueError(f"error_rate above is a share between 0 and 1 (0.05 = 5%), got {self.above}")
        if isinstance(self.min_samples, bool) or not isinstance(self.min_samples, int) or self.min_samples < 1:
            raise ValueError(f"error_rate min_samples must be a whole number >= 1, got {self.min_samples!r}")


Mode = For | Consecutive | Increase | Ratio | ErrorRate
