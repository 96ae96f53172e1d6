"""The monitor's live table and its plain lines (through the one event-line formatter), from events as
the engine emits them."""

from __future__ import annotations

from rich.console import Console

from tminus import events as ev
from tminus.cli.lines import format_event
from tminus.cli.monitor_view import MonitorBoard
from tminus.events import Event


def event(type_: str, **data: object) -> Event:
    return Event(type_, "r1", dict(data))


STARTED = event(ev.MONITOR_STARTED, stage="window", duration=600, interval=15, probes=["health"],
                rules=[{"name": "pool saturated", "probe": "health", "action": "rollback",
                        "text": 'jsonpath "$.saturation" >= 0.90 for 3 consecutive probes'}])
SAMPLE = event(ev.MONITOR_SAMPLE, probe="health", stage="window", at=1.0, values={"status": 200},
               error=None, duration_ms=4.2)
FIRING = event(ev.MONITOR_TRANSITION, rule="pool saturated", probe="health", action="rollback",
               reason="probe 3/3: 0.95 >= 0.90", at=3.0, sample=None, recent=[], **{"from": "pending", "to": "firing"})


def test_the_board_follows_probes_and_rule_states() -> None:
    board = MonitorBoard()
    for e in (STARTED, SAMPLE, FIRING):
        board.update(e)
    assert board.active and board.stage == "window"
    assert board.probes["health"][0] == "status=200 4ms"
    assert board.rules["pool saturated"] == ("firing", "probe 3/3: 0.95 >= 0.90")
    console = Console(record=True, width=120)
    console.print(board.table())
    text = console.export_text()
    assert "health" in text and "firing" in text and "probe 3/3: 0.95 >= 0.90" in text
    board.update(event(ev.MONITOR_TRANSITION, rule="pool saturated", reason="0.5, not >= 0.90",
                       **{"from": "firing", "to": "resolved"}))
    assert board.rules["pool saturated"][0] == "ok"  # resolved rests at ok
    board.update(event(ev.MONITOR_FINISHED, stage="window", ok=True, outcome="passed", samples=40))
    assert not board.active


def test_plain_lines_show_transitions_always_and_samples_only_when_verbose() -> None:
    assert format_event(SAMPLE, "12:00", evidence=True) == "12:00   · health (window): status=200 4ms"  # show
    assert format_event(SAMPLE, "12:00", verbose=False) is None
    assert format_event(SAMPLE, "12:00", verbose=True) == "12:00   · health (window): status=200 4ms"
    assert format_event(FIRING, "12:00") == (
        "12:00   ◎ pool saturated: pending → firing: probe 3/3: 0.95 >= 0.90")
    failed = event(ev.NOTIFY_FAILED, channel="ops", error="HTTP 404 from https://hooks.example/***")
    assert format_event(failed, "12:00") == (
        "12:00   ✗ notify ops failed: HTTP 404 from https://hooks.example/***")
