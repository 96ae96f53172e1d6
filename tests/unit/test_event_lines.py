"""One formatter of event lines: the live display and `tminus show` print the same text after their stamps."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import tminus, write_runbook

from tminus import events as ev
from tminus.cli.display import PlainDisplay
from tminus.cli.lines import CONTINUATION, format_event, live_stamp, show_stamp
from tminus.events import Event
from tminus.ledger.records import EventRecord

# A realistic payload for every event type; a new type in tminus.events.TYPES must get one here.
SAMPLES: dict[str, tuple[str | None, dict[str, Any]]] = {
    ev.RUN_STARTED: (None, {"runbook": "cutover", "environment": "prod", "operator": "alice", "host": "h1"}),
    ev.RUN_RESUMED: (None, {"runbook": "cutover", "environment": "prod", "operator": "bob", "host": "h2",
                            "reason": "after the crash"}),
    ev.SECTION_STARTED: (None, {"section": "phase:deploy", "budget": 60, "planned_start": 30}),
    ev.SECTION_FINISHED: (None, {"section": "phase:deploy", "ok": True, "actual": 12.5, "budget": 60}),
    ev.STEP_STARTED: ("phases[0].steps[0]", {"name": "switch", "section": "phase:deploy"}),
    ev.STEP_ATTEMPT: ("phases[0].steps[0]", {"attempt": 1, "message": "refused\nsecond line"}),
    ev.STEP_FINISHED: ("phases[0].steps[0]", {"name": "switch", "status": "ok", "duration_ms": 40, "attempts": 2}),
    ev.STEP_SKIPPED: ("phases[0].steps[1]", {"name": "warm", "message": "when: false"}),
    ev.STEP_EFFECT: ("phases[0].steps[0]", {"effect": "process", "pgid": 4242, "started": 1.5}),
    ev.APPROVAL_REQUESTED: ("decision", {"prompt": "go?", "approve_with": "tminus approve r1 --step decision"}),
    ev.APPROVAL_GIVEN: ("decision", {"approved": True, "by": "bob", "how": "approve-command", "reason": "ok"}),
    ev.DECISION: ("decision", {"mode": "manual", "verdict": "go", "by": "bob"}),
    ev.ROLLBACK_STARTED: (None, {"reason": "verify failed:\nhealth: 500"}),
    ev.ROLLBACK_FINISHED: (None, {"ok": False, "state": "undone: switch\nnot undone: warm"}),
    ev.MONITOR_STARTED: (None, {"stage": "window", "duration": 600, "interval": 15, "probes": ["h"], "rules": []}),
    ev.MONITOR_SAMPLE: (None, {"probe": "h", "stage": "window", "values": {"status": 200}, "duration_ms": 3.0}),
    ev.MONITOR_TRANSITION: (None, {"rule": "r", "from": "ok", "to": "firing", "reason": "3/3"}),
    ev.MONITOR_ACTION: (None, {"rule": "r", "action": "notify", "outcome": "notified"}),
    ev.MONITOR_FINISHED: (None, {"stage": "window", "ok": True, "samples": 40}),
    ev.GUARD_STARTED: (None, {"section": "phase:Restart", "phase": "Restart", "interval": 1.0, "probes": ["bind"],
                              "rules": [{"name": "bind stable"}], "resumed": False}),
    ev.GUARD_SAMPLE: ("phases[0].guard.probes[0]", {"probe": "bind", "values": {"open": True}, "duration_ms": 1.0}),
    ev.GUARD_TRANSITION: (None, {"rule": "bind stable", "from": "pending", "to": "firing", "reason": "probe 2/2",
                                 "outcome": "rollback"}),
    ev.GUARD_FINISHED: (None, {"phase": "Restart", "outcome": "fired", "samples": 5,
                               "reason": "it asked for rollback"}),
    ev.WATCH_SAMPLE: ("phases[0].steps[1]", {"probe": "green", "values": {"status": 200}, "duration_ms": 1.0}),
    ev.WATCH_TRANSITION: ("phases[0].steps[1]", {"rule": "green errors", "from": "pending", "to": "firing",
                                                 "reason": "probe 2/2", "outcome": "failed"}),
    ev.REHEARSAL_STARTED: (None, {"runbook": "db", "environment": "staging", "cycles": [{"index": 0}]}),
    ev.REHEARSAL_CYCLE: (None, {"index": 0, "at": "migrate", "status": "rolled_back", "ok": True, "rto_s": 1.5,
                                "fingerprints": {"equal": True}}),
    ev.NOTIFY_SENT: (None, {"channel": "ops", "attempts": [{"status": 200}]}),
    ev.NOTIFY_FAILED: (None, {"channel": "ops", "error": "HTTP 404"}),
    ev.RUN_FINISHED: (None, {"status": "completed", "exit_code": 0}),
    ev.NOTE: ("environment", {"action": "manifest", "message": "FLAG is set"}),
    ev.STOP_REQUESTED: (None, {"kind": "rollback", "reason": "kill switch"}),
    ev.POLICY_APPLIED: ("phases[0].steps[0]", {"hook": "before_step", "action": "fault"}),
    ev.DEADLINE_EXCEEDED: (None, {"deadline": "phase:deploy", "after": 1800, "elapsed": 1801.5, "action": "pause",
                                  "message": "deadline exceeded: phase 'deploy' has taken 30m01s"}),
    ev.DEADLINE_ANSWERED: (None, {"deadline": "phase:deploy", "outcome": "continue", "by": "bob", "how": "tty"}),
}
# Silent unless asked for: step starts (live -v), samples and effects (-v, or show's evidence).
QUIET = {ev.STEP_STARTED, ev.MONITOR_SAMPLE, ev.GUARD_SAMPLE, ev.WATCH_SAMPLE, ev.STEP_EFFECT}
MODES = [{}, {"verbose": True}, {"evidence": True}, {"verbose": True, "evidence": True}]
AT = "2026-11-23T10:00:05.250+00:00"


def live(type_: str, data: dict[str, Any] | None, step_key: str | None = None) -> Event:
    return Event(type_, "r1", data if data is not None else {}, step_key, at=AT)


def record(type_: str, data: Any, step_key: str | None = None) -> EventRecord:
    return EventRecord(run_id="r1", seq=1, type=type_, step_key=step_key, at=AT, data=data, prev_hash="", hash="")


def test_every_event_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(ev.TYPES)


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("type_", sorted(ev.TYPES))
def test_every_type_formats_empty_or_missing_data_without_raising(type_: str, mode: dict[str, bool]) -> None:
    for e in (live(type_, {}), record(type_, {}), record(type_, None)):
        line = format_event(e, "S", **mode)
        assert line is None or line.startswith("S "), line


@pytest.mark.parametrize("type_", sorted(ev.TYPES))
def test_every_type_has_a_line_and_quiet_ones_only_when_asked(type_: str) -> None:
    key, data = SAMPLES[type_]
    quiet = format_event(live(type_, data, key), "S")
    assert (quiet is None) == (type_ in QUIET), quiet
    for mode in MODES[1:]:
        line = format_event(live(type_, data, key), "S", **mode)
        if type_ != ev.STEP_STARTED or mode.get("verbose"):
            assert line and line.startswith("S ") and "None" not in line, (mode, line)


@pytest.mark.parametrize("type_", sorted(ev.TYPES))
def test_live_and_show_differ_only_in_the_stamp(type_: str) -> None:
    key, data = SAMPLES[type_]
    for mode in MODES:
        a = format_event(live(type_, data, key), live_stamp(AT, 5.25), **mode)
        b = format_event(record(type_, data, key), show_stamp(5.25), **mode)
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert a.startswith(live_stamp(AT, 5.25) + " ") and b.startswith(show_stamp(5.25) + " ")
            assert a[len(live_stamp(AT, 5.25)):] == b[len(show_stamp(5.25)):]


def test_a_failed_step_shows_its_message_in_both() -> None:
    data = {"name": "migrate", "status": "failed", "duration_ms": 1200, "message": "exit 1\nno such table: t",
            "verdicts": [{"passed": False, "message": "exit_code == 0: got 1"}], "evidence": {"stderr": "boom"}}
    for e, stamp in ((live(ev.STEP_FINISHED, data, "phases[0].steps[0]"), live_stamp(AT, 1)),
                     (record(ev.STEP_FINISHED, data, "phases[0].steps[0]"), show_stamp(1))):
        for mode in MODES:
            line = format_event(e, stamp, **mode)
            assert line is not None
            head, *more = line.splitlines()
            assert "✗ migrate [phases[0].steps[0]] (1.2s)" in head
            assert more[:2] == [CONTINUATION + "exit 1", CONTINUATION + "no such table: t"]


def test_evidence_and_verdicts_only_with_evidence() -> None:
    data = {"name": "health", "status": "ok", "duration_ms": 5,
            "verdicts": [{"passed": True, "message": "status == 200: ok"}, {"passed": None, "message": "no data"}],
            "evidence": {"body": "x" * 170, "status": 200, "empty": "  "}}
    plain = format_event(live(ev.STEP_FINISHED, data, "verify[0]"), "S", verbose=True)
    assert plain == "S   ✓ health [verify[0]] (5ms)"
    shown = format_event(record(ev.STEP_FINISHED, data, "verify[0]"), "S", evidence=True)
    assert shown is not None
    assert shown.splitlines()[1:] == [CONTINUATION + "✓ status == 200: ok", CONTINUATION + "∅ no data",
                                      CONTINUATION + "body:", CONTINUATION + "  " + "x" * 170,
                                      CONTINUATION + "status: 200"]


def test_the_live_display_stamps_wall_clock_and_t_plus_from_the_first_event() -> None:
    out = io.StringIO()
    display = PlainDisplay(stream=out)
    first = Event(ev.SECTION_STARTED, "r1", {"section": "gates"}, at="2026-11-23T10:00:00.000+00:00", monotonic=100.0)
    later = Event(ev.RUN_FINISHED, "r1", {"status": "completed", "exit_code": 0},
                  at="2026-11-23T10:01:05.500+00:00", monotonic=165.5)
    display(first)
    display(Event(ev.STEP_STARTED, "r1", {"name": "quiet"}, monotonic=101.0))  # no line without -v
    display(later)
    assert out.getvalue().splitlines() == ["10:00:00.000 T+0:00:00 ▶ gates",
                                           "10:01:05.500 T+0:01:05 run r1 completed (exit 0)"]


LIVE_STAMP = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} +T\+\d+:\d\d:\d\d(?= )")
SHOW_STAMP = re.compile(r"^ *T\+\d+:\d\d \+ *\d+\.\d\ds(?= )")


def _bodies(text: str, stamp: re.Pattern[str]) -> list[str]:
    """Every event line without its stamp, with its continuation lines; other output left out."""
    out, inside = [], False
    for line in text.splitlines():
        if stamp.match(line):
            out.append(stamp.sub("", line))
            inside = True
        elif inside and line.startswith(CONTINUATION):
            out.append(line)
        else:
            inside = False
    return out


def test_a_real_run_prints_the_same_lines_live_and_in_show(tmp_path: Path) -> None:
    write_runbook(tmp_path, """
        name: lines
        gates:
          - name: ready
            checks:
              - name: shell works
                run: "true"
        phases:
          - name: one
            budget: 1m
            steps:
              - name: change
                run: "echo changed"
                undo:
                  - name: change back
                    run: "echo back"
              - name: break
                run: "echo disk almost full >&2; exit 3"
                undo:
                  - run: "true"
        verify:
          - name: fine
            run: "true"
        """)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    ran = tminus("run", "runbook.yaml", "--ledger", ledger, "--no-input", cwd=tmp_path)
    assert ran.returncode == 11, ran.stderr
    run_id = re.search(r"details: tminus show (\S+)", ran.stderr)
    assert run_id is not None
    shown = tminus("show", run_id.group(1), "--no-evidence", "--ledger", ledger, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    live_lines, show_lines = _bodies(ran.stderr, LIVE_STAMP), _bodies(shown.stdout, SHOW_STAMP)
    assert live_lines == show_lines
    text = "\n".join(show_lines)
    assert " ▶ phase:one (budget 1m00s, planned start T+0:00)" in text
    assert "   ✗ break [phases[0].steps[1]] (" in text and CONTINUATION + "stderr: disk almost full" in text, text
    assert "↺ rollback started: step 'break' in phase 'one' failed:" in text
