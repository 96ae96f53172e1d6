"""The monitor of a run as a report charts it: per rule, the value it read from each sample (the same
reading `tminus why` quotes), its threshold, and the points where it fired or resolved.

A rule's reading comes from the runbook text stored with the run (the rule's condition or query);
a run whose text cannot be read gets its transitions without values, never a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tminus.projection import RunView
from tminus.projection.model import MonitorSample


@dataclass
class Point:
    t: float  # T+ seconds
    value: float | None  # None: no number to plot (probe error, no data, a text value)
    text: str  # what the rule read, in words
    stage: str  # baseline | window


@dataclass
class RuleChart:
    name: str
    probe: str | None
    action: str | None
    text: str  # the rule in words, as recorded
    threshold: float | None  # the condition's number, when it has one
    breach_when: str | None  # the predicate side: `> 0.9`
    points: list[Point] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)  # {t, from, to, reason}
    final: str = "ok"  # the last state it moved to
    fired: bool = False


@dataclass
class StageReport:
    stage: str  # baseline | window
    start: float | None
    duration: float | None
    interval: float | None
    samples: int
    outcome: str | None
    reason: str | None


@dataclass
class MonitorReport:
    stages: list[StageReport]
    rules: list[RuleChart]
    actions: list[dict[str, Any]]  # {rule, action, outcome, t}
    outcome: str | None
    reason: str | None


def monitor_report(record: Any, view: RunView, t0: float | None) -> MonitorReport | None:
    m = view.monitor
    stages = [s for s in m.stages if s.announced]
    if not stages:
        return None

    def rel(at: float | None) -> float | None:
        return None if at is None or t0 is None else round(at - t0, 3)

    configs = _rule_configs(record)
    charts = []
    for name, spec in m.rules.items():
        probe = spec.get("probe")
        config = configs.get(name)
        threshold, breach = _threshold(config)
        chart = RuleChart(name=name, probe=probe, action=spec.get("action"), text=str(spec.get("text", "")),
                          threshold=threshold, breach_when=breach)
        for s in m.samples:
            if probe and s.probe != probe:
                continue
            value, text = _read(config, s)
            at = rel(s.at)
            if at is not None:
                chart.points.append(Point(at, value, text, s.stage))
        for t in m.transitions:
            if t.rule == name:
                chart.transitions.append({"t": rel(t.at), "from": t.from_, "to": t.to, "reason": t.reason,
                                          "forced": bool(t.data.get("forced"))})
                chart.final = str(t.to)
                chart.fired = chart.fired or t.to == "firing"
        charts.append(chart)
    last = m.last_end
    return MonitorReport(
        stages=[StageReport(s.stage, rel(s.at), s.duration, s.interval, len(m.samples_of(s.stage)),
                            s.end.outcome if s.end else None, s.end.reason if s.end else None) for s in stages],
        rules=charts,
        actions=[{"rule": a.rule, "action": a.action, "outcome": a.outcome, "t": rel(a.at)} for a in m.actions],
        outcome=last.outcome if last else None, reason=last.reason if last else None)


def _rule_configs(record: Any) -> dict[str, Any]:
    """Rule name -> its RuleConfig, from the runbook text stored with the run ({} if unreadable)."""
    try:
        from tminus.runbook.loader import load_runbook

        monitor = load_runbook(record.runbook_path, text=record.runbook_text).runbook.monitor
        return {r.name: r.to_rule().config for r in monitor.rules} if monitor else {}
    except Exception:  # an old or unreadable runbook text: transitions only, no values
        return {}


def _threshold(config: Any) -> tuple[float | None, str | None]:
    if config is None:
        return None, None
    assertion = config.assertion()
    if assertion is None:
        return None, None
    operand = assertion.operand
    number = float(operand) if isinstance(operand, int | float) and not isinstance(operand, bool) else None
    return number, assertion.expected


def _read(config: Any, s: MonitorSample) -> tuple[float | None, str]:
    """The number to plot and the words: the rule's reading of the sample (overrides.reading)."""
    from tminus.expect import NoData, TypeMismatch
    from tminus.monitor.overrides import reading
    from tminus.monitor.readers import parse_query
    from tminus.monitor.rules import Increase, Ratio

    if s.error is not None or s.values is None:
        return None, f"probe error: {s.error or 'nothing returned'}"
    if config is None:
        return None, "sample recorded"
    query = parse_query(config.mode.query) if isinstance(config.mode, Increase | Ratio) else config.assertion()
    text = reading(config, s.values, s.error)
    if query is None:
        return None, text
    try:
        value = query.extract(s.values)
    except (NoData, TypeMismatch):
        return None, text
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None, text
    return float(value), text


__all__ = ["MonitorReport", "Point", "RuleChart", "StageReport", "monitor_report"]
