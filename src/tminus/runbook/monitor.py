"""The `monitor:` section's alert rules and the `channels:` notification targets, as pydantic models.

    rules:
      - name: pool saturated
        probe: health
        when: jsonpath "$.database_pool.state.saturation" >= 0.90
        consecutive: 3
        on_no_data: hold
        action: rollback

Validation builds each rule with `tminus.monitor` (pure rule semantics, no engine), so a rule that
loads is a rule that runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from tminus.runbook.types import Duration, Identifier, Retry, Spec, is_template

Policy = Literal["breach", "ignore", "hold"]
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
    """One monitor rule: a probe, a breach condition and exactly one of for, consecutive, increase,
    ratio, error_rate; what happens when it fires."""

    name: str
    probe: str | None = Field(None, description="The probe whose samples the rule reads (default: the only one).")
    when: str | None = Field(None, description="The breach, in the expectation grammar.")
    for_: Duration | None = Field(None, alias="for", description="Fire once breaching continuously this long.")
    consecutive: int | None = Field(None, ge=1, description="Fire on this many breaching probes in a row.")
    increase: IncreaseSpec | None = None
    ratio: RatioSpec | None = None
    error_rate: ErrorRateSpec | None = None
    on_no_data: Policy = Field("breach", description="breach (fail closed), ignore (counts as good) or hold.")
    on_error: Policy = Field("breach", description="breach (fail closed), ignore (counts as good) or hold.")
    max_no_data: int | None = Field(None, ge=1, description="Inconclusive after this many data-less probes.")
    action: MonitorAction = Field(
        "rollback", description="When it fires: rollback (the undo path), abort, pause (ask), notify (only tell)."
    )
    notify: list[str] = Field(default_factory=list, description="Channels told when it fires and resolves.")

    @model_validator(mode="after")
    def _buildable(self) -> AlertRule:
        modes = [key for key in MODE_FIELDS if getattr(self, "for_" if key == "for" else key) is not None]
        if len(modes) != 1:
            found = ", ".join(modes) or "none"
            raise ValueError(f"give exactly one of {', '.join(MODE_FIELDS)}; got {found}")
        if not self.templated():  # a templated duration is checked once rendered (runbook/templated.py)
            self.to_rule()  # ValueError: pydantic reports it against this rule
        return self

    def templated(self) -> bool:
        """Whether a duration of the rule is a template not yet rendered."""
        windows = [self.for_, *(None if m is None else getattr(m, f) for m, f in (
            (self.increase, "window"), (self.ratio, "baseline_window"), (self.error_rate, "window")))]
        return any(is_template(w) for w in windows)

    def rule_kwargs(self) -> dict[str, Any]:
        """The keywords of tminus.monitor.Rule (kept here so replay can override them)."""
        return {
            "for_": self.for_,
            "consecutive": self.consecutive,
            "increase": None if self.increase is None else self.increase.model_dump(),
            "ratio": None if self.ratio is None else self.ratio.model_dump(),
            "error_rate": None if self.error_rate is None else self.error_rate.model_dump(),
            "on_no_data": self.on_no_data,
            "on_error": self.on_error,
            "max_no_data": self.max_no_data,
        }

    def describe(self) -> str:
        """The rule as one line, e.g. `jsonpath "$.saturation" >= 0.90 for 3 consecutive probes`."""
        if self.consecutive is not None:
            return f"{self.when} for {self.consecutive} consecutive probes"
        if self.for_ is not None:
            return f"{self.when} for {self.for_:g}s"
        if self.increase is not None:
            i = self.increase
            return f"{i.query} rises by >= {i.at_least:g} within {i.window:g}s"
        if self.ratio is not None:
            r = self.ratio
            return f"{r.query} > {r.above:g} x its pre-cutover baseline"
        assert self.error_rate is not None
        e = self.error_rate
        failed = f" (failed: error or {self.when})" if self.when else " (failed: error)"
        return f"failed probes > {e.above:.0%} of the last {e.window:g}s{failed}"

    def to_rule(self) -> Any:
        """A fresh `tminus.monitor.Rule` (imported here: the rule semantics are pure, no engine)."""
        from tminus.monitor.rules import Rule

        return Rule(self.name, self.when, **self.rule_kwargs())


class Channel(Spec):
    """A webhook that receives notifications. The body is `template` rendered with Jinja2, or by
    default Slack-compatible JSON: {"text": MESSAGE}. Failed deliveries are retried."""

    url: str = Field(description="The webhook URL (may use templates, e.g. {{ env.SLACK_WEBHOOK }}).")
    method: str = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    template: str | None = Field(
        None, description="Jinja2 template of the JSON body; `message` and the run facts are in scope."
    )
    timeout: Duration = Field(5.0, description="Per delivery attempt.")
    retry: Retry = Field(
        default_factory=lambda: Retry(attempts=3, interval=1.0, backoff=2.0),
        description="Attempts when the receiver fails or is unreachable (default 3, 1s apart, doubling).",
    )


ProbeName = Identifier
