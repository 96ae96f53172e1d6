"""Alert rules over the monitoring window: policies for missing data, inconclusive, transitions.

A rule reads each sample (pass, breach, no data, error), applies its policies to samples without
usable data (`breach` by default: fail closed; `ignore` counts them as good; `hold` leaves the
state alone), hands the result to its mode (for, consecutive, increase, ratio, error_rate), and
reports every change of state as a Transition. Time is whatever the samples say; nothing here
reads a clock, so recorded samples replay exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from tminus.durations import parse_duration
from tminus.errors import ExpectationSyntaxError
from tminus.expect import Assertion, parse
from tminus.monitor.baseline import RatioEvaluator
from tminus.monitor.evaluator import Evaluator
from tminus.monitor.modes import Consecutive, ErrorRate, For, Increase, Mode, Ratio
from tminus.monitor.samples import POLICIES, Action, Outcome, Policy, Reading, Sample, State, Transition
from tminus.monitor.streak import StreakEvaluator
from tminus.monitor.windows import ErrorRateEvaluator, IncreaseEvaluator

_MODE_KEYS: dict[str, type[Mode]] = {
    "for_": For,
    "consecutive": Consecutive,
    "increase": Increase,
    "ratio": Ratio,
    "error_rate": ErrorRate,
}


@dataclass(frozen=True)
class RuleConfig:
    """Everything that defines a rule; replaying history means running another config."""

    name: str
    condition: str | None
    mode: Mode
    on_no_data: Policy = "breach"
    on_error: Policy = "breach"
    max_no_data: int | None = None

    def __post_init__(self) -> None:
        for key in ("on_no_data", "on_error"):
            if getattr(self, key) not in POLICIES:
                raise ValueError(f"{key} must be one of {', '.join(POLICIES)}, got {getattr(self, key)!r}")
        if self.max_no_data is not None and (isinstance(self.max_no_data, bool) or self.max_no_data < 1):
            raise ValueError(f"max_no_data must be a whole number >= 1, got {self.max_no_data!r}")
        if isinstance(self.mode, For | Consecutive) and self.condition is None:
            raise ValueError(f"rule '{self.name}': 'for' and 'consecutive' need a condition (when)")
        if isinstance(self.mode, Increase | Ratio) and self.condition is not None:
            raise ValueError(f"rule '{self.name}': increase and ratio read their own query; drop the condition")

    def assertion(self) -> Assertion | None:
        if self.condition is None:
            return None
        try:
            return parse(self.condition)
        except ExpectationSyntaxError as exc:
            raise ValueError(f"rule '{self.name}': invalid condition: {exc}") from None

    def with_overrides(self, overrides: Mapping[str, Any]) -> RuleConfig:
        """A changed copy. Keys: the Rule() keywords (`for` too), and `threshold` for the condition's
        operand. A mode key switches the mode; a mapping for the current mode changes only the
        fields it names, e.g. {"increase": {"at_least": 5}}."""
        changes = dict(overrides)
        if "for" in changes:
            changes["for_"] = changes.pop("for")
        config = self
        if "threshold" in changes:
            assertion = self.assertion()
            if assertion is None:
                raise ValueError(f"rule '{self.name}' has no condition whose threshold could change")
            config = replace(config, condition=assertion.with_operand(changes.pop("threshold")).text)
        modes = [k for k in _MODE_KEYS if k in changes]
        if len(modes) > 1:
            raise ValueError(f"override one mode at a time, got {', '.join(modes)}")
        if modes:
            config = replace(config, mode=_changed_mode(config.mode, modes[0], changes.pop(modes[0])))
        unknown = set(changes) - {f.name for f in fields(RuleConfig)} - {"mode"}
        if unknown:
            raise ValueError(f"cannot override {', '.join(sorted(unknown))}")
        return replace(config, **changes)


def _changed_mode(current: Mode | None, key: str, value: Any) -> Mode:
    """The mode named by a Rule() keyword; a mapping for the current mode's kind edits a copy."""
    kind = _MODE_KEYS[key]
    if kind is For:
        return For(parse_duration(value))
    if kind is Consecutive:
        return Consecutive(value)
    if isinstance(value, kind):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"{key} takes a mapping of its fields, got {type(value).__name__}")
    if isinstance(current, kind):
        return replace(current, **value)
    return kind(**value)


def _evaluator(config: RuleConfig) -> Evaluator:
    mode, assertion = config.mode, config.assertion()
    if isinstance(mode, For | Consecutive):
        assert assertion is not None  # RuleConfig checked it
        return StreakEvaluator(assertion, mode)
    if isinstance(mode, Increase):
        return IncreaseEvaluator(mode)
    if isinstance(mode, Ratio):
        return RatioEvaluator(mode, config.name)
    return ErrorRateEvaluator(mode, assertion)


