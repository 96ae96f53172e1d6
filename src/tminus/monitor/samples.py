"""What rules consume and produce: probe samples, rule states, and state transitions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

# What a sample without usable data counts as: a breach (fail-closed, the default), a good
# sample (`ignore`), or nothing at all (`hold`: the rule neither advances nor resets).
Policy = Literal["breach", "ignore", "hold"]
POLICIES: tuple[Policy, ...] = ("breach", "ignore", "hold")
BODY_KEPT = 2000  # characters of a probe's text body kept in a sample (the JSON is kept whole)


@dataclass(frozen=True)
class Sample:
    """One probe. `at` is in seconds (epoch seconds in production: messages show it as a UTC clock).

    `values` is None with `error` set when the probe could not run (refused, timeout).
    """

    at: float
    values: Mapping[str, Any] | None
    error: str | None = None


class State(StrEnum):
    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"
    # Transient: a firing rule that stopped breaching. Only ever a transition's target; the
    # rule itself is `ok` right after, so the next transition starts from `ok`.
    RESOLVED = "resolved"
    # Not enough data to judge: the engine pauses and asks the operator instead of rolling back.
    INCONCLUSIVE = "inconclusive"


class Outcome(StrEnum):
    """What one sample says, before the rule's policies apply."""

    PASS = "pass"
    BREACH = "breach"
    NO_DATA = "no_data"  # the queried value is missing or unusable
    ERROR = "error"  # the probe itself failed
    VALUE = "value"  # a number for a counter or ratio rule, which judges it over time


class Action(StrEnum):
    """How a rule's mode must take a sample, once the policies have applied."""

    BREACH = "breach"
    GOOD = "good"
    HOLD = "hold"
    VALUE = "value"


@dataclass(frozen=True)
class Reading:
    """A sample as one rule reads it. `detail` is the human text quoted in reasons."""

    outcome: Outcome
    value: Any
    detail: str

    @property
    def blind(self) -> bool:
        """No usable data: the rule learns nothing about the service from this sample."""
        return self.outcome in (Outcome.NO_DATA, Outcome.ERROR)


@dataclass(frozen=True)
class Judgement:
    """A mode's view of the rule after a sample: the state it should be in, and why."""

    state: State
    reason: str


@dataclass(frozen=True)
class Transition:
    rule: str
    at: float
    from_state: State
    to_state: State
    reason: str
    sample: Sample | None = None  # the sample that caused it, raw values included

    def __str__(self) -> str:
        return f"{self.rule}: {self.from_state} -> {self.to_state} at {self.at:g}: {self.reason}"


def kept(values: Mapping[str, Any], mask: Callable[[str], str]) -> dict[str, Any]:
    """What a sample keeps (monitor, guard and watch alike): everything a rule can query, but not a
    long text body twice. The body is masked before it is cut: cut first, the start of a secret at
    the cut would survive."""
    out = dict(values)
    body = out.get("body")
    if isinstance(body, str) and ("json" in out or len(body) > BODY_KEPT):
        out["body"] = mask(body)[:BODY_KEPT if "json" not in out else 200]
    return out
