"""`tminus replay` semantics: recorded monitor samples re-judged by the run's rules, with --set overrides.

Events are built directly (the ledger's EventRecord shape: type, step_key, data, at); the runbook
is loaded from a real file. T0 is 12:00:00 UTC so clock times in verdicts are readable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tminus.monitor.replay import NothingToReplay, ReplayError, parse_sets, replay_run
from tminus.runbook.loader import load_runbook
from tminus.runbook.models import Runbook

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()
CUTOVER = T0 + 10
POOL = "pool saturated"
SAT = 'jsonpath "$.database_pool.state.saturation" >= 0.90'

RUNBOOK = f"""
name: pool-upgrade
phases:
  - name: cutover
    steps:
      - name: switch pool
        run: "true"
        undo:
          - run: "true"
monitor:
  duration: 10m
  interval: 1m
  baseline: 2m
  probes:
    - name: health
      http: http://127.0.0.1:9/health
  rules:
    - name: {POOL}
      when: '{SAT}'
      consecutive: 3
      action: rollback
"""


@dataclass(frozen=True)
class Ev:
    type: str
    step_key: str | None
    data: dict[str, Any]
    at: str


def ev(type_: str, t: float, step_key: str | None = None, /, **data: Any) -> Ev:
    return Ev(type_, step_key, data, datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds"))


def sample(at: float, values: dict[str, Any] | None, *, probe: str = "health", stage: str = "window",
           error: str | None = None) -> Ev:
    return ev("monitor.sample", at, "monitor.probes[0]", probe=probe, stage=stage, at=at, values=values,
              error=error, duration_ms=3.0)


def sat(at: float, value: float) -> Ev:
    return sample(at, {"status": 200, "json": {"database_pool": {"state": {"saturation": value}}}})


def transition(at: float, frm: str, to: str, reason: str, rule: str = POOL) -> Ev:
    return ev("monitor.transition", at, rule=rule, probe="health", at=at, reason=reason, action="rollback",
              sample={"at": at}, **{"from": frm, "to": to})


def runbook(tmp_path: Path, text: str = RUNBOOK) -> Runbook:
    path = tmp_path / "runbook.yaml"
    path.write_text(text)
    return load_runbook(path).runbook


def pool_run(values: list[float], *, outcome: str = "rollback") -> list[Ev]:
    """A run whose window sampled `values` a minute apart from T0+60; as the engine records it when
    the consecutive-3 rule fires on 0.5, 0.91, 0.93, 0.95 (and the run then stops sampling)."""
    events = [
        ev("run.started", T0, runbook="pool-upgrade"),
        ev("section.started", CUTOVER, section="phase:cutover"),
        ev("decision", T0 + 30, "decision", mode="auto", verdict="go", criteria=[]),
        ev("monitor.started", T0 + 30, stage="window", duration=600, interval=60, probes=["health"],
           rules=[{"name": POOL, "probe": "health", "action": "rollback", "text": SAT}], cutover_at=CUTOVER),
    ]
    events += [sat(T0 + 60 * (i + 1), v) for i, v in enumerate(values)]
    if values == [0.5, 0.91, 0.93, 0.95]:
        events += [transition(T0 + 120, "ok", "pending", "probe 1/3: 0.91 >= 0.90"),
                   transition(T0 + 240, "pending", "firing", "probe 3/3: 0.95 >= 0.90"),
                   ev("monitor.action", T0 + 240, rule=POOL, action="rollback", reason="probe 3/3", outcome="done")]
    events.append(ev("monitor.finished", T0 + 240, stage="window", ok=outcome == "passed", outcome=outcome,
                     reason="", samples=len(values)))
    return events


def moves(transitions: list[dict[str, Any]]) -> list[tuple[float, str, str]]:
    return [(t["at"] - T0, t["from"], t["to"]) for t in transitions]


RECORDED = [0.5, 0.91, 0.93, 0.95]


def test_as_recorded_the_rule_fires_on_the_fourth_sample_and_agrees(tmp_path: Path) -> None:
    result = replay_run(runbook(tmp_path), pool_run(RECORDED))
    (rule,) = result.rules
    assert moves(rule.replayed) == [(120, "ok", "pending"), (240, "pending", "firing")]
    assert moves(rule.replayed) == moves(rule.recorded)
    assert rule.replayed[-1]["reason"] == "probe 3/3: 0.95 >= 0.90"
    assert (result.replayed.outcome, result.replayed.rule, result.replayed.at) == ("rollback", POOL, T0 + 240)
    assert result.replayed.text == "would roll back at 12:04:00 (T+4m00s): pool saturated: probe 3/3: 0.95 >= 0.90"
    assert result.recorded.text.startswith("rolled back at 12:04:00 (T+4m00s): pool saturated")
    assert not result.differs and not rule.changed
    assert result.samples == 4 and result.cutover_at == CUTOVER


def test_a_higher_threshold_does_not_fire_and_says_sampling_stopped(tmp_path: Path) -> None:
    sets = parse_sets([f"{POOL}.threshold=0.96"], [POOL])
    assert sets == {POOL: {"threshold": 0.96}}
    result = replay_run(runbook(tmp_path), pool_run(RECORDED), sets)
    (rule,) = result.rules
    assert rule.replayed == [] and rule.changed
    assert rule.replayed_rule == 'jsonpath "$.database_pool.state.saturation" >= 0.96 on 3 probes in a row'
    assert result.replayed.outcome == "undecided"
    assert result.replayed.text == ("no rule fires on the 4 recorded samples (the run stopped sampling at "
                                    "12:04:00 (T+4m00s) when it rolled back)")
    assert result.differs
    assert "would pass" not in result.summary()


def test_consecutive_two_fires_one_sample_earlier(tmp_path: Path) -> None:
    result = replay_run(runbook(tmp_path), pool_run(RECORDED), parse_sets([f"{POOL}.consecutive=2"], [POOL]))
    assert moves(result.rules[0].replayed) == [(120, "ok", "pending"), (180, "pending", "firing")]
    assert result.replayed.at == T0 + 180 and result.replayed.reason == "probe 2/2: 0.93 >= 0.90"
    assert result.differs  # same outcome, a minute earlier


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1m", [(120, "ok", "pending"), (180, "pending", "firing")]),  # 0.91 at 12:02, held 60s at 12:03
        ("2m", [(120, "ok", "pending"), (240, "pending", "firing")]),
        ("10m", [(120, "ok", "pending")]),
    ],
)
def test_for_switches_the_mode_and_parses_durations(tmp_path: Path, value: str,
                                                   expected: list[tuple[float, str, str]]) -> None:
    sets = parse_sets([f"{POOL}.for={value}"], [POOL])
    assert isinstance(sets[POOL]["for"], float)
    result = replay_run(runbook(tmp_path), pool_run(RECORDED), sets)
    assert moves(result.rules[0].replayed) == expected
    assert result.rules[0].replayed_rule.endswith(f" for {value}")


def test_a_window_that_ran_to_its_end_without_firing_would_pass(tmp_path: Path) -> None:
    result = replay_run(runbook(tmp_path), pool_run([0.5, 0.6, 0.91, 0.5], outcome="passed"))
    assert result.replayed.outcome == "passed"
    assert result.replayed.text == "no rule fires: the window would pass (4 samples)"
    assert result.rules[0].replayed_verdict.text == "it does not stop the window: the window would pass (4 samples)"
    assert not result.differs


RATIO_RUNBOOK = """
name: retries
phases:
  - name: cutover
    steps:
      - run: "true"
        undo: [{run: "true"}]
