"""Monitor alert rules: exact firing points, policies for missing data, windows, baselines, replay.

Time is explicit: every sample carries its timestamp, nothing sleeps. T0 is 10:00:00 UTC so that
clock times in reasons are readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from tminus.monitor import Rule, Sample, State, Transition, replay
from tminus.runbook.monitor import AlertRule

T0 = 36_000.0  # 10:00:00 UTC
SAT = 'jsonpath "$.database_pool.state.saturation" >= 0.90'

OK, PENDING, FIRING, RESOLVED, INCONCLUSIVE = (
    State.OK,
    State.PENDING,
    State.FIRING,
    State.RESOLVED,
    State.INCONCLUSIVE,
)


def sat(at: float, value: Any) -> Sample:
    """A saturation probe at T0 + at; None = the field is missing (no data)."""
    pool: dict[str, Any] = {} if value is None else {"saturation": value}
    return Sample(T0 + at, {"json": {"database_pool": {"state": pool}}})


def failed(at: float, error: str = "connection refused") -> Sample:
    return Sample(T0 + at, None, error)


def counter(at: float, value: Any, key: str = "restarts") -> Sample:
    return Sample(T0 + at, {"json": {"watchdog": {key: value}}})


def status(at: float, code: int) -> Sample:
    return Sample(T0 + at, {"status": code})


def moves(transitions: Sequence[Transition]) -> list[tuple[float, State, State]]:
    return [(t.at - T0, t.from_state, t.to_state) for t in transitions]


def run(rule: Rule, samples: Sequence[Sample], cutover_at: float | None = None) -> list[tuple[float, State, State]]:
    return moves(rule.feed(samples, cutover_at=None if cutover_at is None else T0 + cutover_at))


def series(make: Any, points: Sequence[tuple[float, Any]]) -> list[Sample]:
    return [make(at, value) for at, value in points]


# --- for -----------------------------------------------------------------------------------------

FOR_CASES = [
    pytest.param(
        300,
        [(0, 0.93), (60, 0.95), (120, 0.91), (180, 0.92), (240, 0.99), (300, 0.93), (360, 0.97)],
        [(0, OK, PENDING), (300, PENDING, FIRING)],
        id="fires-at-exactly-5m-not-at-4m",
    ),
    pytest.param(
        300,
        [(0, 0.93), (100, 0.93), (250, 0.93), (299.9, 0.93), (310, 0.93)],
        [(0, OK, PENDING), (310, PENDING, FIRING)],
        id="irregular-samples-fire-at-first-sample-past-5m",
    ),
    pytest.param(0, [(0, 0.5), (60, 0.90)], [(60, OK, FIRING)], id="for-0-fires-on-first-breach"),
    pytest.param(
        300,
        [(0, 0.93), (60, 0.93), (120, 0.93), (180, 0.89), (240, 0.93), (480, 0.93), (540, 0.93)],
        [(0, OK, PENDING), (180, PENDING, OK), (240, OK, PENDING), (540, PENDING, FIRING)],
        id="one-good-sample-restarts-the-clock",
    ),
    pytest.param(
        120,
        [(0, 0.93), (120, 0.93), (180, 0.93), (240, 0.5), (300, 0.93)],
        [(0, OK, PENDING), (120, PENDING, FIRING), (240, FIRING, RESOLVED), (300, OK, PENDING)],
        id="firing-resolves-then-rests-at-ok",
    ),
]


@pytest.mark.parametrize(("for_", "points", "expected"), FOR_CASES)
def test_for_fires_at_exactly_the_sample_its_duration_says(
    for_: float, points: list[tuple[float, Any]], expected: list[tuple[float, State, State]]
) -> None:
    rule = Rule("pool", SAT, for_=for_)
    assert run(rule, series(sat, points)) == expected


def test_for_state_after_resolution_is_ok() -> None:
    rule = Rule("pool", SAT, for_=0)
    rule.feed([sat(0, 0.95), sat(60, 0.1)])
    assert rule.state is OK


def test_for_reason_quotes_duration_clock_rule_and_value() -> None:
    rule = Rule("pool", SAT, for_="5m")
    out = rule.feed(series(sat, [(120, 0.93), (240, 0.94), (420, 0.931)]))
    assert [t.reason for t in out] == [
        "breaching since 10:02:00, fires after 5m: 0.93 >= 0.90",
        "breaching for 5m00s (since 10:02:00) >= for 5m: 0.931 >= 0.90",
    ]
    assert out[-1].sample == sat(420, 0.931)  # the raw values travel with the transition
    assert out[-1].rule == "pool"


# --- consecutive ---------------------------------------------------------------------------------

CONSECUTIVE_CASES = [
    pytest.param(
        3, [0.93, 0.95, 0.91, 0.99], [(0, OK, PENDING), (120, PENDING, FIRING)], id="fires-on-the-3rd-not-the-2nd"
    ),
    pytest.param(
        3,
        [0.93, 0.95, 0.80, 0.93, 0.93, 0.93],
        [(0, OK, PENDING), (120, PENDING, OK), (180, OK, PENDING), (300, PENDING, FIRING)],
        id="one-good-sample-resets-the-count",
    ),
    pytest.param(1, [0.5, 0.9], [(60, OK, FIRING)], id="consecutive-1-fires-at-once"),
    pytest.param(2, [0.5, 0.89999], [], id="never-breaching-never-moves"),
]


@pytest.mark.parametrize(("n", "values", "expected"), CONSECUTIVE_CASES)
def test_consecutive_fires_on_the_nth_breach(
    n: int, values: list[float], expected: list[tuple[float, State, State]]
) -> None:
    rule = Rule("pool", SAT, consecutive=n)
    assert run(rule, [sat(i * 60, v) for i, v in enumerate(values)]) == expected


def test_consecutive_reasons_count_probes() -> None:
    rule = Rule("pool", SAT, consecutive=3)
    out = rule.feed([sat(0, 0.91), sat(60, 0.92), sat(120, 0.93), sat(180, 0.5)])
    assert [t.reason for t in out] == [
        "probe 1/3: 0.91 >= 0.90",
        "probe 3/3: 0.93 >= 0.90",
        "good sample: 0.5, not >= 0.90",
    ]


# --- no data and errors: breach / ignore / hold --------------------------------------------------

# consecutive=2 over: breach, <gap>, breach. The gap sample is no data or a failed probe.
POLICY_CASES = [
    ("no_data", "breach", [(0, OK, PENDING), (60, PENDING, FIRING)]),
    ("no_data", "ignore", [(0, OK, PENDING), (60, PENDING, OK), (120, OK, PENDING)]),
    ("no_data", "hold", [(0, OK, PENDING), (120, PENDING, FIRING)]),
    ("mismatch", "breach", [(0, OK, PENDING), (60, PENDING, FIRING)]),
    ("mismatch", "ignore", [(0, OK, PENDING), (60, PENDING, OK), (120, OK, PENDING)]),
    ("mismatch", "hold", [(0, OK, PENDING), (120, PENDING, FIRING)]),
    ("nan", "hold", [(0, OK, PENDING), (120, PENDING, FIRING)]),
    ("error", "breach", [(0, OK, PENDING), (60, PENDING, FIRING)]),
    ("error", "ignore", [(0, OK, PENDING), (60, PENDING, OK), (120, OK, PENDING)]),
    ("error", "hold", [(0, OK, PENDING), (120, PENDING, FIRING)]),
]
GAPS = {
    "no_data": sat(60, None),
    "mismatch": sat(60, "n/a"),  # a string cannot be compared with 0.90: unusable, not a pass
    "nan": sat(60, float("nan")),
    "error": failed(60),
}


@pytest.mark.parametrize(("gap", "policy", "expected"), POLICY_CASES)
def test_policies_change_the_outcome_as_documented(
    gap: str, policy: str, expected: list[tuple[float, State, State]]
) -> None:
    policies: dict[str, Any] = {"on_error" if gap == "error" else "on_no_data": policy}
    rule = Rule("pool", SAT, consecutive=2, **policies)
    assert run(rule, [sat(0, 0.95), GAPS[gap], sat(120, 0.95)]) == expected


def test_default_is_fail_closed_for_errors_and_no_data() -> None:
    assert run(Rule("pool", SAT, consecutive=1), [failed(0)]) == [(0, OK, FIRING)]
    assert run(Rule("pool", SAT, consecutive=1), [sat(0, None)]) == [(0, OK, FIRING)]


def test_ignoring_no_data_does_not_ignore_errors() -> None:
    rule = Rule("pool", SAT, consecutive=1, on_no_data="ignore")
    out = rule.feed([sat(0, None), failed(60, "timeout after 5s")])
    assert moves(out) == [(60, OK, FIRING)]
    assert out[0].reason == "probe 1/1: probe error: timeout after 5s (counted as a breach, on_error: breach)"


def test_no_data_reason_says_what_is_missing() -> None:
    out = Rule("pool", SAT, consecutive=1).feed([sat(0, None)])
    assert out[0].reason == (
        'probe 1/1: no data, jsonpath "$.database_pool.state.saturation" matched nothing'
        " (counted as a breach, on_no_data: breach)"
    )


# --- inconclusive --------------------------------------------------------------------------------


def test_inconclusive_after_max_no_data_holds_and_back_with_the_streak_kept() -> None:
    rule = Rule("pool", SAT, for_=300, on_no_data="hold", on_error="hold", max_no_data=3)
    samples = [sat(0, 0.95), sat(60, None), failed(120), sat(180, None), failed(240), sat(300, 0.95)]
    out = rule.feed(samples)
    assert moves(out) == [(0, OK, PENDING), (180, PENDING, INCONCLUSIVE), (300, INCONCLUSIVE, FIRING)]
    assert out[1].reason.startswith("3 samples in a row without data (max_no_data 3): no data")
    # hold kept the breach that began at 0, so 5m had passed when data came back
    assert out[2].reason.startswith("data is back: breaching for 5m00s (since 10:00:00)")


def test_inconclusive_needs_n_in_a_row() -> None:
    rule = Rule("pool", SAT, consecutive=3, on_no_data="hold", max_no_data=3)
    samples = [sat(0, None), sat(60, None), sat(120, 0.5), sat(180, None), sat(240, None), sat(300, None)]
    assert run(rule, samples) == [(300, OK, INCONCLUSIVE)]


def test_inconclusive_counts_ignored_samples_too() -> None:
    # ignore must not let a dead probe look healthy forever
    rule = Rule("pool", SAT, consecutive=1, on_error="ignore", max_no_data=2)
    assert run(rule, [failed(0), failed(60), sat(120, 0.5)]) == [(60, OK, INCONCLUSIVE), (120, INCONCLUSIVE, OK)]


def test_breach_policy_never_goes_inconclusive() -> None:
    rule = Rule("pool", SAT, consecutive=5, max_no_data=2)
    assert run(rule, [failed(0), failed(60), failed(120)]) == [(0, OK, PENDING)]


def test_firing_rule_stays_firing_when_data_goes_away() -> None:
    rule = Rule("pool", SAT, consecutive=1, on_no_data="hold", max_no_data=2)
    assert run(rule, [sat(0, 0.95), sat(60, None), sat(120, None), sat(180, None)]) == [(0, OK, FIRING)]
    assert rule.state is FIRING


# --- ratio against the pre-cutover baseline ------------------------------------------------------

RETRIES = 'jsonpath "$.retries"'


def retries(at: float, value: Any) -> Sample:
    return Sample(T0 + at, {"json": {} if value is None else {"retries": value}})


RATIO_CASES = [
    pytest.param(
        [(0, 10), (60, 10), (120, 10), (180, 10), (240, 10), (300, 19), (360, 25), (420, 12)],
        {"above": 2.0},
        [(360, OK, FIRING), (420, FIRING, RESOLVED)],
        id="fires-above-2x-the-baseline",
    ),
    pytest.param(
        [(0, 10), (60, 10), (120, 100), (180, 10), (240, 10), (300, 19), (360, 25), (420, 12)],
        {"above": 2.0},
        [],
        id="pre-cutover-spike-never-fires-and-raises-the-baseline",
    ),
    pytest.param(
        [(0, 100), (60, 100), (120, 10), (180, 10), (240, 10), (300, 25)],
        {"above": 2.0, "baseline_window": 200},
        [(300, OK, FIRING)],
        id="baseline-window-keeps-only-recent-pre-cutover-samples",
    ),
    pytest.param(
        [(0, 0), (60, 0), (300, 1)],
        {"above": 2.0},
        [(300, OK, FIRING)],
        id="baseline-0-any-rise-is-an-infinite-ratio",
    ),
    pytest.param(
        [(0, 0), (60, 0), (300, 1.5), (360, 2.5)],
        {"above": 2.0, "floor": 1.0},
        [(360, OK, FIRING)],
        id="floor-makes-a-zero-baseline-usable",
    ),
]


@pytest.mark.parametrize(("points", "ratio", "expected"), RATIO_CASES)
def test_ratio_uses_only_pre_cutover_samples(
    points: list[tuple[float, Any]], ratio: dict[str, Any], expected: list[tuple[float, State, State]]
) -> None:
    rule = Rule("retries", ratio={"query": RETRIES, **ratio})
    assert run(rule, series(retries, points), cutover_at=300) == expected


def test_ratio_reason_quotes_current_baseline_and_ratio() -> None:
    rule = Rule("retries", ratio={"query": RETRIES, "above": 2.0})
    out = rule.feed(series(retries, [(0, 8), (60, 12), (300, 42)]), cutover_at=T0 + 300)
    assert out[0].reason == "retries 42.0 vs baseline 10.0: ratio 4.20 > 2.0"
    floored = Rule("retries", ratio={"query": RETRIES, "above": 2.0, "floor": 1.0})
    out = floored.feed(series(retries, [(0, 0), (300, 3)]), cutover_at=T0 + 300)
    assert out[0].reason == "retries 3.0 vs baseline 0.0 (floor 1.0): ratio 3.00 > 2.0"


def test_ratio_without_cutover_only_learns() -> None:
    rule = Rule("retries", ratio={"query": RETRIES, "above": 2.0})
    assert run(rule, series(retries, [(0, 1), (60, 100), (120, None)])) == []


def test_ratio_failed_probes_before_cutover_are_not_judged() -> None:
    rule = Rule("retries", ratio={"query": RETRIES, "above": 2.0}, on_error="hold", max_no_data=1)
    assert run(rule, [failed(0), failed(60), retries(120, 10), retries(300, 11)], cutover_at=300) == []


def test_ratio_without_baseline_is_no_data() -> None:
    samples = series(retries, [(300, 5)])
    closed = Rule("retries", ratio={"query": RETRIES, "above": 2.0})
    out = closed.feed(samples, cutover_at=T0 + 300)
    assert moves(out) == [(300, OK, FIRING)]
    assert "no baseline" in out[0].reason
    held = Rule("retries", ratio={"query": RETRIES, "above": 2.0}, on_no_data="hold", max_no_data=1)
    assert run(held, samples, cutover_at=300) == [(300, OK, INCONCLUSIVE)]


def test_cutover_cannot_begin_before_seen_samples_or_twice() -> None:
    rule = Rule("retries", ratio={"query": RETRIES, "above": 2.0})
    rule.observe(retries(100, 1))
    with pytest.raises(ValueError, match="before the sample"):
        rule.begin_cutover(T0 + 50)
    rule.begin_cutover(T0 + 100)
    with pytest.raises(ValueError, match="already began"):
        rule.begin_cutover(T0 + 200)


# --- counter increase in a sliding window --------------------------------------------------------

RESTARTS = 'jsonpath "$.watchdog.restarts"'

INCREASE_CASES = [
    pytest.param(
        [(0, 5), (60, 5), (120, 6), (180, 7), (240, 7), (300, 8), (360, 8)],
        [(300, OK, FIRING)],
        id="third-restart-fires-not-the-second",
    ),
    pytest.param([(0, 57), (60, 57), (120, 58)], [], id="restarts-before-monitoring-are-not-churn"),
    pytest.param(
        [(0, 10), (60, 12), (120, 1), (180, 1)],
        [(120, OK, FIRING)],
        id="counter-reset-counts-the-new-value",
    ),
    pytest.param(
        [(0, 10), (60, 12), (120, 0), (180, 0)],
        [],
        id="reset-to-zero-adds-nothing-and-is-never-negative",
    ),
    pytest.param(
        [(0, 0), (60, 1), (120, 2), (180, 3), (600, 3), (660, 3), (720, 3)],
        [(180, OK, FIRING), (720, FIRING, RESOLVED)],
        id="window-slides-rise-at-60-counts-until-660-inclusive",
    ),
]


@pytest.mark.parametrize(("points", "expected"), INCREASE_CASES)
def test_increase_counts_rises_within_the_window(
    points: list[tuple[float, Any]], expected: list[tuple[float, State, State]]
) -> None:
    rule = Rule("churn", increase={"query": RESTARTS, "window": 600, "at_least": 3})
    assert run(rule, series(counter, points)) == expected


def test_increase_reasons_name_count_window_and_reset() -> None:
    rule = Rule("churn", increase={"query": RESTARTS, "window": "10m", "at_least": 3})
    out = rule.feed(series(counter, [(0, 5), (60, 6), (120, 8)]))
    assert out[0].reason == ('3 restarts in the last 10m (at least 3): jsonpath "$.watchdog.restarts" = 8')
    reset = Rule("churn", increase={"query": RESTARTS, "window": 600, "at_least": 3})
    out = reset.feed(series(counter, [(0, 5), (60, 6), (120, 2)]))
    assert out[0].reason.startswith("3 restarts in the last 10m, counter reset at 10:02:00 counted from 0")


def test_increase_missing_counter_follows_policy() -> None:
    samples = [counter(0, 1), counter(60, None), counter(120, 2)]
    assert run(Rule("churn", increase={"query": RESTARTS, "window": 600, "at_least": 3}), samples) == [
        (60, OK, FIRING),
        (120, FIRING, RESOLVED),
    ]
    held = Rule("churn", increase={"query": RESTARTS, "window": 600, "at_least": 2}, on_no_data="hold")
    assert run(held, [*samples, counter(180, 3)]) == [(180, OK, FIRING)]  # 1 -> 3 across the gap


def test_increase_query_must_not_have_a_predicate() -> None:
    with pytest.raises(ValueError, match="has a predicate"):
        Rule("churn", increase={"query": f"{RESTARTS} >= 3", "window": 600, "at_least": 3})


# --- error rate ----------------------------------------------------------------------------------


def probes(errors: set[int], n: int = 20, step: float = 30) -> list[Sample]:
    return [failed(i * step) if i in errors else status(i * step, 200) for i in range(n)]


ERROR_RATE_CASES = [
    pytest.param({"window": 600, "above": 0.05, "min_samples": 20}, probes({5, 12}), [(570, OK, FIRING)],
                 id="min-samples-guard-fires-at-the-20th-probe"),
    pytest.param({"window": 600, "above": 0.05}, probes({5, 12}), [(150, OK, FIRING)],
                 id="without-guard-fires-at-the-first-error"),
    pytest.param({"window": 600, "above": 0.10, "min_samples": 20}, probes({5, 12}), [],
                 id="exactly-10-percent-is-not-above-10"),
    pytest.param({"window": 300, "above": 0.05, "min_samples": 5}, probes({0, 1}, n=13),
                 [(120, OK, FIRING), (360, FIRING, RESOLVED)],
                 id="not-judged-before-5-probes-then-errors-slide-out"),
]  # fmt: skip


@pytest.mark.parametrize(("error_rate", "samples", "expected"), ERROR_RATE_CASES)
def test_error_rate_window(
    error_rate: dict[str, Any], samples: list[Sample], expected: list[tuple[float, State, State]]
) -> None:
    rule = Rule("errors", error_rate=error_rate)
    assert run(rule, samples) == expected


def test_error_rate_reason_and_condition_breaches() -> None:
    rule = Rule("5xx", "status >= 500", error_rate={"window": 600, "above": 0.05, "min_samples": 20})
    samples = [status(i * 30, 503 if i == 3 else 200) for i in range(19)] + [failed(570)]
    out = rule.feed(samples)
    assert moves(out) == [(570, OK, FIRING)]
    assert out[0].reason == (
        "error rate 2/20 = 10.0% > 5.0% in the last 10m: probe error: connection refused"
        " (counted as a breach, on_error: breach)"
    )


@pytest.mark.parametrize(
    ("on_error", "expected"),
    [("breach", [(570, OK, FIRING)]), ("ignore", []), ("hold", [])],
)
def test_error_rate_policies(on_error: str, expected: list[tuple[float, State, State]]) -> None:
    policy: dict[str, Any] = {"on_error": on_error}
    rule = Rule("errors", error_rate={"window": 600, "above": 0.05, "min_samples": 20}, **policy)
    assert run(rule, probes({5, 12})) == expected


def test_error_rate_hold_leaves_failed_probes_out_of_the_count() -> None:
    # held errors are not probes at all: the 19th counted probe (at 600) judges 0/19, not 2/21
    rule = Rule("errors", error_rate={"window": 600, "above": 0.0, "min_samples": 19}, on_error="hold")
    assert run(rule, [*probes({5, 12}), status(600, 200)]) == []


def test_an_answer_is_judged_by_when_and_on_error_only_covers_failures_to_observe() -> None:
    # the engine records a 500 as a sample with its status (item 15): on_error: ignore never hides it
    rule = Rule("5xx", "status >= 500", consecutive=1, on_error="ignore")
    assert run(rule, [status(0, 200), failed(60), status(120, 500)]) == [(120, OK, FIRING)]
    # without a `when`, error_rate counts failures to observe only: a 503 answer is a good probe
    rates = Rule("errors", error_rate={"window": 600, "above": 0.0, "min_samples": 1})
    assert run(rates, [status(0, 503), status(30, 503)]) == []
    assert run(rates, [failed(60)]) == [(60, OK, FIRING)]


# --- replay --------------------------------------------------------------------------------------

RECORDED = series(sat, [(0, 0.91), (60, 0.93), (120, 0.92), (180, 0.94), (240, 0.93), (300, 0.92), (360, 0.5)])


def test_replay_with_a_changed_threshold_changes_the_verdict() -> None:
    rule = Rule("pool", SAT, for_="5m")
    assert moves(rule.replay(RECORDED)) == [(0, OK, PENDING), (300, PENDING, FIRING), (360, FIRING, RESOLVED)]
    assert moves(rule.replay(RECORDED, threshold=0.95)) == []
    assert rule.state is OK  # replay never touches the live rule


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, [(0, OK, PENDING), (300, PENDING, FIRING), (360, FIRING, RESOLVED)]),
        ({"threshold": 0.93}, [(60, OK, PENDING), (120, PENDING, OK), (180, OK, PENDING), (300, PENDING, OK)]),
        ({"for": "6m"}, [(0, OK, PENDING), (360, PENDING, OK)]),
        ({"consecutive": 4}, [(0, OK, PENDING), (180, PENDING, FIRING), (360, FIRING, RESOLVED)]),
        ({"condition": 'jsonpath "$.database_pool.state.saturation" > 0.95'}, []),
    ],
)
def test_replay_function_with_overrides(overrides: dict[str, Any], expected: list[tuple[float, State, State]]) -> None:
    rule = Rule("pool", SAT, for_=300)
    assert moves(replay(rule, RECORDED, overrides)) == expected


def test_replay_reason_shows_the_new_threshold() -> None:
    out = Rule("pool", SAT, consecutive=1).replay(RECORDED, threshold=0.93)
    assert out[0].reason == "probe 1/1: 0.93 >= 0.93"


def test_replay_edits_one_field_of_a_window_mode() -> None:
    rule = Rule("churn", increase={"query": RESTARTS, "window": 600, "at_least": 3})
    samples = series(counter, [(0, 0), (60, 1), (120, 2)])
    assert moves(rule.replay(samples)) == []
    assert moves(rule.replay(samples, increase={"at_least": 2})) == [(120, OK, FIRING)]


def test_replay_ratio_with_cutover() -> None:
    rule = Rule("retries", ratio={"query": RETRIES, "above": 2.0})
    samples = series(retries, [(0, 10), (300, 25)])
    assert moves(rule.replay(samples, cutover_at=T0 + 300)) == [(300, OK, FIRING)]
    assert moves(rule.replay(samples, cutover_at=T0 + 300, ratio={"above": 3.0})) == []


def test_replay_rejects_unknown_or_impossible_overrides() -> None:
    rule = Rule("churn", increase={"query": RESTARTS, "window": 600, "at_least": 3})
    with pytest.raises(ValueError, match="no condition"):
        rule.replay([], threshold=5)
    with pytest.raises(ValueError, match="cannot override"):
        rule.replay([], treshold=5)


# --- construction and time order -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"condition": SAT}, "exactly one of"),
        ({"condition": SAT, "for_": 60, "consecutive": 3}, "exactly one of"),
        ({"for_": 60}, "need a condition"),
        ({"condition": SAT, "increase": {"query": RESTARTS, "window": 600, "at_least": 3}}, "drop the condition"),
        ({"condition": "saturation >>= 1", "for_": 60}, "invalid condition"),
        ({"condition": SAT, "consecutive": 0}, "consecutive must be"),
        ({"condition": SAT, "for_": -1}, "negative"),
        ({"error_rate": {"window": 60, "above": 5}}, "share between 0 and 1"),
        ({"condition": SAT, "for_": 60, "on_error": "pass"}, "on_error must be one of"),
    ],
)
def test_rule_construction_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Rule("r", **kwargs)


def test_samples_must_come_in_time_order() -> None:
    rule = Rule("pool", SAT, for_=60)
    rule.observe(sat(60, 0.5))
    rule.observe(sat(60, 0.5))  # same time is fine
    with pytest.raises(ValueError, match="time order"):
        rule.observe(sat(59, 0.5))


# --- spec ----------------------------------------------------------------------------------------


def test_alert_rule_spec_builds_the_rule() -> None:
    spec = AlertRule.model_validate(
        {"name": "pool", "when": SAT, "for": "5m", "on_no_data": "hold", "max_no_data": 3, "action": "pause"}
    )
    assert spec.for_ == 300.0
    assert spec.action == "pause"
    rule = spec.to_rule()
    assert rule.config.on_no_data == "hold"
    assert rule.config.on_error == "breach"  # fail closed unless told
    assert run(rule, series(sat, [(0, 0.95), (300, 0.95)])) == [(0, OK, PENDING), (300, PENDING, FIRING)]


def test_alert_rule_spec_window_modes() -> None:
    churn = AlertRule.model_validate(
        {"name": "churn", "increase": {"query": RESTARTS, "window": "10m", "at_least": 3}}
    ).to_rule()
    assert churn.config.mode.window == 600.0  # type: ignore[union-attr]
    rate = AlertRule.model_validate({"name": "e", "error_rate": {"window": "5m", "above": 0.05, "min_samples": 10}})
    assert rate.action == "rollback"
    ratio = AlertRule.model_validate({"name": "r", "ratio": {"query": RETRIES, "above": 2, "baseline_window": "15m"}})
    assert ratio.to_rule().config.mode.baseline_window == 900.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "when": SAT}, "exactly one of"),
        ({"name": "x", "when": SAT, "for": "5m", "consecutive": 3}, "exactly one of"),
        ({"name": "x", "for": "5m"}, "need a condition"),
        ({"name": "x", "when": "saturation >>= 1", "for": "5m"}, "invalid condition"),
        ({"name": "x", "when": SAT, "for": "5 minutes"}, "not a duration"),
        ({"name": "x", "when": SAT, "for": "5m", "on_error": "pass"}, "on_error"),
        ({"name": "x", "when": SAT, "for": "5m", "action": "reboot"}, "action"),
        ({"name": "x", "when": SAT, "for": "5m", "severity": "high"}, "severity"),
        ({"name": "x", "increase": {"query": f"{RESTARTS} > 1", "window": 60, "at_least": 1}}, "has a predicate"),
        ({"name": "x", "increase": {"query": RESTARTS, "window": 0, "at_least": 1}}, "longer than 0"),
        ({"name": "x", "error_rate": {"window": 60, "above": 1.5}}, "above"),
    ],
)
def test_alert_rule_spec_rejects(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AlertRule.model_validate(data)


def test_samples_before_the_cutover_reach_only_a_rule_with_a_baseline() -> None:
    # The engine probes before the first phase for ratio baselines; a `consecutive` rule must not
    # judge the old version: it starts counting with the first sample after the cutover.
    saturated = series(sat, [(0, 0.95), (60, 0.95), (120, 0.95), (300, 0.95), (360, 0.95)])
    rule = Rule("pool", SAT, consecutive=3)
    assert run(rule, saturated, cutover_at=200) == [(300, OK, PENDING)]
    assert Rule("pool", SAT, consecutive=3).uses_baseline is False
    assert Rule("r", ratio={"query": 'jsonpath "$.x"', "above": 2}).uses_baseline is True
