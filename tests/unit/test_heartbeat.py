"""The heartbeat's interval (TMINUS_HEARTBEAT) and what its line says, from events."""

from __future__ import annotations

import pytest

from tminus import events as ev
from tminus.cli.display import HEARTBEAT_DEFAULT, RunStatus, heartbeat_interval
from tminus.events import Event


@pytest.mark.parametrize(("text", "seconds"), [("", HEARTBEAT_DEFAULT), ("  ", HEARTBEAT_DEFAULT), ("0", 0.0),
                                               ("1s", 1.0), ("2m", 120.0), ("1h30m", 5400.0)])
def test_the_interval(text: str, seconds: float) -> None:
    assert heartbeat_interval({"TMINUS_HEARTBEAT": text}) == seconds
    assert heartbeat_interval({}) == HEARTBEAT_DEFAULT


@pytest.mark.parametrize(("text", "why"), [("often", "is not a duration"), ("-1s", "is not a duration"),
                                           ("10ms", "at least 1s"), ("999ms", "at least 1s")])
def test_junk_is_refused_saying_what_was_expected(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as caught:
        heartbeat_interval({"TMINUS_HEARTBEAT": text})
    assert f"TMINUS_HEARTBEAT={text!r}" in str(caught.value)


def _event(type_: str, at: float, **data: object) -> Event:
    return Event(type_, "run", dict(data), monotonic=at)


def test_a_step_in_a_phase() -> None:
    status = RunStatus()
    status.update(_event(ev.SECTION_STARTED, 100.0, section="phase:deploy", budget=300.0))
    status.update(_event(ev.STEP_STARTED, 110.0, name="Deploy the release"))
    assert status.heartbeat(140.0) == ("… still running: phase:deploy (40.0s of 5m00s), "
                                       "step 'Deploy the release' for 30.0s")
    status.update(_event(ev.STEP_FINISHED, 141.0, name="Deploy the release"))
    assert "step" not in status.heartbeat(150.0)


def test_a_monitor_stage_counts_samples_and_time_left() -> None:
    status = RunStatus()
    status.update(_event(ev.MONITOR_STARTED, 0.0, stage="baseline", duration=600.0))
    for i in range(12):
        status.update(_event(ev.MONITOR_SAMPLE, float(i)))
    assert status.heartbeat(360.0) == "… still running: monitor baseline, 12 sample(s), 4m00s left"
    assert status.heartbeat(900.0).endswith(", 0ms left")  # never a negative time left
    status.update(_event(ev.MONITOR_STARTED, 1000.0, stage="window", duration=60.0))
    assert status.heartbeat(1010.0) == "… still running: monitor window, 0 sample(s), 50.0s left"


def test_before_anything_started() -> None:
    assert RunStatus().heartbeat(5.0) == "… still running: starting"
