"""Alert rules for the monitoring window: pure state machines fed with probe samples.

    rule = Rule("pool saturated", 'jsonpath "$.database_pool.state.saturation" >= 0.90', for_="5m")
    for transition in rule.observe(Sample(at, values)):
        ...  # ok -> pending -> firing -> resolved; inconclusive asks the operator

Timestamps come from the samples, so recorded samples replay exactly (`Rule.replay`).
"""

from tminus.monitor.modes import Consecutive, ErrorRate, For, Increase, Mode, Ratio
from tminus.monitor.rules import Rule, RuleConfig, replay
from tminus.monitor.samples import POLICIES, Outcome, Policy, Sample, State, Transition

__all__ = [
    "POLICIES",
    "Consecutive",
    "ErrorRate",
    "For",
    "Increase",
    "Mode",
    "Outcome",
    "Policy",
    "Ratio",
    "Rule",
    "RuleConfig",
    "Sample",
    "State",
    "Transition",
    "replay",
]
