"""The projection's promises one by one: executions keyed by (key, target, attempt), effects on the
execution that recorded them, approvals pending until answered or the run ends, payload versions
(the engine writes them, the fold upcasts older ones and reads newer ones best effort), and a live
reader that folds event by event."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from tminus import events as ev
from tminus.events import PAYLOAD_VERSION, Event
from tminus.projection import UPCASTERS, RunView, project, upcast

LEDGERS = Path(__file__).resolve().parents[1] / "fixtures" / "ledgers"
SRC = Path(__file__).resolve().parents[2] / "src" / "tminus"


def recorded(name: str) -> list[dict[str, Any]]:
    return list(json.loads((LEDGERS / f"{name}.json").read_text())["events"])


def e(type_: str, key: str | None = None, **data: Any) -> Event:
    return Event(type_, "run-1", data, key)


# --- the engine writes versioned payloads ---------------------------------------------------------


def test_every_event_carries_its_payload_version_and_the_callers_dict_is_untouched() -> None:
    shared = {"name": "step", "section": "phase:deploy"}
    first = Event(ev.STEP_STARTED, "r", shared, "k")
    second = Event(ev.STEP_FINISHED, "r", shared, "k")
    assert first.data["v"] == PAYLOAD_VERSION and second.data["v"] == PAYLOAD_VERSION
    assert "v" not in shared
    assert first.data is not second.data


def test_the_payload_version_is_not_part_of_the_payload_a_reader_sees() -> None:
    view = project([e(ev.MONITOR_STARTED, stage="window", cutover_at=1.0, duration=60, interval=1),
                    e(ev.MONITOR_SAMPLE, "probe", probe="health", stage="window", at=2.0, values={"x": 1})])
    assert view.monitor.samples[0].data == {"probe": "health", "stage": "window", "at": 2.0, "values": {"x": 1}}
    assert view.monitor.stages[0].data["cutover_at"] == 1.0 and "v" not in view.monitor.stages[0].data


# --- upcasting -----------------------------------------------------------------------------------


def test_older_payloads_go_through_the_upcaster_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # A pretend change of shape: a note's "text" became "message" in version 1.
    monkeypatch.setitem(UPCASTERS, (ev.NOTE, 0), lambda d: {**{k: v for k, v in d.items() if k != "text"},
                                                            "message": d.get("text")})
    old = {"seq": 1, "type": ev.NOTE, "step_key": None, "at": "2026-11-23T12:00:00+00:00",
           "data": {"action": "manifest", "text": "API_KEY is not set"}}
    new = {**old, "data": {"action": "manifest", "message": "API_KEY is not set", "v": PAYLOAD_VERSION}}
    for raw in (old, new):
        view = project([raw])
        assert view.notes[0].message == "API_KEY is not set" and not view.warnings
    assert old["data"] == {"action": "manifest", "text": "API_KEY is not set"}  # the record is not changed


def test_a_newer_payload_is_read_best_effort_with_a_warning_never_a_crash() -> None:
    events = recorded("future-version")
    view = project(events)
    assert view.warnings == [f"event 1 (run.started) and later: payload version {PAYLOAD_VERSION + 1} is newer "
                             f"than this tminus reads ({PAYLOAD_VERSION}): read as far as it is understood"]
    run = view.executions[0]
    assert (run.key, run.target, run.attempt, run.status) == ("phases[0].steps[0]", "web-1", 1, "interrupted")
    assert [x.effect for x in run.effects] == ["process", "service"] and run.effects[0].data["pgid"] == 4242
    assert view.rollback.plan[0].spec["service"] == {"state": "stopped"}  # the full spec the plan recorded
    assert [f.type for f in view.others] == ["guard.tripped"]  # only the type this tminus does not know
    (stop,) = view.stops  # a run.stop in a newer shape: what is understood of it
    assert (stop.mode, stop.reason, stop.accepted) == (None, "guard tripped", True)


def test_a_version_that_is_not_a_number_reads_as_version_zero() -> None:
    data, version, warning = upcast(ev.NOTE, {"v": "two", "action": "x"})
    assert (data, version) == ({"action": "x"}, 0) and warning and "not a version" in warning


# --- executions, effects, sections ----------------------------------------------------------------


def test_a_retry_after_a_resume_is_attempt_two_and_the_first_was_interrupted() -> None:
    events = recorded("resumed-retry")
    key = "phases[1].steps[0]"
    killed = next(i for i, x in enumerate(events) if x["type"] == ev.STEP_STARTED and x["step_key"] == key)
    live = RunView().apply_all(events[: killed + 1])
    assert [(x.attempt, x.status) for x in live.executions_of(key)] == [(1, "running")]
    assert [x.key for x in live.in_flight()] == [key]
    live.apply(events[killed + 1])  # run.resumed: the process that ran it is gone
    assert [(x.attempt, x.status) for x in live.executions_of(key)] == [(1, "interrupted")]
    live.apply_all(events[killed + 2:])
    assert [(x.attempt, x.status) for x in live.executions_of(key)] == [(1, "interrupted"), (2, "ok")]
    assert live.in_flight() == [] and live.finished is not None and live.finished.status == "completed"
    assert live.section("phase:migrate") is not None and live.section("phase:migrate").status == "ok"  # type: ignore[union-attr]


def test_an_effect_recorded_before_a_crash_stays_with_its_interrupted_execution() -> None:
    view = project([
        e(ev.RUN_STARTED, operator="alice"),
        e(ev.STEP_STARTED, "phases[0].steps[0]", name="serve", section="phase:deploy", kind="run"),
        e(ev.STEP_EFFECT, "phases[0].steps[0]", effect="process", pgid=777, started=12.5),
        e(ev.RUN_RESUMED, operator="alice", interrupted={"phases[0].steps[0]": "rollback"}),
        e(ev.STEP_STARTED, "phases[0].steps[0]", name="serve", section="phase:deploy", kind="run"),
        e(ev.STEP_EFFECT, "phases[0].steps[0]", effect="process", pgid=778, started=20.0),
    ])
    first, second = view.executions
    assert (first.status, [x.data["pgid"] for x in first.effects]) == ("interrupted", [777])
    assert (second.attempt, second.status, [x.data["pgid"] for x in second.effects]) == (2, "running", [778])
    assert [(x.key, x.attempt) for x in view.effects] == [("phases[0].steps[0]", 1), ("phases[0].steps[0]", 2)]


def test_sections_name_their_kind_and_name_and_newer_events_say_them_themselves() -> None:
    view = project([
        e(ev.SECTION_STARTED, section="phase:deploy", budget=60.0),
        e(ev.SECTION_FINISHED, section="phase:deploy", ok=True, actual=42.0, budget=60.0),
        e(ev.SECTION_STARTED, section="after-go", kind="after_go", name="smoke"),
        e(ev.SECTION_FINISHED, section="after-go", ok=False, failures=["smoke failed"]),
    ])
    deploy, after = view.sections
    assert (deploy.kind, deploy.name, deploy.status) == ("phase", "deploy", "ok")
    assert (deploy.actual, deploy.budget) == (42.0, 60.0)
    assert (after.kind, after.name, after.status, after.failures) == ("after_go", "smoke", "failed", ["smoke failed"])


def test_a_failed_try_inside_one_execution_is_not_a_new_attempt() -> None:
    view = project(recorded("legacy-v0"))
    flaky = view.executions_of("phases[0].steps[0]")
    assert [(x.attempt, x.attempts, len(x.failed_tries)) for x in flaky] == [(1, 2, 1)]
    assert view.executions_of("phases[0].steps[1]")[0].status == "skipped"


def test_the_legacy_ledger_reads_every_part_of_the_run() -> None:
    view = project(recorded("legacy-v0"))
    assert view.started is not None and view.started.overrides == {"color": "blue"}
    assert [x.key for x in view.by_end()][:2] == ["gates[0].checks[1]", "gates[0].checks[0]"]  # finish order
    assert view.decision is not None and view.decision.verdict == "go"
    assert view.monitor.pause_answers and view.monitor.cutover_at == view.cutover_at
    assert [(n.channel, n.ok) for n in view.notifications] == [("ops", False)]


# --- approvals -----------------------------------------------------------------------------------


def test_an_approval_is_pending_until_answered_or_the_run_ends() -> None:
    asked = [e(ev.APPROVAL_REQUESTED, "decision", prompt="Go?", second_person=True, operator="alice")]
    view = project(asked)
    assert list(view.pending_approvals()) == ["decision"] and view.section("decision").status == "running"  # type: ignore[union-attr]
    answered = project([*asked, e(ev.APPROVAL_GIVEN, "decision", approved=False, by="bob", how="approve-command")])
    assert answered.pending_approvals() == {} and answered.approvals[0].answer.by == "bob"  # type: ignore[union-attr]
    ended = project([*asked, e(ev.RUN_FINISHED, status="needs_operator")])
    assert ended.pending_approvals() == {} and ended.approvals[0].closed and not ended.approvals[0].pending


def test_waiting_for_approval_in_a_recorded_run() -> None:
    view = project(recorded("waiting-approval"))
    pending = view.pending_approvals()
    assert list(pending) == ["decision"] and pending["decision"].prompt == "Keep v2?"


# --- the rollback ----------------------------------------------------------------------------------


def test_a_rollback_interrupted_and_resumed_keeps_its_recorded_plan() -> None:
    interrupted = project(recorded("interrupted-rollback"))
    assert interrupted.rollback.active and interrupted.rollback.state == "running"
    assert [p.key for p in interrupted.rollback.plan] == ["phases[0].steps[0].undo[0]", "rollback[0]"]
    assert [x.key for x in interrupted.in_flight()] == ["phases[0].steps[0].undo[0]"]
    done = project(recorded("resumed-rollback"))
    assert not done.rollback.active and done.rollback.state == "ok" and len(done.rollback.passes) == 2
    assert {k: x.status for k, x in done.rollback.outcomes().items()} == {
        "phases[0].steps[0].undo[0]": "ok", "rollback[0]": "ok"}


def test_the_monitor_of_a_recorded_run_that_fired() -> None:
    m = project(recorded("monitor-fired")).monitor
    assert len(m.samples_of("baseline")) == 3 and m.baseline_done
    assert [(a.rule, a.outcome) for a in m.actions] == [("pool saturated", "rollback")]
    assert m.transitions[-1].to == "firing" and m.transitions[-1].timed
    assert m.last_end is not None and m.last_end.outcome == "rollback"
    assert len(m.window_segments) == 1 and m.window_segments[0][1] == m.samples_of("window")[-1].at


# --- no reader outside the projection spells an event type ----------------------------------------


def test_no_module_outside_events_and_the_projection_spells_a_dotted_event_type() -> None:
    dotted = {t for t in ev.TYPES if "." in t}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if "projection" in path.parts or path.name == "events.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in dotted:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.value}")
    assert not found, "\n".join(found)


# --- the folds' order (docs/architecture.md): view -> folds -> state, fact -> model ---------------------

FOLDS = SRC / "projection" / "folds"
# fold module -> the folds it may use: every fold may open and close sections and link stops
SHARED_FOLDS = {"sections": {"stops"}, "stops": set()}


def tminus_imports(path: Path) -> set[str]:
    """Every tminus module a file imports, lazy imports included (`from a import b` counts as a.b too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return {name for name in found if name.startswith("tminus.")}


@pytest.mark.parametrize("fold", sorted(p.stem for p in FOLDS.glob("*.py") if p.stem != "__init__"))
def test_a_fold_uses_only_the_shared_folds_and_never_the_view(fold: str) -> None:
    used = tminus_imports(FOLDS / f"{fold}.py")
    folds = {name.split(".")[3] for name in used if name.startswith("tminus.projection.folds.")}
    allowed = SHARED_FOLDS.get(fold, {"sections", "stops"})
    assert folds <= allowed, f"{fold} imports the folds {sorted(folds - allowed)}"
    # the package's __init__ re-exports the view, so `from tminus.projection import ...` reaches it too
    view = {n for n in used if n == "tminus.projection" or n.startswith("tminus.projection.view")}
    assert not view, f"{fold} imports the view: {sorted(view)}"


@pytest.mark.parametrize("module", ["state", "fact", "model", "upcast", "times"])
def test_what_the_folds_stand_on_knows_no_fold_and_no_view(module: str) -> None:
    used = tminus_imports(SRC / "projection" / f"{module}.py")
    above = {n for n in used if n == "tminus.projection" or n.startswith(("tminus.projection.folds",
                                                                            "tminus.projection.view"))}
    assert not above, f"{module} imports {sorted(above)}"