monitor:
  duration: 5m
  interval: 1m
  baseline: 2m
  probes:
    - name: metrics
      http: http://127.0.0.1:9/metrics
  rules:
    - name: retries.up
      ratio: {query: 'jsonpath "$.retries"', above: 2.0}
      action: pause
"""


def ratio_run() -> list[Ev]:
    """Baseline samples 10 and 10 before the cutover; the window sees 15, then 25."""
    def retries(at: float, value: int, stage: str) -> Ev:
        return sample(at, {"json": {"retries": value}}, probe="metrics", stage=stage)

    return [
        ev("run.started", T0),
        ev("monitor.started", T0 + 1, stage="baseline", duration=120, interval=60, probes=["metrics"], rules=[],
           cutover_at=None),
        retries(T0 + 2, 10, "baseline"), retries(T0 + 8, 10, "baseline"),
        ev("monitor.started", T0 + 30, stage="window", duration=300, interval=60, probes=["metrics"], rules=[],
           cutover_at=CUTOVER),
        retries(T0 + 60, 15, "window"), retries(T0 + 120, 25, "window"),
        ev("monitor.finished", T0 + 300, stage="window", ok=True, outcome="passed", reason="", samples=2),
    ]


def test_a_ratio_rule_takes_its_baseline_only_from_the_samples_before_the_cutover(tmp_path: Path) -> None:
    result = replay_run(runbook(tmp_path, RATIO_RUNBOOK), ratio_run())
    (rule,) = result.rules
    assert moves(rule.replayed) == [(120, "ok", "firing")]
    # the mean of the two baseline samples alone: 15 did not join it (that would make it 11.7)
    assert rule.replayed[0]["reason"] == "retries.up 25.0 vs baseline 10.0: ratio 2.50 > 2.0"
    assert rule.replayed[0]["stage"] == "window"
    assert result.replayed.outcome == "paused"
    assert result.replayed.text.startswith("would pause and ask the operator at 12:02:00 (T+2m00s): retries.up")
    # the rule name holds a dot: the longest known name followed by "." is the rule
    calmer = replay_run(runbook(tmp_path, RATIO_RUNBOOK), ratio_run(),
                        parse_sets(["retries.up.ratio.above=3"], ["retries.up"]))
    assert calmer.rules[0].replayed == []
    assert calmer.replayed.text == "no rule fires: the window would pass (4 samples)"


def test_a_missing_cutover_only_builds_the_baseline(tmp_path: Path) -> None:
    events = [e for e in ratio_run() if e.type != "monitor.started"]
    assert replay_run(runbook(tmp_path, RATIO_RUNBOOK), events).rules[0].replayed == []


def test_inconclusive_pauses_and_notify_rules_do_not_decide(tmp_path: Path) -> None:
    text = RUNBOOK.replace("      action: rollback\n", "      action: notify\n") + (
        "    - name: blind\n      when: status >= 500\n      for: 10m\n      on_no_data: hold\n"
        "      on_error: hold\n      max_no_data: 2\n      action: rollback\n")
    events = pool_run(RECORDED)
    events[-1:-1] = [sample(T0 + 300, None, error="connection refused"),
                     sample(T0 + 360, None, error="connection refused")]
    result = replay_run(runbook(tmp_path, text), events)
    pool, blind = result.rules
    assert pool.replayed_verdict.outcome == "undecided"
    assert "pool saturated would notify at 12:04:00" in pool.replayed_verdict.text
    assert moves(blind.replayed) == [(360, "ok", "inconclusive")]
    assert result.replayed.outcome == "paused" and result.replayed.rule == "blind"
    assert "blind is inconclusive: 2 samples in a row without data" in result.replayed.text


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("pool.threshold=0.9", "no rule named like that; the rules are: 'pool saturated', 'api', 'api.latency'"),
        (f"{POOL}.treshold=0.9", "rule 'pool saturated' has no field 'treshold'; fields: threshold, when, for"),
        (f"{POOL}.threshold", "is not RULE.FIELD=VALUE"),
        (f"{POOL}.threshold=", "has no value"),
        (f"{POOL}.for=soon", "'soon' is not a duration"),
    ],
)
def test_bad_sets_are_refused_with_the_choices(item: str, message: str) -> None:
    with pytest.raises(ReplayError, match=re.escape(message)):
        parse_sets([item], [POOL, "api", "api.latency"])


def test_longest_rule_name_wins_and_values_are_yaml_scalars() -> None:
    names = ["api", "api.latency"]
    assert parse_sets(["api.latency.threshold=500", "api.consecutive=3", "api.on_error=hold"], names) == {
        "api.latency": {"threshold": 500}, "api": {"consecutive": 3, "on_error": "hold"},
    }
    assert parse_sets(['api.when=status == 503'], names) == {"api": {"when": "status == 503"}}
    assert parse_sets(["api.error_rate.window=5m"], names) == {"api": {"error_rate.window": 300.0}}


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({POOL: {"consecutive": 0}}, "consecutive must be a whole number >= 1"),
        ({POOL: {"ratio.above": 2}}, "only applies to an ratio rule"),
        ({POOL: {"on_no_data": "pass"}}, "on_no_data must be one of breach, ignore, hold"),
        ({POOL: {"when": "saturation >>= 1"}}, "invalid condition"),
        ({POOL: {"for": 60.0, "consecutive": 2}}, "override one mode at a time"),
        ({"nope": {"threshold": 1}}, "no rule named 'nope'"),
    ],
)
def test_values_a_rule_cannot_take_are_usage_errors(tmp_path: Path, sets: dict[str, Any], message: str) -> None:
    with pytest.raises(ReplayError, match=re.escape(message)):
        replay_run(runbook(tmp_path), pool_run(RECORDED), sets)


def test_nothing_to_replay(tmp_path: Path) -> None:
    with pytest.raises(NothingToReplay, match="no monitor samples"):
        replay_run(runbook(tmp_path), [ev("run.started", T0), ev("run.finished", T0 + 5, status="blocked")])
    without = runbook(tmp_path, "name: plain\nphases:\n  - name: p\n    steps:\n      - file: {path: x}\n")
    with pytest.raises(NothingToReplay, match="no monitor rules"):
        replay_run(without, pool_run(RECORDED))


def test_to_dict_is_structured(tmp_path: Path) -> None:
    data = replay_run(runbook(tmp_path), pool_run(RECORDED), {POOL: {"threshold": 0.96}}).to_dict()
    assert data["differs"] is True
    assert data["recorded"]["outcome"] == "rollback" and data["recorded"]["monitor_outcome"] == "rollback"
    assert data["replayed"]["outcome"] == "undecided"
    assert data["rules"][0]["recorded"][1]["tplus"] == "T+4m00s"
    assert data["rules"][0]["overrides"] == {"threshold": 0.96}
    assert data["overrides"] == {POOL: {"threshold": 0.96}}
