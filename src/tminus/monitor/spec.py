"""The future `monitor:` runbook section's rules, as pydantic models.

    - name: pool saturated
      when: jsonpath "$.database_pool.state.saturation" >= 0.90
      for: 5m
      on_no_data: hold
      max_no_data: 3
      action: rollback

Validation builds the rule (`to_rule`), so a rule that loads is a rule that runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tminus.monitor.modes import ErrorRate, Increase, Ratio
from tminus.monitor.rules import Rule
from tminus.monitor.samples import Policy
from tminus.spec.models import Duration, Spec

MonitorAction = Literal["rollback", "abort", "pause", "notify"]
MODE_FIELDS = ("for", "consecutive", "increase", "ratio", "error_rate")


class IncreaseSpec(Spec):
    """A counter's rise within a sliding window, counter resets included (restart churn)."""

    query: str = Field(description='A query and filters without a predicate, e.g. jsonpath "$.watchdog.restarts".')
    window: Duration
    at_least: float = Field(gt=0, description="Fire when the counter rose by at least this much.")


class RatioSpec(Spec):
    """A value compared with its mean before the cutover began."""

    query: str = Field(description="A query and filters without a predicate.")
    above: float = Field(gt=0, description="Fire when current / baseline is above this.")
    baseline_window: Duration | None = Field(None, description="Baseline span before the cutover (default: all).")
    floor: float = Field(0.0, ge=0, description="Least baseline used, so a baseline of 0 is not an infinite ratio.")


class ErrorRateSpec(Spec):
    """The share of failed probes (errors, and breaches of `when` if given) in a sliding window."""

    window: Duration
    above: float = Field(ge=0, lt=1, description="A share: 0.05 is 5%.")
    min_samples: int = Field(1, ge=1, description="Do not judge a window with fewer probes.")


class AlertRule(Spec):
    """One monitor rule: a breach condition and exactly one of for, consecutive, increase, ratio, error_rate."""

    name: str
    when: str | None = Field(None, description="The breach, in the expectation grammar.")
    for_: Duration | None = Field(None, alias="for", description="Fire once breaching continuously this long.")
    consecutive: int | None = Field(None, ge=1, description="Fire on this many breaching probes in a row.")
    increase: IncreaseSpec | None = None
    ratio: RatioSpec | None = None
    error_rate: ErrorRateSpec | None = None
    on_no_data: Policy = Field("breach", description="breach (fail closed), ignore (counts as good) or hold.")
    on_error: Policy = Field("breach", description="breach (fail closed), ignore (counts as good) or hold.")
    max_no_data: int | None = Field(None, ge=1, description="Inconclusive after this many data-less probes.")
    action: MonitorAction = "rollback"

    @model_validator(mode="after")
    def _buildable(self) -> AlertRule:
        modes = [key for key in MODE_FIELDS if getattr(self, "for_" if key == "for" else key) is not None]
        if len(modes) != 1:
            found = ", ".join(modes) or "none"
            raise ValueError(f"give exactly one of {', '.join(MODE_FIELDS)}; got {found}")
        self.to_rule()  # ValueError: pydantic reports it against this rule
        return self

    def to_rule(self) -> Rule:
        return Rule(
            self.name,
            self.when,
            for_=self.for_,
            consecutive=self.consecutive,
            increase=None if self.increase is None else Increase(**self.increase.model_dump()),
            ratio=None if self.ratio is None else Ratio(**self.ratio.model_dump()),
            error_rate=None if self.error_rate is None else ErrorRate(**self.error_rate.model_dump()),
            on_no_data=self.on_no_data,
            on_error=self.on_error,
            max_no_data=self.max_no_data,
        )
