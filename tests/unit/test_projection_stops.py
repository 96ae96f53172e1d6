"""Stops and policies in the projection: every `run.stop` is a typed Stop (who asked, the mode, the
reason, accepted or not), every `policy.applied` a PolicyUse, and a stop is linked to the section
and the execution it ended, whichever of its events lands first. `others` keeps unknown types only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tminus import events as ev
from tminus.events import Event
from tminus.projection import INTERRUPTED, RunView, Section, project

V1 = Path(__file__).resolve().parents[1] / "fixtures" / "ledgers" / "v1"


def recorded(name: str) -> list[dict[str, Any]]:
    return list(json.loads((V1 / f"{name}.json").read_text())["events"])


def e(type_: str, key: str | None = None, **data: Any) -> Event:
    return Event(type_, "run-1", data, key)


def phase(name: str) -> dict[str, Any]:
    return {"section": f"phase:{name}", "kind": "phase", "name": name}


def started(key: str, section: str = "phase:two") -> Event:
    return e(ev.STEP_STARTED, key, name=key, kind="run", section=section)


def stopped_step(key: str, mode: str, section: str = "phase:two") -> Event:
    return e(ev.STEP_FINISHED, key, name=key, kind="run", section=section, status="failed",
             message=f"stopped: {mode} requested by guard", evidence={"stopped": mode, "exit_code": -9})


def stop(mode: str, by: str, *, accepted: bool = True, note: str | None = None) -> Event:
    extra = {"note": note} if note else {}
    return e(ev.STOP_REQUESTED, mode=mode, reason=f"{mode} now", by=by, requested_at="2026-11-23T12:00:05+00:00",
             accepted=accepted, **extra)


def test_a_sigint_recorded_by_the_engine_is_a_stop_on_the_section_and_the_step_it_cut_short() -> None:
    view = project(recorded("interrupted-sigint"))
    (s,) = view.stops
    assert (s.mode, s.by, s.accepted, s.source) == ("interrupt", "signal SIGINT", True, "signal")
    assert s.reason == "interrupted by a signal; `tminus resume` continues" and s.requested_at is not None
    assert (s.section, s.step, s.policy) == ("phase:migrate", "phases[1].steps[0]", None)
    migrate = view.section("phase:migrate")
    assert migrate is not None and (migrate.stopped, migrate.stop) == ("interrupt", s)
    (cut,) = [x for x in view.executions if x.key == "phases[1].steps[0]"]
    assert (cut.status, cut.stopped, cut.stop) == (INTERRUPTED, "interrupt", s)
    assert view.stopped_by(s) == [migrate, cut]
    assert view.accepted_stops() == [s] and not view.policies and not view.others


def test_a_crash_is_not_a_stop_even_when_the_run_resumes() -> None:
    view = project(recorded("resumed-retry"))  # kill -9, then resumed: attempt 1 was cut short by nobody
    first = view.executions_of("phases[1].steps[0]")[0]
    assert first.status == INTERRUPTED and first.stop is None and first.stopped is None
    assert not view.stops and all(s.stopped is None for s in view.sections)


def test_a_policy_stop_names_the_policy_its_hook_and_the_section_after_which_it_asked() -> None:
    view = project([
        e(ev.SECTION_STARTED, **phase("two")), started("phases[1].steps[0]"),
        e(ev.STEP_FINISHED, "phases[1].steps[0]", name="x", section="phase:two", status="ok"),
        e(ev.SECTION_FINISHED, **phase("two"), ok=True, status="ok"),
        e(ev.POLICY_APPLIED, policy="rehearsal", hook="after_section", **phase("two"), step=None,
          decision="rollback", reason="injected failure"),
        stop("rollback", "policy:rehearsal"),
    ])
    (p,) = view.policies
    assert (p.policy, p.hook, p.section, p.section_kind, p.section_name, p.step, p.decision, p.reason) == (
        "rehearsal", "after_section", "phase:two", "phase", "two", None, "rollback", "injected failure")
    (s,) = view.stops
    assert s.policy is p and (s.section, s.step, s.source) == ("phase:two", None, "policy")
    assert view.stopped_by(s) == []  # the phase had finished ok: nothing was stopped
    assert view.section("phase:two").status == "ok"  # type: ignore[union-attr]


def test_a_before_step_policy_names_the_step_it_kept_from_starting() -> None:
    view = project([
        e(ev.SECTION_STARTED, **phase("two")),
        e(ev.POLICY_APPLIED, "phases[1].steps[0]", policy="guard", hook="before_step", **phase("two"),
          step="phases[1].steps[0]", decision="abort", reason="not this step"),
        stop("abort", "policy:guard"),
        e(ev.SECTION_FINISHED, **phase("two"), ok=False, status="stopped", stopped="abort"),
    ])
    (s,) = view.stops
    assert (s.step, s.section, s.policy and s.policy.policy) == ("phases[1].steps[0]", "phase:two", "guard")
    two = view.section("phase:two")
    assert two is not None and (two.status, two.stopped, two.stop) == ("failed", "abort", s)
    assert not view.executions


def test_a_stopped_step_is_linked_whichever_of_its_events_lands_first() -> None:
    # the thread that asks records run.stop while the step's own thread records its end: either order
    for order in ("stop first", "step first"):
        events = [e(ev.SECTION_STARTED, **phase("two")), started("phases[1].steps[0]")]
        tail = [stop("rollback", "guard"), stopped_step("phases[1].steps[0]", "rollback")]
        events += tail if order == "stop first" else tail[::-1]
        events.append(e(ev.SECTION_FINISHED, **phase("two"), ok=False, status="stopped", stopped="rollback"))
        view = project(events)
        (s,) = view.stops
        (x,) = view.executions
        assert (x.status, x.stopped, x.stop) == ("failed", "rollback", s), order
        assert s.step == "phases[1].steps[0]" and s.source == "other", order
        assert [getattr(t, "key", None) or t.id for t in view.stopped_by(s)] == ["phase:two", "phases[1].steps[0]"]


def test_a_refused_request_is_recorded_and_stops_nothing() -> None:
    view = project([
        e(ev.SECTION_STARTED, **phase("one")), started("phases[0].steps[0]", "phase:one"),
        stop("rollback", "policy:rehearsal"),
        stop("kill_switch", "ops", accepted=False, note="a stop was already requested"),
        stopped_step("phases[0].steps[0]", "rollback", "phase:one"),
    ])
    first, refused = view.stops
    assert (refused.accepted, refused.note, refused.by) == (False, "a stop was already requested", "ops")
    assert view.executions[0].stop is first
    assert view.accepted_stops() == [first] and view.stopped_by(refused) == []


def test_an_abort_during_the_rollback_is_linked_to_the_undo_step_and_the_rollback_it_ended() -> None:
    undo = "phases[0].steps[0].undo[0]"
    view = project([
        e(ev.SECTION_STARTED, **phase("one")), started("phases[0].steps[0]", "phase:one"),
        e(ev.STEP_FINISHED, "phases[0].steps[0]", name="x", section="phase:one", status="ok"),
        e(ev.SECTION_FINISHED, **phase("one"), ok=True),
        stop("rollback", "policy:rehearsal"),
        e(ev.ROLLBACK_STARTED, section="rollback", reason="rollback now", plan=[{"key": undo, "name": "undo"}]),
        started(undo, "undo:one"), stop("abort", "ops"), stopped_step(undo, "abort", "undo:one"),
        e(ev.ROLLBACK_FINISHED, section="rollback", ok=False, state="the rollback was stopped", stopped="abort"),
        e(ev.RUN_FINISHED, status="rollback_failed", exit_code=12),
    ])
    rollback_stop, abort = view.stops
    (x,) = view.executions_of(undo)
    assert (x.stopped, x.stop) == ("abort", abort)
    assert abort.section == "undo:one" and abort.step == undo  # the innermost section running then
    end = view.rollback.end
    assert end is not None and end.stopped == "abort"
    rb = view.section("rollback")
    assert rb is not None and (rb.status, rb.stopped, rb.stop) == ("failed", "abort", abort)
    assert view.stopped_by(rollback_stop) == []


def test_an_interrupt_before_a_resume_does_not_claim_what_a_later_crash_cut_short() -> None:
    view = project([
        e(ev.RUN_STARTED), e(ev.SECTION_STARTED, **phase("one")), started("phases[0].steps[0]", "phase:one"),
        stop("interrupt", "signal SIGTERM"), e(ev.SECTION_FINISHED, **phase("one"), ok=False, stopped="interrupt"),
        e(ev.RUN_FINISHED, status="interrupted", exit_code=130),
        e(ev.RUN_RESUMED), e(ev.SECTION_STARTED, **phase("one")), started("phases[0].steps[0]", "phase:one"),
        e(ev.RUN_RESUMED),  # the resumed process died (kill -9): its attempt was cut short by nobody
    ])
    (s,) = view.stops
    first, second = view.executions_of("phases[0].steps[0]")
    assert (first.status, first.stop) == (INTERRUPTED, s) and s.source == "signal"
    assert (second.status, second.stop, second.stopped) == (INTERRUPTED, None, None)


def test_stops_and_policies_are_in_the_outline_only_when_a_run_has_them() -> None:
    assert "stops" not in project(recorded("completed")).outline()
    outline = project(recorded("interrupted-sigint")).outline()
    assert outline["stops"] == [{"mode": "interrupt", "by": "signal SIGINT", "accepted": True,
                                 "section": "phase:migrate", "step": "phases[1].steps[0]", "policy": None,
                                 "stopped": ["phase:migrate", "phases[1].steps[0]"]}]
    assert outline["policies"] == [] and outline["others"] == []


def test_unknown_types_still_go_to_others_and_a_live_fold_links_the_same() -> None:
    events = recorded("interrupted-sigint")
    live = RunView()
    for x in events:
        live.apply(x)
    live.apply(e("guard.tripped", guard="error budget"))
    assert [f.type for f in live.others] == ["guard.tripped"]
    assert isinstance(live.stopped_by(live.stops[0])[0], Section)


def test_an_undo_section_whose_step_an_interrupt_cut_short_stays_one_pass_across_the_resume() -> None:
    undo = "phases[0].steps[0].undo[0]"
    plan = [{"key": undo, "name": "undo"}]
    view = project([
        e(ev.RUN_STARTED), e(ev.ROLLBACK_STARTED, section="rollback", reason="r", plan=plan),
        started(undo, "undo:one"), stop("interrupt", "ops"),
        e(ev.RUN_FINISHED, status="interrupted", exit_code=130),
    ])
    (section,) = view.sections_of("undo")
    assert section.status == "running"  # not "ok": its step never ended
    view.apply_all([
        e(ev.RUN_RESUMED), e(ev.ROLLBACK_STARTED, section="rollback", reason="r", plan=plan), started(undo, "undo:one"),
        e(ev.STEP_FINISHED, undo, name="undo", section="undo:one", status="ok"),
        e(ev.ROLLBACK_FINISHED, section="rollback", ok=True),
    ])
    assert [(s.id, s.status) for s in view.sections_of("undo")] == [("undo:one", "ok")]
    first, second = view.executions_of(undo)
    assert (first.status, first.stopped, second.status) == (INTERRUPTED, "interrupt", "ok")


def test_a_stop_between_steps_after_a_resume_does_not_name_a_step_a_crash_left_behind() -> None:
    view = project([
        e(ev.RUN_STARTED), e(ev.SECTION_STARTED, **phase("one")), started("phases[0].steps[0]", "phase:one"),
        e(ev.RUN_RESUMED),  # kill -9: the step was cut short by nobody; the operator chose --skip
        stop("interrupt", "signal SIGTERM"),
    ])
    (s,) = view.stops
    assert (s.step, s.section) == (None, "phase:one")
