"""The probing loop a guard and a `watch` step share (monitor/watching.py): scheduling, judging,
and the three ways it ends."""

from __future__ import annotations

import threading
import time

from tminus.monitor import Sample, State, Transition
from tminus.monitor.watching import ACTED, HALTED, PASSED, STOPPED, Armed, Clock, Watching, arm
from tminus.runbook.monitor import AlertRule


def rules(**kw: object) -> list[Armed]:
    return arm([AlertRule.model_validate({"name": "errors", "when": "status >= 500", **kw})], ["green"])


def probe(statuses: list[int]) -> tuple[dict, list[int]]:
    clock, served = Clock(), []

    def take() -> Sample:
        status = statuses[min(len(served), len(statuses) - 1)]
        served.append(status)
        return Sample(clock.at("green"), {"status": status})

    return {"green": take}, served


def test_quiet_for_the_duration_passes() -> None:
    probes, served = probe([200])
    moves: list[Transition] = []
    w = Watching(probes, rules(consecutive=2), 0.05, on_transition=lambda a, t: bool(moves.append(t)),
                 halt=threading.Event(), duration=0.3)
    began = time.monotonic()
    assert w.run() == PASSED
    assert time.monotonic() - began >= 0.3  # it watches the whole duration
    assert w.rounds == len(served) >= 1 and moves == []


def test_a_firing_rule_acts_and_ends_it_at_that_sample() -> None:
    probes, served = probe([200, 500, 500, 500])
    seen: list[tuple[str, State]] = []

    def on(armed: Armed, t: Transition) -> bool:
        seen.append((armed.spec.name, t.to_state))
        return t.to_state is State.FIRING

    w = Watching(probes, rules(consecutive=2), 0.01, on_transition=on, halt=threading.Event(), duration=60)
    assert w.run() == ACTED
    assert served == [200, 500, 500] and seen == [("errors", State.PENDING), ("errors", State.FIRING)]
    assert [s.values["status"] for s in w.recent("green", 2)] == [500, 500]


def test_halt_and_keep_going_end_it_without_waiting_the_duration() -> None:
    probes, _ = probe([200])
    halt = threading.Event()
    w = Watching(probes, rules(consecutive=2), 0.05, on_transition=lambda a, t: False, halt=halt, duration=600,
                 on_round=halt.set)
    began = time.monotonic()
    assert w.run() == HALTED and w.rounds == 1 and time.monotonic() - began < 30
    w = Watching(probes, rules(consecutive=2), 0.05, on_transition=lambda a, t: False, halt=threading.Event(),
                 keep_going=lambda: False)
    assert w.run() == STOPPED and w.rounds == 0


def test_sample_times_stay_in_order_per_probe() -> None:
    clock = Clock()
    times = [clock.at("a") for _ in range(1000)]
    assert times == sorted(times) and len(set(times)) == len(times)