class Rule:
    """One alert rule with its running state. Feed samples in time order with observe()."""

    def __init__(
        self,
        name: str,
        condition: str | None = None,
        *,
        for_: float | str | None = None,
        consecutive: int | None = None,
        increase: Increase | Mapping[str, Any] | None = None,
        ratio: Ratio | Mapping[str, Any] | None = None,
        error_rate: ErrorRate | Mapping[str, Any] | None = None,
        on_no_data: Policy = "breach",
        on_error: Policy = "breach",
        max_no_data: int | None = None,
    ):
        given = {
            key: value
            for key, value in {
                "for_": for_,
                "consecutive": consecutive,
                "increase": increase,
                "ratio": ratio,
                "error_rate": error_rate,
            }.items()
            if value is not None
        }
        if len(given) != 1:
            found = ", ".join(given) or "none"
            raise ValueError(
                f"rule '{name}' needs exactly one of for, consecutive, increase, ratio, error_rate; got {found}"
            )
        ((key, value),) = given.items()
        mode = _changed_mode(None, key, value)
        self._setup(RuleConfig(name, condition, mode, on_no_data, on_error, max_no_data))

    @classmethod
    def from_config(cls, config: RuleConfig) -> Rule:
        rule = cls.__new__(cls)
        rule._setup(config)
        return rule

    def _setup(self, config: RuleConfig) -> None:
        self.config = config
        self._mode = _evaluator(config)
        self._state = State.OK  # what the engine sees
        self._underlying = State.OK  # the mode's state, kept while inconclusive
        self._blind = 0  # samples in a row without usable data that did not count as breaches
        self._last_at: float | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def state(self) -> State:
        return self._state

    @property
    def uses_baseline(self) -> bool:
        """Only a ratio rule reads samples taken before the cutover (its baseline); the others
        judge the cutover, so they start with the first sample after it."""
        return isinstance(self.config.mode, Ratio)

    def begin_cutover(self, at: float) -> None:
        """Mark the start of the cutover: a ratio rule's baseline ends here."""
        self._mode.begin_cutover(at)

    def observe(self, sample: Sample) -> list[Transition]:
        if self._last_at is not None and sample.at < self._last_at:
            raise ValueError(f"samples must come in time order: {sample.at:g} after {self._last_at:g}")
        self._last_at = sample.at
        reading = self._mode.read(sample)
        if not self._mode.judging(sample.at):
            self._mode.learn(sample.at, reading)
            return []
        action, reading = self._apply_policy(reading)
        self._blind = self._blind + 1 if reading.blind and action is not Action.BREACH else 0
        judgement = None if action is Action.HOLD else self._mode.step(sample.at, reading, action)
        if judgement is not None:
            self._underlying = judgement.state
        limit = self.config.max_no_data
        # A firing rule stays firing when the data goes away: a confirmed breach is not undone by silence.
        if limit is not None and self._blind >= limit and self._underlying is not State.FIRING:
            reason = f"{self._blind} samples in a row without data (max_no_data {limit}): {reading.detail}"
            return self._move(State.INCONCLUSIVE, reason, sample)
        if judgement is None:
            if self._state is State.INCONCLUSIVE and not self._blind:
                return self._move(self._underlying, f"data is back: {reading.detail}", sample)
            return []
        reason = judgement.reason
        if self._state is State.INCONCLUSIVE and not reading.blind:
            reason = f"data is back: {reason}"
        return self._move(judgement.state, reason, sample)

    def feed(self, samples: Iterable[Sample], *, cutover_at: float | None = None) -> list[Transition]:
        """Observe samples in order, beginning the cutover before the first sample at or after cutover_at.
        Samples before cutover_at reach only a rule that uses a baseline (the engine does the same)."""
        out: list[Transition] = []
        begun = False
        for sample in samples:
            if cutover_at is not None and not begun and sample.at >= cutover_at:
                self.begin_cutover(cutover_at)
                begun = True
            if cutover_at is not None and not begun and not self.uses_baseline:
                continue
            out += self.observe(sample)
        return out

    def replay(
        self, samples: Iterable[Sample], *, cutover_at: float | None = None, **overrides: Any
    ) -> list[Transition]:
        """The transitions a fresh copy of this rule, changed by `overrides`, gives on `samples`.

        This rule's own state is untouched. E.g. replay(samples, threshold=0.95, for_="10m").
        """
        rule = Rule.from_config(self.config.with_overrides(overrides))
        return rule.feed(samples, cutover_at=cutover_at)

    def _apply_policy(self, reading: Reading) -> tuple[Action, Reading]:
        if reading.outcome is Outcome.VALUE:
            return Action.VALUE, reading
        if not reading.blind:
            return (Action.BREACH if reading.outcome is Outcome.BREACH else Action.GOOD), reading
        key = "on_no_data" if reading.outcome is Outcome.NO_DATA else "on_error"
        policy: Policy = getattr(self.config, key)
        counted = {"breach": "counted as a breach", "ignore": "counted as good", "hold": "held"}[policy]
        noted = replace(reading, detail=f"{reading.detail} ({counted}, {key}: {policy})")
        return {"breach": Action.BREACH, "ignore": Action.GOOD, "hold": Action.HOLD}[policy], noted

    def _move(self, to: State, reason: str, sample: Sample) -> list[Transition]:
        if to is self._state:
            return []
        if self._state is State.FIRING and to is State.OK:
            to = State.RESOLVED  # reported once; the rule rests at ok
        moved = Transition(self.name, sample.at, self._state, to, reason, sample)
        self._state = State.OK if to is State.RESOLVED else to
        return [moved]


def replay(
    rule: Rule | RuleConfig,
    samples: Iterable[Sample],
    overrides: Mapping[str, Any] | None = None,
    *,
    cutover_at: float | None = None,
) -> list[Transition]:
    """Re-evaluate recorded samples under changed fields (see RuleConfig.with_overrides)."""
    config = rule.config if isinstance(rule, Rule) else rule
    fresh = Rule.from_config(config.with_overrides(overrides or {}))
    return fresh.feed(samples, cutover_at=cutover_at)
