"""The guards fold: a phase's guard per process, its samples and transitions, its end; events of a
guard whose start was not recorded still land on a guard of their own."""

from __future__ import annotations

from typing import Any

from tminus import events as ev
from tminus.projection import project


def event(seq: int, type_: str, data: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    return {"seq": seq, "type": type_, "step_key": key, "at": f"2026-12-03T07:00:{seq:02d}+00:00",
            "data": {"v": 1, **data}}


WHERE = {"section": "phase:Restart", "phase": "Restart"}


def test_a_guard_with_its_samples_a_firing_and_its_end() -> None:
    view = project([
        event(1, ev.GUARD_STARTED, {**WHERE, "interval": 0.1, "settle": None, "probes": ["bind"],
                                    "rules": [{"name": "bind stable", "probe": "bind", "action": "rollback"}],
                                    "resumed": False}),
        event(2, ev.GUARD_SAMPLE, {**WHERE, "probe": "bind", "at": 10.0, "values": {"open": True}},
              "phases[0].guard.probes[0]"),
        event(3, ev.GUARD_SAMPLE, {**WHERE, "probe": "bind", "at": 10.1, "values": {"open": False}},
              "phases[0].guard.probes[0]"),
        event(4, ev.GUARD_TRANSITION, {**WHERE, "rule": "bind stable", "from": "pending", "to": "firing",
                                       "at": 10.1, "reason": "probe 2/2", "outcome": "rollback",
                                       "recent": [{"at": 10.0, "read": "false"}]}),
        event(5, ev.GUARD_FINISHED, {**WHERE, "outcome": "fired", "ok": False, "samples": 2,
                                     "fired": ["bind stable"]}),
    ])
    [guard] = view.guards
    assert (guard.section, guard.phase, guard.interval, guard.probes) == ("phase:Restart", "Restart", 0.1, ["bind"])
    assert [s.values for s in guard.samples] == [{"open": True}, {"open": False}]
    assert guard.samples[0].key == "phases[0].guard.probes[0]" and guard.samples[0].stage == "guard"
    [firing] = guard.firings
    assert firing.rule == "bind stable" and firing.at == 10.1 and firing.timed and firing.recent[0]["read"] == "false"
    assert guard.end is not None and guard.end.outcome == "fired" and guard.end.samples == 2
    assert view.monitor.samples == []  # the monitor window's readers (replay, resume) never see them


def test_a_resumed_guard_is_a_second_watch_and_an_unannounced_one_still_lands() -> None:
    view = project([
        event(1, ev.GUARD_STARTED, {**WHERE, "interval": 1, "resumed": False}),
        event(2, ev.GUARD_SAMPLE, {**WHERE, "probe": "bind", "at": 1.0, "values": {}}),
        # killed here: no guard.finished; the resumed process starts it again
        event(3, ev.GUARD_STARTED, {**WHERE, "interval": 1, "resumed": True}),
        event(4, ev.GUARD_SAMPLE, {**WHERE, "probe": "bind", "at": 9.0, "values": {}}),
        event(5, ev.GUARD_FINISHED, {**WHERE, "outcome": "passed", "ok": True, "samples": 1}),
        event(6, ev.GUARD_SAMPLE, {"section": "phase:Other", "probe": "p", "at": 12.0, "error": "refused"}),
    ])
    first, second, orphan = view.guards
    assert [s.at for s in first.samples] == [1.0] and first.end is None and not first.resumed
    assert second.resumed and [s.at for s in second.samples] == [9.0] and second.end is not None
    assert not orphan.announced and orphan.section == "phase:Other" and orphan.samples[0].error == "refused"


def test_malformed_guard_payloads_are_read_best_effort() -> None:
    view = project([
        event(1, ev.GUARD_STARTED, {"section": 3, "probes": None, "rules": ["x", {"name": "r"}]}),
        event(2, ev.GUARD_SAMPLE, {"probe": "p"}),
        event(3, ev.GUARD_FINISHED, {"samples": "many"}),
    ])
    [guard] = view.guards
    assert guard.section is None and guard.rules == [{"name": "r"}] and guard.end is not None
    assert guard.end.samples is None and len(guard.samples) == 1
