"""The stop channel's rules (first request wins, what a stop means during the rollback) and the
lifecycle model (section ids, plugging a new section in at a defined point)."""

from __future__ import annotations

import threading
import time

import pytest

from tminus.engine.lifecycle import Lifecycle, Section, parse_section, section_id
from tminus.engine.policy import CONTINUE, Decision, Policies, Policy, stop
from tminus.engine.stop import StopChannel, StopRequest


def recorded(channel: StopChannel) -> list[tuple[str, bool, str]]:
    out: list[tuple[str, bool, str]] = []
    channel.attach(lambda r, accepted, note: out.append((r.mode, accepted, note)))
    return out


def test_the_first_request_wins_and_every_request_is_recorded() -> None:
    channel = StopChannel()
    assert channel.request("rollback", "guard", "g") is True  # before attach: recorded on attach
    log = recorded(channel)
    assert channel.request("abort", "later", "h") is False
    assert channel.is_set() and channel.pending is not None and channel.pending.mode == "rollback"
    assert log[0] == ("rollback", True, "")
    assert log[1][:2] == ("abort", False) and "already requested" in log[1][2]


def test_it_behaves_as_a_threading_event_for_the_kinds() -> None:
    channel = StopChannel()
    assert isinstance(channel, threading.Event) and not channel.is_set()
    assert channel.wait(0.01) is False
    threading.Timer(0.05, lambda: channel.request("abort", "now", "t")).start()
    started = time.monotonic()
    assert channel.wait(5) is True and time.monotonic() - started < 2
    plain = StopChannel()
    plain.set()  # what `cancel.set()` did: an interrupt
    assert plain.pending is not None and plain.pending.mode == "interrupt"


def test_the_rollback_consumes_its_trigger_and_accepts_only_interrupt_or_abort() -> None:
    channel = StopChannel()
    log = recorded(channel)
    channel.request("kill_switch", "pressed", "ops")
    channel.enter_rollback()
    assert not channel.is_set() and channel.pending is None  # the undo steps must run
    assert channel.request("rollback", "again", "ops") is False
    assert channel.request("kill_switch", "again", "ops") is False
    assert channel.request("interrupt", "ctrl-c", "signal SIGINT") is True
    assert channel.request("abort", "too late", "ops") is False
    assert [m for m, ok, _ in log if ok] == ["kill_switch", "interrupt"]
    assert log[1][2] == "the run is already rolling back"


def test_an_interrupt_pending_when_the_rollback_begins_still_stops_it() -> None:
    channel = StopChannel()
    channel.request("interrupt", "ctrl-c", "signal SIGINT")
    channel.enter_rollback()
    assert channel.is_set() and channel.pending is not None and channel.pending.mode == "interrupt"


def test_a_closed_channel_drops_requests_and_unknown_modes_are_refused() -> None:
    channel = StopChannel()
    log = recorded(channel)
    channel.close()
    assert channel.request("abort", "after the end", "x") is False and log == [] and not channel.is_set()
    with pytest.raises(ValueError):
        channel.request("pause", "no such mode", "x")
    with pytest.raises(ValueError):
        Decision("pause")


def test_a_request_describes_itself() -> None:
    assert StopRequest("kill_switch", "error budget", "ops").describe() == "kill switch by ops: error budget"
    assert StopRequest("rollback", "", "guard").describe() == "rollback requested by guard"


def test_section_ids_round_trip() -> None:
    assert section_id("phase", "deploy") == "phase:deploy" and parse_section("phase:deploy") == ("phase", "deploy")
    assert section_id("verify") == "verify" and parse_section("verify-after-rollback") == ("verify-after-rollback", "")
    assert Section.parse("undo:db").describe() == {"section": "undo:db", "kind": "undo", "name": "db"}


def test_a_new_section_plugs_in_at_a_defined_point() -> None:
    life = Lifecycle([Section("gates"), Section("phase", "a"), Section("phase", "b"), Section("decision"),
                      Section("monitor")])
    life.plug(Section("after-go", "warm caches"), after="decision")
    life.plug(Section("finalize", "cleanup"), after="monitor")
    life.plug(Section("guard", "deadline"), before="phase")
    assert [s.id for s in life] == ["gates", "guard:deadline", "phase:a", "phase:b", "decision",
                                    "after-go:warm caches", "monitor", "finalize:cleanup"]
    with pytest.raises(KeyError):
        life.plug(Section("finalize", "x"), after="nowhere")
    with pytest.raises(ValueError):
        life.plug(Section("finalize", "x"))


def test_composed_policies_let_the_first_that_stops_decide() -> None:
    class Quiet(Policy):
        name = "quiet"

    class Loud(Policy):
        name = "loud"

        def before_section(self, section: Section) -> Decision:
            return stop("abort", "no") if section.kind == "phase" else CONTINUE

    both = Policies([Quiet(), Loud()])
    assert both.before_section(Section("gates")) is CONTINUE
    decided = both.before_section(Section("phase", "a"))
    assert (decided.stop, decided.reason, decided.policy) == ("abort", "no", "loud")
